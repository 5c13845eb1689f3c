import CKerberosAES
import Crypto

import protocol Foundation.DataProtocol

/// The two keys one key usage encrypts with: Ke for AES-CTS, its key schedule expanded once, and Ki for the HMAC,
/// keyed once (its inner and outer pads hashed), so that each message copies it instead of keying it again.
struct UsageKeys: Sendable {
    let encryption: AESKey
    let integrity: SymmetricKey
    let integrityMAC: HMACState
}

extension EncryptionProfile {
    /// Ke and Ki of `usage`. `baseCipher` is `base` already expanded for AES, for a caller deriving two usages'
    /// keys from one session key (RFC 3962 derives with AES; RFC 8009 with HMAC, which ignores it).
    func usageKeys(_ base: SymmetricKey, usage: Int32, baseCipher: AESKey? = nil) throws -> UsageKeys {
        let cipher = try family == .sha1 ? baseCipher ?? AESKey(base) : nil
        let integrity = try deriveKey(base, usage: usage, purpose: .integrity, baseCipher: cipher)
        return UsageKeys(
            encryption: try AESKey(deriveKey(base, usage: usage, purpose: .encryption, baseCipher: cipher)),
            integrity: integrity, integrityMAC: HMACState(profile: self, key: integrity))
    }

    /// RFC 3961 section 5.3 / RFC 8009 section 5: a confounder of one block, AES-CTS with Ke, and a truncated HMAC
    /// with Ki over the plaintext (RFC 3962) or over the zero IV and the ciphertext (RFC 8009).
    func encrypt(_ plaintext: [UInt8], keys: UsageKeys, confounder: [UInt8]) throws -> [UInt8] {
        precondition(confounder.count == AESCTS.blockSize)
        let input = confounder + plaintext
        var out = try keys.encryption.encryptCTS(input)
        switch family {
        case .sha1:
            var mac = keys.integrityMAC
            mac.update(input)
            out.append(contentsOf: mac.finalize().prefix(macLength))
        case .sha2:
            var mac = keys.integrityMAC
            mac.update([UInt8](repeating: 0, count: 16))
            mac.update(out)
            out.append(contentsOf: mac.finalize().prefix(macLength))
        }
        return out
    }

    /// Decrypts and verifies; the plaintext without its confounder (a slice of the one buffer decrypted into), or an
    /// integrity error. Nothing unverified is returned.
    func decrypt(_ ciphertext: ArraySlice<UInt8>, keys: UsageKeys) throws -> ArraySlice<UInt8> {
        guard ciphertext.count >= AESCTS.blockSize + macLength else {
            throw KerberosError.malformed("ciphertext shorter than a confounder and a checksum")
        }
        let body = ciphertext.prefix(ciphertext.count - macLength)
        let mac = ciphertext.suffix(macLength)
        switch family {
        case .sha1:
            let plain = try keys.encryption.decryptCTS(body)
            var check = keys.integrityMAC
            check.update(plain)
            guard check.verify(truncatedTo: mac) else {
                throw KerberosError.integrity("the ciphertext's HMAC does not verify (a wrong key or altered data)")
            }
            return plain.dropFirst(AESCTS.blockSize)
        case .sha2:
            var authenticated = keys.integrityMAC
            authenticated.update([UInt8](repeating: 0, count: 16))
            authenticated.update(body)
            guard authenticated.verify(truncatedTo: mac) else {
                throw KerberosError.integrity("the ciphertext's HMAC does not verify (a wrong key or altered data)")
            }
            return try keys.encryption.decryptCTS(body).dropFirst(AESCTS.blockSize)
        }
    }

    /// The keyed checksum of `data` (RFC 3961 section 5.4: HMAC with Kc, truncated).
    func checksum(_ data: some DataProtocol, key base: SymmetricKey, usage: Int32) throws -> [UInt8] {
        let kc = try deriveKey(base, usage: usage, purpose: .checksum)
        return Array(hmac(kc, data).prefix(macLength))
    }

    func verifyChecksum(_ checksum: some Collection<UInt8>, data: some DataProtocol, key: SymmetricKey, usage: Int32)
        throws -> Bool
    {
        guard checksum.count == macLength else { return false }
        return constantTimeEqual(try self.checksum(data, key: key, usage: usage), checksum)
    }
}

/// An incremental HMAC with the profile's hash. A value: a copy of a keyed state is a fresh HMAC with that key.
/// HMAC-SHA1 runs on the processor's SHA extensions (CKerberosAES) where it has them: a plain C struct, copied
/// without an allocation and updated in place, where swift-crypto's HMAC allocates and goes through generic
/// `DataProtocol` code at each copy, update and finalization.
struct HMACState: Sendable {
    private enum Portable: Sendable {
        case sha1(HMAC<Insecure.SHA1>), sha256(HMAC<SHA256>), sha384(HMAC<SHA384>)
        /// Held only while an update runs, so that the hash being updated is the only reference to its state.
        case updating
    }
    /// The SHA-extensions state, used when `portable` is nil.
    private var hardware = tessera_krb_hmac_sha1()
    private var portable: Portable?

    /// Whether this processor has the SHA extensions CKerberosAES uses.
    static let sha1HardwareAvailable = tessera_krb_sha1_available() != 0

    /// `hardware: false` keeps swift-crypto's HMAC-SHA1 (for tests comparing the two).
    init(profile: EncryptionProfile, key: SymmetricKey, hardware: Bool = HMACState.sha1HardwareAvailable) {
        switch (profile.family, profile.keyLength) {
        case (.sha1, _) where hardware && Self.sha1HardwareAvailable:
            key.withUnsafeBytes {
                tessera_krb_hmac_sha1_init(&self.hardware, $0.bindMemory(to: UInt8.self).baseAddress, $0.count)
            }
        case (.sha1, _): portable = .sha1(HMAC(key: key))
        case (.sha2, 16): portable = .sha256(HMAC(key: key))
        default: portable = .sha384(HMAC(key: key))
        }
    }

    /// Hashes `data` into the state in place: swift-crypto's hash state is copied on write, and updating the payload of
    /// an enum that still holds it would copy it at every update.
    mutating func update(_ data: some DataProtocol) {
        switch portable {
        case nil:
            let contiguous: Void? = data.withContiguousStorageIfAvailable {
                tessera_krb_sha1_update(&hardware.inner, $0.baseAddress, $0.count)
            }
            if contiguous == nil {
                for region in data.regions {
                    region.withUnsafeBytes {
                        tessera_krb_sha1_update(&hardware.inner, $0.bindMemory(to: UInt8.self).baseAddress, $0.count)
                    }
                }
            }
        case .sha1(var h):
            portable = .updating
            h.update(data: data)
            portable = .sha1(h)
        case .sha256(var h):
            portable = .updating
            h.update(data: data)
            portable = .sha256(h)
        case .sha384(var h):
            portable = .updating
            h.update(data: data)
            portable = .sha384(h)
        case .updating:
            preconditionFailure("an HMAC updated while it is being updated")
        }
    }

    func finalize() -> [UInt8] {
        switch portable {
        case nil:
            [UInt8](unsafeUninitializedCapacity: 20) { out, count in
                withUnsafePointer(to: hardware) { tessera_krb_hmac_sha1_final($0, out.baseAddress!) }
                count = 20
            }
        case .sha1(let h): Array(h.finalize())
        case .sha256(let h): Array(h.finalize())
        case .sha384(let h): Array(h.finalize())
        case .updating: preconditionFailure("an HMAC finalized while it is being updated")
        }
    }

    /// Whether the HMAC, truncated to `expected`'s length, is `expected`, compared in constant time. For the
    /// SHA-extensions state the HMAC is finished on the stack, with nothing allocated.
    func verify(truncatedTo expected: some Collection<UInt8>) -> Bool {
        guard portable == nil else {
            let mac = finalize()
            return expected.count <= mac.count && constantTimeEqual(mac.prefix(expected.count), expected)
        }
        guard expected.count <= 20 else { return false }
        var mac: (UInt64, UInt64, UInt32) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &mac) { out in
            withUnsafePointer(to: hardware) {
                tessera_krb_hmac_sha1_final($0, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            return constantTimeEqual(out.prefix(expected.count), expected)
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}
