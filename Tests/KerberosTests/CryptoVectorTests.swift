import Crypto
import Testing

@testable import Kerberos

@Suite struct CryptoVectorTests {
    static let vectors = CryptoVectors.all

    @Test(arguments: vectors.nfold)
    func nFoldMatchesRFC3961(_ v: CryptoVectors.NFold) {
        #expect(nFold(hex(v.input), outputBytes: v.bits / 8) == hex(v.output))
    }

    @Test(arguments: vectors.cts)
    func ctsMatchesRFC3962AppendixB(_ v: CryptoVectors.CTS) throws {
        let key = SymmetricKey(data: hex(v.key))
        #expect(try AESCTS.encrypt(hex(v.input), key: key) == hex(v.output))
        #expect(try AESCTS.decrypt(hex(v.output)[...], key: key) == hex(v.input))
    }

    @Test(arguments: vectors.stringToKey)
    func stringToKeyMatchesTheRFCs(_ v: CryptoVectors.StringToKey) throws {
        let profile = try EncryptionType(rawValue: v.enctype).profile()
        let key = try profile.stringToKey(password: hex(v.password), salt: hex(v.salt), parameters: hex(v.params))
        #expect(key.withUnsafeBytes { Array($0) } == hex(v.key))
    }

    @Test(arguments: vectors.deriveKey)
    func keyDerivationMatches(_ v: CryptoVectors.DeriveKey) throws {
        let profile = try EncryptionType(rawValue: v.enctype).profile()
        let constant = hex(v.constant)
        let usage = Int32(constant[0..<4].reduce(0) { $0 << 8 | Int($1) })
        let purpose = EncryptionProfile.Purpose(rawValue: constant[4])!
        let derived = try profile.deriveKey(SymmetricKey(data: hex(v.baseKey)), usage: usage, purpose: purpose)
        #expect(derived.withUnsafeBytes { Array($0) } == hex(v.derived))
    }

    @Test(arguments: vectors.decrypt)
    func decryptionMatchesAndReencryptionRoundTrips(_ v: CryptoVectors.Decrypt) throws {
        let profile = try EncryptionType(rawValue: v.enctype).profile()
        let keys = try profile.usageKeys(SymmetricKey(data: hex(v.key)), usage: v.usage)
        let ciphertext = hex(v.ciphertext)
        #expect(Array(try profile.decrypt(ciphertext[...], keys: keys)) == hex(v.plaintext))
        // The confounder is the first block of the CTS plaintext: recover it and encryption gives the same bytes.
        let body = ciphertext.prefix(ciphertext.count - profile.macLength)
        let confounder = Array(try keys.encryption.decryptCTS(body[...]).prefix(16))
        #expect(try profile.encrypt(hex(v.plaintext), keys: keys, confounder: confounder) == ciphertext)
    }

    @Test(arguments: vectors.decrypt)
    func aFlippedBitFailsIntegrity(_ v: CryptoVectors.Decrypt) throws {
        let profile = try EncryptionType(rawValue: v.enctype).profile()
        let keys = try profile.usageKeys(SymmetricKey(data: hex(v.key)), usage: v.usage)
        var ciphertext = hex(v.ciphertext)
        ciphertext[ciphertext.count / 2] ^= 0x01
        #expect(throws: KerberosError(.integrityFailure, "")) { try profile.decrypt(ciphertext[...], keys: keys) }
    }

    @Test(arguments: vectors.checksum)
    func checksumsMatch(_ v: CryptoVectors.Checksum) throws {
        let profile = try ChecksumType(rawValue: v.checksumType).profile()
        #expect(profile.type.rawValue == v.enctype)
        let key = SymmetricKey(data: hex(v.key))
        #expect(try profile.checksum(hex(v.data), key: key, usage: v.usage) == hex(v.checksum))
        #expect(try profile.verifyChecksum(hex(v.checksum), data: hex(v.data), key: key, usage: v.usage))
        #expect(try !profile.verifyChecksum(hex(v.checksum), data: hex(v.data) + [0], key: key, usage: v.usage))
    }

    @Test(arguments: [1, 3, 16, 23, 24] as [Int32])
    func desAndRC4AreRefusedByName(_ type: Int32) {
        do {
            _ = try KerberosKey(encryptionType: EncryptionType(rawValue: type), bytes: [UInt8](repeating: 0, count: 16))
            Issue.record("enctype \(type) was accepted")
        } catch let error as KerberosError {
            #expect(error.code == .unsupportedEncryptionType)
            #expect(error.message.hasPrefix("SEC_E_ETYPE_NOT_SUPP"))
            #expect(error.message.contains(type >= 23 ? "RC4" : "DES"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aPasswordGivesTheKeyOfItsSalt() throws {
        // RFC 3962 appendix B, first vector, through the public initialiser (iteration count 1 is not the default,
        // so compare against the default-count derivation of the same profile instead).
        let key = try KerberosKey(encryptionType: .aes256CtsHmacSha196, password: "password", salt: "ATHENA.MIT.EDUraeburn")
        let expected = try EncryptionProfile.aes256Sha1.stringToKey(
            password: Array("password".utf8), salt: Array("ATHENA.MIT.EDUraeburn".utf8), parameters: [0, 0, 0x10, 0])
        #expect(key.key == expected)
        #expect(!key.description.contains("password"))
    }
}
