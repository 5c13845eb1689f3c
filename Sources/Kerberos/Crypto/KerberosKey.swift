import Crypto

/// A long-term or session key: its encryption type, its key version number (kvno) where it has one, and the key.
/// Its description never shows the key.
public struct KerberosKey: Sendable, CustomStringConvertible {
    /// The encryption type the key is for.
    public let encryptionType: EncryptionType
    /// The key version number (`msDS-KeyVersionNumber` for an AD account); 0 for session keys.
    public let version: UInt32
    let key: SymmetricKey

    /// A key from its bytes; throws for refused types (DES, RC4) and for bytes of the wrong length.
    public init(encryptionType: EncryptionType, version: UInt32 = 0, bytes: some Collection<UInt8>) throws {
        let profile = try encryptionType.profile()
        guard bytes.count == profile.keyLength else {
            throw KerberosError.malformed("a \(encryptionType) key must be \(profile.keyLength) bytes, not \(bytes.count)")
        }
        self.encryptionType = encryptionType
        self.version = version
        self.key = SymmetricKey(data: Array(bytes))
    }

    /// The key a password gives for a salt (for an AD account: the realm in upper case and the account's name, as
    /// `CORP.EXAMPLE.TESTtessera-drs`), by RFC 3962 or RFC 8009 string-to-key with the default iteration count.
    public init(encryptionType: EncryptionType, version: UInt32 = 0, password: String, salt: String) throws {
        let profile = try encryptionType.profile()
        self.encryptionType = encryptionType
        self.version = version
        self.key = try profile.stringToKey(password: Array(password.utf8), salt: Array(salt.utf8))
    }

    init(encryptionType: EncryptionType, version: UInt32, key: SymmetricKey) {
        self.encryptionType = encryptionType
        self.version = version
        self.key = key
    }

    /// The key's bytes, for a service that keeps its own long-term keys in its store (never for logs).
    public var keyBytes: [UInt8] { key.withUnsafeBytes { Array($0) } }

    public var description: String { "KerberosKey(\(encryptionType), kvno \(version))" }
}
