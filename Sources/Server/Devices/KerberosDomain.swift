public import Foundation
public import Kerberos
public import TesseraCore

/// A tenant's hybrid join through Kerberos, as `tessera hybrid kerberos enable` set it up in one AD domain (Entra's
/// `KerberosDomain`): the realm, the service account that holds the SPN `adrs/<host>` and whose keys Tessera set,
/// the service connection point that names the tenant, and the keys by version. Kept as the tenant setting
/// `kerberosDomain`, sealed with the key-encryption key when there is one; the keys never leave the store.
public struct KerberosDomain: Sendable, Equatable {
    /// One key version of the service account: its AES keys, and, once a rotation replaced it, when it stops being
    /// accepted (tickets issued before the rotation live until then).
    public struct KeyVersion: Sendable, Equatable {
        public var version: UInt32
        public var created: Date
        public var retiresAt: Date?
        var aes256: [UInt8]
        var aes128: [UInt8]

        public init(version: UInt32, created: Date, aes256: [UInt8], aes128: [UInt8]) {
            self.version = version
            self.created = created
            self.aes256 = aes256
            self.aes128 = aes128
        }

        /// The keys of this version derived from the account's password and salt (RFC 3962 string-to-key).
        public init(version: UInt32, created: Date, password: String, salt: String) throws {
            self.init(
                version: version, created: created,
                aes256: try KerberosKey(encryptionType: .aes256CtsHmacSha196, password: password, salt: salt).keyBytes,
                aes128: try KerberosKey(encryptionType: .aes128CtsHmacSha196, password: password, salt: salt).keyBytes)
        }

        var kerberosKeys: [KerberosKey] {
            get throws {
                [try KerberosKey(encryptionType: .aes256CtsHmacSha196, version: version, bytes: aes256),
                 try KerberosKey(encryptionType: .aes128CtsHmacSha196, version: version, bytes: aes128)]
            }
        }
    }

    /// The Kerberos realm (`CORP.EXAMPLE.TEST`) and the domain's DN.
    public var realm: String
    public var domainDN: String
    /// The host name devices use for Tessera: the service principal is `adrs/<host>`.
    public var host: String
    /// The service account's sAMAccountName and DN.
    public var accountName: String
    public var accountDN: String
    /// The service connection point's DN.
    public var scpDN: String
    /// The sync connector whose LDAP connection set this up (and through which computers are looked up).
    public var connector: String?
    public var created: Date
    /// Newest first: the current key, then a previous one until it retires.
    public var keys: [KeyVersion]

    public init(realm: String, domainDN: String, host: String, accountName: String, accountDN: String, scpDN: String,
                connector: String?, created: Date, keys: [KeyVersion]) {
        self.realm = realm
        self.domainDN = domainDN
        self.host = host
        self.accountName = accountName
        self.accountDN = accountDN
        self.scpDN = scpDN
        self.connector = connector
        self.created = created
        self.keys = keys
    }

    /// The service principal devices ask their KDC for.
    public var servicePrincipal: String { "adrs/\(host)" }
    /// The key version Tessera holds as current (Entra's CloudKeyVersion).
    public var keyVersion: UInt32 { keys.first?.version ?? 0 }

    /// The keys a ticket may be encrypted with at `now`: the current version and the previous ones not yet retired.
    public func serviceKeys(at now: Date) throws -> ServiceKeys {
        try ServiceKeys(keys: keys.filter { $0.retiresAt.map { now < $0 } ?? true }.flatMap { try $0.kerberosKeys })
    }

    static let settingKey = "kerberosDomain"

    /// The tenant's domain, nil when hybrid join through Kerberos is not set up; stored plain (before there was a
    /// key-encryption key), it is sealed in the store when `sealing` has one.
    public static func load(tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> KerberosDomain? {
        try await sealing.load(SealedSetting(tenant: tenant, key: settingKey), store: store).flatMap(KerberosDomain.init)
    }

    /// Stores the domain, its keys sealed when `sealing` has a key-encryption key.
    public func save(tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws {
        let value = try sealing.seal(json, SealedSetting(tenant: tenant, key: Self.settingKey))
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: Self.settingKey, value: value) }
    }

    public static func remove(tenant: String, store: any DirectoryStore) async throws {
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: settingKey, value: .null) }
    }

    var json: JSONValue {
        [
            "realm": .string(realm), "domainDn": .string(domainDN), "host": .string(host), "accountName": .string(accountName),
            "accountDn": .string(accountDN), "scpDn": .string(scpDN), "connector": .optional(connector),
            "created": .string(Timestamp.format(created)),
            "keys": .array(keys.map { key in
                ["version": .int(Int64(key.version)), "created": .string(Timestamp.format(key.created)),
                 "retiresAt": .optional(key.retiresAt.map(Timestamp.format)),
                 "aes256": .string(Data(key.aes256).base64EncodedString()), "aes128": .string(Data(key.aes128).base64EncodedString())]
            }),
        ]
    }

    init?(_ json: JSONValue) {
        guard let realm = json["realm"]?.stringValue, let domainDN = json["domainDn"]?.stringValue,
              let host = json["host"]?.stringValue, let accountName = json["accountName"]?.stringValue,
              let accountDN = json["accountDn"]?.stringValue, let scpDN = json["scpDn"]?.stringValue,
              let created = json["created"]?.stringValue.flatMap(Timestamp.parse)
        else { return nil }
        let keys: [KeyVersion] = (json["keys"]?.arrayValue ?? []).compactMap { key in
            guard let version = key["version"]?.intValue, let created = key["created"]?.stringValue.flatMap(Timestamp.parse),
                  let aes256 = key["aes256"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
                  let aes128 = key["aes128"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
            else { return nil }
            var entry = KeyVersion(version: UInt32(truncatingIfNeeded: version), created: created, aes256: Array(aes256), aes128: Array(aes128))
            entry.retiresAt = key["retiresAt"]?.stringValue.flatMap(Timestamp.parse)
            return entry
        }
        self.init(realm: realm, domainDN: domainDN, host: host, accountName: accountName, accountDN: accountDN, scpDN: scpDN,
                  connector: json["connector"]?.stringValue, created: created, keys: keys)
    }
}
