import CKerberosAES
import Crypto

/// A ticket's session key (RFC 4120's EncryptionKey in the EncTicketPart), read in place: its bytes are a slice of
/// the decrypted ticket. A validation uses it twice, each time under a key usage of its own: to open the
/// authenticator (usage 11) and to seal the AP-REP (usage 12). For aes-cts-hmac-sha1-96 on a processor with the AES
/// and SHA instructions each is one call into CKerberosAES, which derives Ke and Ki on its stack and wipes them
/// before returning (no `SymmetricKey`, no expanded key on the heap); otherwise the profile's keys are derived as
/// for any key.
struct SessionKey: Sendable {
    let encryptionType: EncryptionType
    let profile: EncryptionProfile
    let bytes: ArraySlice<UInt8>

    /// Refuses DES and RC4 session keys by name, and a key of the wrong length.
    init(encryptionType: EncryptionType, bytes: ArraySlice<UInt8>) throws {
        let profile = try encryptionType.profile()
        guard bytes.count == profile.keyLength else {
            throw KerberosError.malformed(
                "a \(encryptionType) key must be \(profile.keyLength) bytes, not \(bytes.count)")
        }
        self.encryptionType = encryptionType
        self.profile = profile
        self.bytes = bytes
    }

    /// The key for swift-crypto, for the general path and for tests.
    var key: SymmetricKey { SymmetricKey(data: bytes) }

    /// Whether aes-cts-hmac-sha1-96 runs on CKerberosAES's one-call encryption and decryption here.
    static let oneCallAvailable = AESKey.hardwareAvailable && HMACState.sha1HardwareAvailable

    private var usesOneCall: Bool { profile.family == .sha1 && Self.oneCallAvailable }

    /// Decrypts and verifies `cipher` under `usage`: the plaintext without its confounder, or an integrity error.
    func decrypt(_ cipher: ArraySlice<UInt8>, usage: Int32) throws -> ArraySlice<UInt8> {
        guard usesOneCall else { return try profile.decrypt(cipher, keys: profile.usageKeys(key, usage: usage)) }
        let macLength = profile.macLength
        guard cipher.count >= AESCTS.blockSize + macLength else {
            throw KerberosError.malformed("ciphertext shorter than a confounder and a checksum")
        }
        var constants = Self.constants(usage: usage)
        var status: Int32 = 0
        let plain = [UInt8](unsafeUninitializedCapacity: cipher.count - macLength) { out, count in
            status = bytes.withUnsafeBufferPointer { key in
                cipher.withUnsafeBufferPointer { input in
                    tessera_krb_aes_sha1_decrypt(
                        key.baseAddress, key.count, &constants, input.baseAddress, input.count, out.baseAddress)
                }
            }
            count = out.count
        }
        guard status == 0 else {
            throw KerberosError.integrity("the ciphertext's HMAC does not verify (a wrong key or altered data)")
        }
        return plain.dropFirst(AESCTS.blockSize)
    }

    /// Encrypts `plaintext` under `usage` after a one-block `confounder`, with the enctype's HMAC.
    func encrypt(_ plaintext: [UInt8], usage: Int32, confounder: [UInt8]) throws -> [UInt8] {
        precondition(confounder.count == AESCTS.blockSize)
        guard usesOneCall else {
            return try profile.encrypt(plaintext, keys: profile.usageKeys(key, usage: usage), confounder: confounder)
        }
        var constants = Self.constants(usage: usage)
        let length = AESCTS.blockSize + plaintext.count + profile.macLength
        return [UInt8](unsafeUninitializedCapacity: length) { out, count in
            bytes.withUnsafeBufferPointer { key in
                _ = tessera_krb_aes_sha1_encrypt(
                    key.baseAddress, key.count, &constants, confounder, plaintext, plaintext.count, out.baseAddress)
            }
            count = length
        }
    }

    /// The n-folded constants of `usage`, folded once for the usages a validation uses.
    private static func constants(usage: Int32) -> tessera_krb_usage_constants {
        if (0..<Int32(folded.count)).contains(usage) { return folded[Int(usage)] }
        return fold(usage)
    }

    private static let folded: [tessera_krb_usage_constants] = (0..<32).map(fold)

    private static func fold(_ usage: Int32) -> tessera_krb_usage_constants {
        var constants = tessera_krb_usage_constants()
        withUnsafeMutableBytes(of: &constants.encryption) {
            $0.copyBytes(from: EncryptionProfile.foldedConstant(usage: usage, purpose: .encryption))
        }
        withUnsafeMutableBytes(of: &constants.integrity) {
            $0.copyBytes(from: EncryptionProfile.foldedConstant(usage: usage, purpose: .integrity))
        }
        return constants
    }
}
