import Crypto
import _CryptoExtras

import struct Foundation.Data

/// AES in CBC mode with ciphertext stealing as RFC 3962 section 5 defines it for Kerberos (the last two blocks are
/// always swapped, also when the input is a whole number of blocks), with an all-zero initial vector. Inputs of
/// one block or less are one AES block (RFC 3962 requires at least one block; the confounder guarantees it).
enum AESCTS {
    static let blockSize = 16

    static func encrypt(_ plaintext: [UInt8], key: SymmetricKey) throws -> [UInt8] {
        let n = plaintext.count
        guard n >= blockSize else { throw KerberosError.malformed("AES-CTS input shorter than one block") }
        let blocks = (n + blockSize - 1) / blockSize
        var padded = plaintext
        padded.append(contentsOf: repeatElement(0, count: blocks * blockSize - n))
        let cbc = [UInt8](try AES._CBC.encrypt(padded, using: key, iv: zeroIV, noPadding: true))
        guard blocks > 1 else { return cbc }
        let last = n - (blocks - 1) * blockSize  // bytes in the final, possibly partial, block
        var out = [UInt8]()
        out.reserveCapacity(n)
        out.append(contentsOf: cbc[0..<((blocks - 2) * blockSize)])
        out.append(contentsOf: cbc[((blocks - 1) * blockSize)..<(blocks * blockSize)])
        out.append(contentsOf: cbc[((blocks - 2) * blockSize)..<((blocks - 2) * blockSize + last)])
        return out
    }

    static func decrypt(_ ciphertext: ArraySlice<UInt8>, key: SymmetricKey) throws -> [UInt8] {
        let n = ciphertext.count
        guard n >= blockSize else { throw KerberosError.malformed("AES-CTS ciphertext shorter than one block") }
        let base = ciphertext.startIndex
        let blocks = (n + blockSize - 1) / blockSize
        if blocks == 1 {
            return [UInt8](try AES._CBC.decrypt(ciphertext, using: key, iv: zeroIV, noPadding: true))
        }
        let last = n - (blocks - 1) * blockSize
        let swappedStart = base + (blocks - 2) * blockSize  // holds the encryption of the final block
        // Decrypting the final block alone gives (final plaintext, zero padded) XOR the previous ciphertext block,
        // whose stolen tail is therefore the tail of this output.
        let x = [UInt8](
            try AES._CBC.decrypt(
                ciphertext[swappedStart..<(swappedStart + blockSize)], using: key, iv: zeroIV, noPadding: true))
        var chain = [UInt8]()
        chain.reserveCapacity(blocks * blockSize)
        chain.append(contentsOf: ciphertext[base..<swappedStart])
        chain.append(contentsOf: ciphertext[(swappedStart + blockSize)..<(swappedStart + blockSize + last)])
        chain.append(contentsOf: x[last..<blockSize])
        chain.append(contentsOf: ciphertext[swappedStart..<(swappedStart + blockSize)])
        var plain = [UInt8](try AES._CBC.decrypt(chain, using: key, iv: zeroIV, noPadding: true))
        plain.removeLast(blocks * blockSize - n)
        return plain
    }

    private static let zeroIV = try! AES._CBC.IV(ivBytes: [UInt8](repeating: 0, count: 16))
}
