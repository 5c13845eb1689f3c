import Crypto
public import Foundation
import LDAP
public import Sync
public import TesseraCore

/// What `tessera hybrid kerberos enable|rotate|status|disable` does in Active Directory, through a sync connector's
/// LDAP connection (LDAPS or StartTLS: AD takes a password only over an encrypted connection), as Entra's set-up does
/// in AD DS: a service account with the SPN `adrs/<host>` whose password Tessera sets, so Tessera holds its long-term
/// keys and nothing is exported by hand; the service connection point under
/// `CN=Device Registration Configuration,CN=Services,CN=Configuration,…` whose keywords name the tenant
/// (`azureADId:`, `azureADName:`) as Entra's do and whose binding points at Tessera; and the tenant's record.
public struct HybridKerberosSetup: Sendable {
    public let store: any DirectoryStore
    /// How the service account's keys are sealed in the store (with the key-encryption key, when there is one).
    public let sealing: KeySealing
    public let clock: any TimeSource

    public init(store: any DirectoryStore, sealing: KeySealing, clock: any TimeSource = SystemTimeSource()) {
        self.store = store
        self.sealing = sealing
        self.clock = clock
    }

    /// The SCP's common name: the one Entra's hybrid join set-up uses, which Windows' device registration reads.
    public static let scpName = "62a0ff2e-97b9-4513-943f-0d221bd30080"
    /// userAccountControl of the service account: a normal account whose password never expires (512 | 65536).
    static let serviceAccountControl = "66048"
    /// msDS-SupportedEncryptionTypes 24: AES128 and AES256 only, so the KDC never issues RC4 tickets for it.
    static let aesOnly = "24"

    /// The state `status` reports: the key versions in AD and in Tessera (Entra's KeyVersion and CloudKeyVersion).
    public struct Status: Sendable {
        public var domain: KerberosDomain
        public var directoryKeyVersion: UInt32?
        public var scpPresent: Bool
        public var inSync: Bool { directoryKeyVersion == domain.keyVersion && scpPresent }
    }

    /// Creates the service account, sets its password, creates the SCP and records the domain. On any failure what
    /// was created in AD is removed again and nothing is recorded.
    public func enable(tenant: TenantRecord, connector: SyncConnector, host: String, publicURL: String) async throws -> KerberosDomain {
        guard try await KerberosDomain.load(tenant: tenant.id, store: store, sealing: sealing) == nil else {
            throw HybridKerberosError("hybrid join through Kerberos is already enabled for this tenant: use rotate, or disable first")
        }
        let host = host.lowercased()
        guard Self.isHostName(host) else { throw HybridKerberosError("--host must be a DNS name such as tessera.corp.example.test") }
        let now = clock.now
        return try await connector.connect().closing { ldap in
            let (domainDN, configurationDN) = try await Self.namingContexts(ldap)
            let realm = Self.realm(of: domainDN)
            let accountName = "tessera-drs-" + tenant.id.prefix(8).lowercased()
            let accountDN = "CN=\(accountName),CN=Users,\(domainDN)"
            let containerDN = "CN=Device Registration Configuration,CN=Services,\(configurationDN)"
            let scpDN = "CN=\(Self.scpName),\(containerDN)"
            let password = Self.makePassword()
            do {
                try await ldap.add(dn: accountDN, [
                    ("objectClass", ["top", "person", "organizationalPerson", "user"].map { Array($0.utf8) }),
                    ("sAMAccountName", [Array(accountName.utf8)]),
                    ("description", [Array("Tessera device registration service for tenant \(tenant.id) (\(tenant.domain))".utf8)]),
                    ("servicePrincipalName", [Array("adrs/\(host)".utf8)]),
                    ("msDS-SupportedEncryptionTypes", [Array(Self.aesOnly.utf8)]),
                    ("unicodePwd", [Self.unicodePassword(password)]),
                    ("userAccountControl", [Array(Self.serviceAccountControl.utf8)]),
                ])
            } catch let error as LDAPError where error.resultCode == 68 {
                throw HybridKerberosError("\(accountDN) exists already in AD: another Tessera set-up owns it (disable it there first)")
            }
            var scpCreated = false
            do {
                let version = try await Self.keyVersion(ldap, dn: accountDN)
                let key = try KerberosDomain.KeyVersion(version: version, created: now, password: password, salt: realm + accountName)
                try await Self.ensureContainer(ldap, dn: containerDN)
                try await ldap.add(dn: scpDN, [
                    ("objectClass", [Array("top".utf8), Array("serviceConnectionPoint".utf8)]),
                    ("keywords", [Array("azureADName:\(tenant.domain)".utf8), Array("azureADId:\(tenant.id)".utf8)]),
                    ("serviceBindingInformation", [Array("\(publicURL)/EnrollmentServer/\(tenant.id)".utf8)]),
                ])
                scpCreated = true
                let domain = KerberosDomain(realm: realm, domainDN: domainDN, host: host, accountName: accountName, accountDN: accountDN,
                                            scpDN: scpDN, connector: connector.name, created: now, keys: [key])
                try await domain.save(tenant: tenant.id, store: store, sealing: sealing)
                return domain
            } catch {
                if scpCreated { try? await ldap.delete(dn: scpDN) }
                try? await ldap.delete(dn: accountDN)
                if let ldapError = error as? LDAPError, ldapError.resultCode == 68 {
                    throw HybridKerberosError("\(scpDN) exists already: another tenant's device registration is configured for this forest")
                }
                throw error
            }
        }
    }

    /// Sets a new password on the service account and keeps the previous key until `grace` has passed, for
    /// tickets issued before the rotation (AD's default ticket lifetime is 10 hours).
    public func rotate(tenant: TenantRecord, connector: SyncConnector, grace: TimeInterval = 10 * 3600) async throws -> KerberosDomain {
        guard var domain = try await KerberosDomain.load(tenant: tenant.id, store: store, sealing: sealing) else { throw HybridKerberosError.notEnabled }
        let now = clock.now
        let password = Self.makePassword()
        let version = try await connector.connect().closing { ldap in
            try await ldap.modify(dn: domain.accountDN, [LDAPModification(.replace, "unicodePwd", [Self.unicodePassword(password)])])
            return try await Self.keyVersion(ldap, dn: domain.accountDN)
        }
        let key = try KerberosDomain.KeyVersion(version: version, created: now, password: password, salt: domain.realm + domain.accountName)
        // The previous key retires after the grace period; anything older than it has retired already.
        var kept = domain.keys.prefix(1).map { old in
            var old = old
            old.retiresAt = now.addingTimeInterval(grace)
            return old
        }
        kept.removeAll { $0.version == version }
        domain.keys = [key] + kept
        try await domain.save(tenant: tenant.id, store: store, sealing: sealing)
        return domain
    }

    /// Compares the service account's key version in AD with Tessera's, and checks the SCP is there.
    public func status(tenant: TenantRecord, connector: SyncConnector) async throws -> Status {
        guard let domain = try await KerberosDomain.load(tenant: tenant.id, store: store, sealing: sealing) else { throw HybridKerberosError.notEnabled }
        return try await connector.connect().closing { ldap in
            let version = try? await Self.keyVersion(ldap, dn: domain.accountDN)
            let scp = try? await ldap.search(base: domain.scpDN, scope: .base, filter: "(objectClass=serviceConnectionPoint)",
                                             attributes: ["keywords"])
            let present = scp?.entries.first?.strings("keywords").contains("azureADId:\(tenant.id)") ?? false
            return Status(domain: domain, directoryKeyVersion: version, scpPresent: present)
        }
    }

    /// Removes the SCP and the service account from AD, then the tenant's record (so no ticket is accepted).
    public func disable(tenant: TenantRecord, connector: SyncConnector) async throws -> KerberosDomain {
        guard let domain = try await KerberosDomain.load(tenant: tenant.id, store: store, sealing: sealing) else { throw HybridKerberosError.notEnabled }
        try await connector.connect().closing { ldap in
            for dn in [domain.scpDN, domain.accountDN] {
                do {
                    try await ldap.delete(dn: dn)
                } catch let error as LDAPError where error.resultCode == 32 {
                    continue  // already gone
                }
            }
        }
        try await KerberosDomain.remove(tenant: tenant.id, store: store)
        return domain
    }

    // MARK: LDAP details

    static func namingContexts(_ ldap: LDAPConnection) async throws -> (domain: String, configuration: String) {
        let root = try await ldap.search(base: "", scope: .base, filter: "(objectClass=*)",
                                         attributes: ["defaultNamingContext", "configurationNamingContext"])
        guard let entry = root.entries.first, let domain = entry.string("defaultNamingContext"),
              let configuration = entry.string("configurationNamingContext")
        else { throw HybridKerberosError("the directory's root DSE names no defaultNamingContext: is it Active Directory?") }
        return (domain, configuration)
    }

    /// `DC=corp,DC=example,DC=test` → `CORP.EXAMPLE.TEST`.
    static func realm(of domainDN: String) -> String {
        domainDN.split(separator: ",").compactMap { part -> String? in
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).uppercased() == "DC" else { return nil }
            return pair[1].trimmingCharacters(in: .whitespaces).uppercased()
        }.joined(separator: ".")
    }

    static func keyVersion(_ ldap: LDAPConnection, dn: String) async throws -> UInt32 {
        let result = try await ldap.search(base: dn, scope: .base, filter: "(objectClass=user)", attributes: ["msDS-KeyVersionNumber"])
        guard let text = result.entries.first?.string("msDS-KeyVersionNumber"), let version = UInt32(text) else {
            throw HybridKerberosError("\(dn) has no msDS-KeyVersionNumber")
        }
        return version
    }

    static func ensureContainer(_ ldap: LDAPConnection, dn: String) async throws {
        do {
            try await ldap.add(dn: dn, [("objectClass", [Array("top".utf8), Array("container".utf8)])])
        } catch let error as LDAPError where error.resultCode == 68 {
            return  // there already (Entra's or an earlier set-up's)
        }
    }

    /// A password AD's complexity rule accepts (all four character classes), of 256 random bits.
    static func makePassword() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return "Tk1!" + bytes.base64EncodedString()
    }

    /// `unicodePwd` takes the password in double quotes, in UTF-16LE (MS-ADTS 3.1.1.3.1.5).
    static func unicodePassword(_ password: String) -> [UInt8] {
        "\"\(password)\"".utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    static func isHostName(_ host: String) -> Bool {
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && host.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

/// Why a hybrid join set-up step was refused, in a sentence for the administrator.
public struct HybridKerberosError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
    static let notEnabled = HybridKerberosError("hybrid join through Kerberos is not enabled for this tenant: run enable first")
}
