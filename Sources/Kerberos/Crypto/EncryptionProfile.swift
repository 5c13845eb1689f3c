import Crypto
import _CryptoExtras

import protocol Foundation.DataProtocol

/// The simplified profile (RFC 3961 section 5.3) as RFC 3962 instantiates it for AES with HMAC-SHA1, and RFC 8009's
/// AES with HMAC-SHA2: key derivation, string-to-key, encryption with integrity, and keyed checksums.
struct EncryptionProfile: Sendable {
    enum Family: Sendable { case sha1, sha2 }

    let type: EncryptionType
    let family: Family
    /// Bytes of the protocol key (and of Ke).
    let keyLength: Int
    /// Bytes of Ki and Kc, and of the truncated HMAC.
    let macLength: Int
    let checksumType: ChecksumType

    static let aes128Sha1 = EncryptionProfile(
        type: .aes128CtsHmacSha196, family: .sha1, keyLength: 16, macLength: 12, checksumType: .hmacSha196Aes128)
    static let aes256Sha1 = EncryptionProfile(
        type: .aes256CtsHmacSha196, family: .sha1, keyLength: 32, macLength: 12, checksumType: .hmacSha196Aes256)
    static let aes128Sha256 = EncryptionProfile(
        type: .aes128CtsHmacSha256128, family: .sha2, keyLength: 16, macLength: 16, checksumType: .hmacSha256128Aes128)
    static let aes256Sha384 = EncryptionProfile(
        type: .aes256CtsHmacSha384192, family: .sha2, keyLength: 32, macLength: 24, checksumType: .hmacSha384192Aes256)

    /// Derived keys per RFC 3961 section 5.3 (usage | 0x99 for checksums, 0xAA for encryption, 0x55 for integrity).
    enum Purpose: UInt8 {
        case checksum = 0x99, encryption = 0xAA, integrity = 0x55

        var index: Int {
            switch self {
            case .checksum: 0
            case .encryption: 1
            case .integrity: 2
            }
        }
    }

    // MARK: Key derivation

    /// The n-folded constants of key usages 0 to 63 for each purpose, folded once: every session key needs four.
    private static let foldedConstants: [[[UInt8]]] = (0..<64).map { usage in
        [Purpose.checksum, .encryption, .integrity].map { nFold([0, 0, 0, UInt8(usage), $0.rawValue], outputBytes: 16) }
    }

    /// n-fold(usage | purpose) to one AES block, RFC 3962's DK constant.
    static func foldedConstant(usage: Int32, purpose: Purpose) -> [UInt8] {
        if (0..<foldedConstants.count).contains(Int(usage)) { return foldedConstants[Int(usage)][purpose.index] }
        let u = UInt32(bitPattern: usage)
        return nFold(
            [UInt8(u >> 24), UInt8((u >> 16) & 0xFF), UInt8((u >> 8) & 0xFF), UInt8(u & 0xFF), purpose.rawValue],
            outputBytes: AESCTS.blockSize)
    }

    /// DK(base, usage | purpose) for RFC 3962, KDF-HMAC-SHA2(base, usage | purpose, length) for RFC 8009.
    /// `baseCipher` is `base` expanded for AES, for a caller deriving several keys from one base (RFC 3962 only).
    func deriveKey(_ base: SymmetricKey, usage: Int32, purpose: Purpose, baseCipher: AESKey? = nil) throws
        -> SymmetricKey
    {
        switch family {
        case .sha1:
            return try dr(baseCipher ?? AESKey(base), folded: Self.foldedConstant(usage: usage, purpose: purpose))
        case .sha2:
            let u = UInt32(bitPattern: usage)
            let constant: [UInt8] = [UInt8(u >> 24), UInt8((u >> 16) & 0xFF), UInt8((u >> 8) & 0xFF), UInt8(u & 0xFF),
                purpose.rawValue]
            let bytes = purpose == .encryption ? keyLength : macLength
            return SymmetricKey(data: kdfHmacSha2(base, label: constant, bytes: bytes))
        }
    }

    /// RFC 3961 section 5.1's DK with random-to-key the identity (RFC 3962).
    func dk(_ base: SymmetricKey, constant: [UInt8]) throws -> SymmetricKey {
        let folded = constant.count == AESCTS.blockSize ? constant : nFold(constant, outputBytes: AESCTS.blockSize)
        return try dr(AESKey(base), folded: folded)
    }

    /// DR: successive AES encryptions of the n-folded constant, concatenated until the key is long enough (one
    /// block for AES-128, two for AES-256).
    private func dr(_ base: AESKey, folded: [UInt8]) throws -> SymmetricKey {
        var block = try base.encryptBlock(folded)
        var out = block
        while out.count < keyLength {
            block = try base.encryptBlock(block)
            out.append(contentsOf: block)
        }
        return SymmetricKey(data: out)
    }

    /// RFC 8009 section 3: KDF-HMAC-SHA2(key, label, k) = k-truncate(HMAC(key, 00000001 | label | 0x00 | k)), the
    /// SP 800-108 counter-mode KDF with one iteration and an empty context.
    func kdfHmacSha2(_ key: SymmetricKey, label: [UInt8], bytes: Int) -> [UInt8] {
        let bits = UInt32(bytes * 8)
        var input: [UInt8] = [0, 0, 0, 1]
        input.append(contentsOf: label)
        input.append(0)
        input.append(contentsOf: [UInt8(bits >> 24), UInt8((bits >> 16) & 0xFF), UInt8((bits >> 8) & 0xFF),
            UInt8(bits & 0xFF)])
        return Array(hmac(key, input).prefix(bytes))
    }

    func hmac(_ key: SymmetricKey, _ data: some DataProtocol) -> [UInt8] {
        switch (family, keyLength) {
        case (.sha1, _): Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
        case (.sha2, 16): Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        default: Array(HMAC<SHA384>.authenticationCode(for: data, using: key))
        }
    }

    // MARK: String to key

    /// The enctype's default string-to-key parameters: the PBKDF2 iteration count, big-endian.
    var defaultParameters: [UInt8] { family == .sha1 ? [0, 0, 0x10, 0] : [0, 0, 0x80, 0] }

    /// RFC 3962 section 4 (PBKDF2-HMAC-SHA1, then DK with "kerberos") and RFC 8009 section 4 (PBKDF2 with the
    /// enctype's hash over "enctype-name 0x00 salt", then KDF-HMAC-SHA2 with "kerberos").
    func stringToKey(password: [UInt8], salt: [UInt8], parameters: [UInt8]? = nil) throws -> SymmetricKey {
        let params = parameters ?? defaultParameters
        guard params.count == 4 else { throw KerberosError.malformed("string-to-key parameters are not 4 bytes") }
        let iterations = params.reduce(0) { $0 << 8 | Int($1) }
        guard iterations > 0 else { throw KerberosError.malformed("string-to-key iteration count is zero") }
        let kerberos = Array("kerberos".utf8)
        switch family {
        case .sha1:
            let tkey = try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: .insecureSHA1, outputByteCount: keyLength,
                unsafeUncheckedRounds: iterations)
            return try dk(tkey, constant: kerberos)
        case .sha2:
            var saltp = Array(type.description.utf8)
            saltp.append(0)
            saltp.append(contentsOf: salt)
            let tkey = try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: saltp, using: keyLength == 16 ? .sha256 : .sha384, outputByteCount: keyLength,
                unsafeUncheckedRounds: iterations)
            return SymmetricKey(data: kdfHmacSha2(tkey, label: kerberos, bytes: keyLength))
        }
    }
}
