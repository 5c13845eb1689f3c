import Crypto
import Foundation

/// The key-encryption key (KEK): 32 bytes, given to every node from a file or the environment, never stored in the
/// database. It seals the keys Tessera keeps in the store (the deployment's token-signing key ring and passkey MAC key,
/// each tenant's certificate authorities, its Kerberos service keys) with AES-256-GCM before they are written, so a
/// copy of the database (a backup, a replica, a dump) holds no usable key without it.
public struct KeyEncryptionKey: Sendable {
    let key: SymmetricKey
    /// The variable that holds the key, base64 of 32 bytes, when no file is named.
    public static let environmentVariable = "TESSERA_KEY_ENCRYPTION_KEY"

    /// A key from base64 (standard or URL-safe alphabet) of exactly 32 bytes; surrounding white space is ignored.
    public init(base64 text: String) throws(KeyEncryptionError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let standard = trimmed.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let padded = standard + String(repeating: "=", count: (4 - standard.count % 4) % 4)
        guard let bytes = Data(base64Encoded: padded), bytes.count == 32 else {
            throw KeyEncryptionError("the key-encryption key must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
        }
        key = SymmetricKey(data: bytes)
    }

    /// A fresh random key, as base64 (what `tessera keys generate` prints).
    public static func generate() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// The key in `file` when one is named, else the one in `TESSERA_KEY_ENCRYPTION_KEY`, else nil (keys are stored
    /// unencrypted). A file that cannot be read, or either holding something that is not a key, is an error.
    public static func load(file: String?, environment: [String: String]? = nil) throws(KeyEncryptionError) -> KeyEncryptionKey? {
        if let file {
            guard let contents = FileManager.default.contents(atPath: file) else { throw KeyEncryptionError("cannot read the key-encryption key file \(file)") }
            do { return try KeyEncryptionKey(base64: String(decoding: contents, as: UTF8.self)) } catch {
                throw KeyEncryptionError("\(file): \(error.description)")
            }
        }
        guard let text = (environment ?? ProcessInfo.processInfo.environment)[environmentVariable], !text.isEmpty else { return nil }
        do { return try KeyEncryptionKey(base64: text) } catch { throw KeyEncryptionError("\(environmentVariable): \(error.description)") }
    }

    /// `value` sealed under this key, bound to `name` (the setting it is stored as) so a sealed value cannot be
    /// moved to another setting (or tenant): `{"alg": "A256GCM", "sealed": base64(nonce ‖ ciphertext ‖ tag)}`.
    public func seal(_ value: JSONValue, name: String) throws -> JSONValue {
        let box = try AES.GCM.seal(Data(value.serialized.utf8), using: key, authenticating: Data(name.utf8))
        guard let combined = box.combined else { throw KeyEncryptionError("AES-GCM gave no combined box") }
        return ["alg": "A256GCM", "sealed": .string(combined.base64EncodedString())]
    }

    /// The value `seal` sealed for `name`; throws when this key (or the name) is not the one it was sealed with.
    public func open(_ sealed: JSONValue, name: String) throws(KeyEncryptionError) -> JSONValue {
        guard sealed["alg"]?.stringValue == "A256GCM", let text = sealed["sealed"]?.stringValue, let combined = Data(base64Encoded: text),
              let box = try? AES.GCM.SealedBox(combined: combined),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Data(name.utf8)),
              let value = try? JSONParser.parse(String(decoding: plain, as: UTF8.self))
        else { throw KeyEncryptionError.wrongKey(name) }
        return value
    }

    /// Whether a stored setting is a sealed one (else it is plain, from before a key-encryption key was given).
    public static func isSealed(_ value: JSONValue) -> Bool { value["sealed"] != nil && value["alg"] != nil }
}

/// Why stored keys cannot be opened or sealed: said at start (and the server does not start) or by the command.
public struct KeyEncryptionError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    public static func wrongKey(_ name: String) -> KeyEncryptionError {
        KeyEncryptionError("the key-encryption key does not open the stored keys (\(name)): start with the key they were encrypted with (nothing was changed)")
    }

    public static let missingKey = KeyEncryptionError(
        "the stored keys are encrypted: give the key-encryption key (--key-encryption-key-file or \(KeyEncryptionKey.environmentVariable))")
}

/// A key kept as a setting: where it is stored, and the name its sealing is bound to (`<tenant>/<key>`).
public struct SealedSetting: Sendable, Hashable {
    public let tenant: String
    public let key: String
    public var name: String { "\(tenant)/\(key)" }

    public init(tenant: String, key: String) {
        self.tenant = tenant
        self.key = key
    }
}

/// How keys kept as settings are read from and written to the store: sealed with the key-encryption key when there is
/// one, plain otherwise. Every stored private key goes through this one type, whichever module keeps it.
public struct KeySealing: Sendable {
    public let keyEncryption: KeyEncryptionKey?

    public init(keyEncryption: KeyEncryptionKey?) {
        self.keyEncryption = keyEncryption
    }

    /// The plain value of a stored one: opened when sealed (which needs the right key), as is when plain.
    public func open(_ stored: JSONValue, _ setting: SealedSetting) throws(KeyEncryptionError) -> JSONValue {
        guard KeyEncryptionKey.isSealed(stored) else { return stored }
        guard let keyEncryption else { throw KeyEncryptionError.missingKey }
        return try keyEncryption.open(stored, name: setting.name)
    }

    /// What to store for a plain value: sealed when there is a key.
    public func seal(_ plain: JSONValue, _ setting: SealedSetting) throws -> JSONValue {
        try keyEncryption.map { try $0.seal(plain, name: setting.name) } ?? plain
    }

    /// The setting's plain value inside a transaction, nil when there is none (or it was cleared to null).
    public func read(_ setting: SealedSetting, in tx: any DirectoryReader) async throws -> JSONValue? {
        guard let stored = try await tx.setting(tenant: setting.tenant, key: setting.key), stored != .null else { return nil }
        return try open(stored, setting)
    }

    /// The setting's plain value inside a write transaction, its row locked until the transaction ends
    /// (``DirectoryWriter/lockedSetting(tenant:key:)``): what a read-modify-write of the key reads, so that of two at once
    /// the second works on what the first wrote.
    public func readLocked(_ setting: SealedSetting, in tx: any DirectoryWriter) async throws -> JSONValue? {
        guard let stored = try await tx.lockedSetting(tenant: setting.tenant, key: setting.key), stored != .null else { return nil }
        return try open(stored, setting)
    }

    /// Stores `plain` as the setting inside a transaction, sealed when there is a key.
    public func write(_ plain: JSONValue, _ setting: SealedSetting, in tx: any DirectoryWriter) async throws {
        try await tx.putSetting(tenant: setting.tenant, key: setting.key, value: try seal(plain, setting))
    }

    /// The setting's plain value, nil when there is none; sealed in the store when there is a key and it is still plain
    /// there (see ``loadOrCreate(_:store:make:upgrade:)``).
    public func load(_ setting: SealedSetting, store: any DirectoryStore) async throws -> JSONValue? {
        try await resolve(setting, store: store, make: { nil }, upgrade: { _ in nil })
    }

    /// The setting's plain value: made with `make` when there is none (of nodes making one at once, the first to commit
    /// is every node's), rewritten in its current shape when `upgrade` returns one, and sealed in the store when there is
    /// a key and it is still plain there (migration: idempotent, and a value another node rewrote first is taken as it
    /// is, even one written while this one seals: the row is locked for it). A stored value this key does not open throws
    /// and is never overwritten.
    public func loadOrCreate(_ setting: SealedSetting, store: any DirectoryStore, make: () throws -> JSONValue,
                             upgrade: (JSONValue) throws -> JSONValue? = { _ in nil }) async throws -> JSONValue {
        guard let value = try await resolve(setting, store: store, make: make, upgrade: upgrade) else {
            throw KeyEncryptionError("\(setting.name) was cleared while it was being made")
        }
        return value
    }

    /// The setting's plain value, sealed in the store when still plain there; when there is none, `make`'s value (nil:
    /// make none) stored as the first node's.
    private func resolve(_ setting: SealedSetting, store: any DirectoryStore, make: () throws -> JSONValue?,
                         upgrade: (JSONValue) throws -> JSONValue?) async throws -> JSONValue? {
        let stored: JSONValue
        if let existing = try await store.read({ tx in try await tx.setting(tenant: setting.tenant, key: setting.key) }), existing != .null {
            stored = existing
        } else if let value = try make() {
            let made = try seal(value, setting)
            stored = try await store.write { tx in try await tx.settingOrPut(tenant: setting.tenant, key: setting.key, value: made) }
        } else {
            return nil
        }
        let plain = try open(stored, setting)
        let upgraded = try upgrade(plain)
        guard upgraded != nil || (keyEncryption != nil && !KeyEncryptionKey.isSealed(stored)) else { return plain }
        let replacement = try seal(upgraded ?? plain, setting)
        let observed = stored
        let latest = try await store.write { tx -> JSONValue? in
            // Locked: a rotation that commits between this read and the write below would otherwise be overwritten with
            // the old value, sealed; now it waits for this transaction, or this one reads what it wrote and keeps it.
            let current = try await tx.lockedSetting(tenant: setting.tenant, key: setting.key)
            guard current == observed else { return current }
            try await tx.putSetting(tenant: setting.tenant, key: setting.key, value: replacement)
            return replacement
        }
        guard let latest, latest != .null else { return nil }
        return try open(latest, setting)
    }
}
