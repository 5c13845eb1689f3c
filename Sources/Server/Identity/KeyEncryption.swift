import Crypto
import Foundation
import TesseraCore

/// The key-encryption key (KEK): 32 bytes, given to every node from a file or the environment, never stored in the
/// database. It seals the deployment's own keys (the token-signing key ring, the key that MACs passkey challenges)
/// with AES-256-GCM before they are written, so a copy of the database (a backup, a replica, a dump) holds no usable
/// key without it.
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
    /// moved to another setting: `{"alg": "A256GCM", "sealed": base64(nonce ‖ ciphertext ‖ tag)}`.
    func seal(_ value: JSONValue, name: String) throws -> JSONValue {
        let box = try AES.GCM.seal(Data(value.serialized.utf8), using: key, authenticating: Data(name.utf8))
        guard let combined = box.combined else { throw KeyEncryptionError("AES-GCM gave no combined box") }
        return ["alg": "A256GCM", "sealed": .string(combined.base64EncodedString())]
    }

    /// The value `seal` sealed for `name`; throws when this key (or the name) is not the one it was sealed with.
    func open(_ sealed: JSONValue, name: String) throws(KeyEncryptionError) -> JSONValue {
        guard sealed["alg"]?.stringValue == "A256GCM", let text = sealed["sealed"]?.stringValue, let combined = Data(base64Encoded: text),
              let box = try? AES.GCM.SealedBox(combined: combined),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Data(name.utf8)),
              let value = try? JSONParser.parse(String(decoding: plain, as: UTF8.self))
        else { throw KeyEncryptionError.wrongKey(name) }
        return value
    }

    /// Whether a stored setting is a sealed one (else it is plain, from before a key-encryption key was given).
    static func isSealed(_ value: JSONValue) -> Bool { value["sealed"] != nil && value["alg"] != nil }
}

/// Why the deployment's keys cannot be opened or sealed: said at start, and the server does not start.
public struct KeyEncryptionError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }

    static func wrongKey(_ name: String) -> KeyEncryptionError {
        KeyEncryptionError("the key-encryption key does not open the stored keys (\(name)): start with the key they were encrypted with (nothing was changed)")
    }

    static let missingKey = KeyEncryptionError(
        "the stored keys are encrypted: give the key-encryption key (--key-encryption-key-file or \(KeyEncryptionKey.environmentVariable))")
}

/// One of the deployment's secrets kept as a setting: where it is stored, and the name its sealing is bound to.
struct DeploymentSecret: Sendable {
    let tenant: String
    let key: String
    var name: String { "\(tenant)/\(key)" }

    /// The token-signing key ring.
    static let signingKeys = DeploymentSecret(tenant: SigningKey.settingsTenant, key: "signingKey")
    /// The key that MACs passkey challenges (see `PasskeyChallenges`).
    static let challengeKey = DeploymentSecret(tenant: "", key: "challengeKey")
    /// Every secret a deployment makes on its first start, for migration and `tessera keys rewrap`.
    static let all = [signingKeys, challengeKey]
}

/// How the deployment's secrets are read from and written to the store: sealed with the key-encryption key when there
/// is one, plain otherwise.
struct DeploymentSecrets: Sendable {
    let keyEncryption: KeyEncryptionKey?

    /// The plain value of a stored one: opened when sealed (which needs the right key), as is when plain.
    func open(_ stored: JSONValue, _ secret: DeploymentSecret) throws(KeyEncryptionError) -> JSONValue {
        guard KeyEncryptionKey.isSealed(stored) else { return stored }
        guard let keyEncryption else { throw KeyEncryptionError.missingKey }
        return try keyEncryption.open(stored, name: secret.name)
    }

    /// What to store for a plain value: sealed when there is a key.
    func seal(_ plain: JSONValue, _ secret: DeploymentSecret) throws -> JSONValue {
        try keyEncryption.map { try $0.seal(plain, name: secret.name) } ?? plain
    }

    /// The secret's plain value: made with `make` when there is none (of nodes making one at once, the first to
    /// commit is every node's), rewritten in its current shape when `upgrade` returns one, and sealed in the store when
    /// there is a key and it is still plain there (migration: idempotent, and a value another node rewrote first is
    /// taken as it is). A stored value this key does not open throws and is never overwritten.
    func loadOrCreate(_ secret: DeploymentSecret, store: any DirectoryStore, make: () throws -> JSONValue,
                      upgrade: (JSONValue) throws -> JSONValue? = { _ in nil }) async throws -> JSONValue {
        var stored: JSONValue
        if let existing = try await store.read({ tx in try await tx.setting(tenant: secret.tenant, key: secret.key) }) {
            stored = existing
        } else {
            let made = try seal(make(), secret)
            stored = try await store.write { tx in try await tx.settingOrPut(tenant: secret.tenant, key: secret.key, value: made) }
        }
        let plain = try open(stored, secret)
        let upgraded = try upgrade(plain)
        guard upgraded != nil || (keyEncryption != nil && !KeyEncryptionKey.isSealed(stored)) else { return plain }
        let replacement = try seal(upgraded ?? plain, secret)
        let observed = stored
        stored = try await store.write { tx in
            let now = try await tx.setting(tenant: secret.tenant, key: secret.key)
            guard now == observed else { return now ?? observed }
            try await tx.putSetting(tenant: secret.tenant, key: secret.key, value: replacement)
            return replacement
        }
        return try open(stored, secret)
    }

    /// Seals every deployment secret stored under `old` (nil: stored plain) under `new` (nil: stores them plain), in
    /// one transaction; returns the names rewritten. Throws, changing nothing, when `old` does not open one.
    static func rewrap(store: any DirectoryStore, old: KeyEncryptionKey?, new: KeyEncryptionKey?) async throws -> [String] {
        let from = DeploymentSecrets(keyEncryption: old), to = DeploymentSecrets(keyEncryption: new)
        return try await store.write { tx in
            var names: [String] = []
            for secret in DeploymentSecret.all {
                guard let stored = try await tx.setting(tenant: secret.tenant, key: secret.key) else { continue }
                if !KeyEncryptionKey.isSealed(stored), old != nil { throw KeyEncryptionError("\(secret.name) is stored unencrypted: rewrap it without --old-key-file") }
                try await tx.putSetting(tenant: secret.tenant, key: secret.key, value: try to.seal(try from.open(stored, secret), secret))
                names.append(secret.name)
            }
            return names
        }
    }
}
