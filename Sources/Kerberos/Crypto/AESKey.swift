import CKerberosAES
import Crypto

/// An AES key whose key schedule is expanded once, for AES-CTS (RFC 3962) and for DR's block encryptions: on the
/// processor's AES instructions through the CKerberosAES target where the processor has them, and otherwise through
/// swift-crypto's AES (BoringSSL's, constant time without the instructions too), which expands the key again at
/// every call.
struct AESKey: Sendable {
    private enum Backend: Sendable {
        case hardware(ExpandedAESKey)
        case portable(SymmetricKey)
    }
    private let backend: Backend

    /// Whether this processor has the AES instructions CKerberosAES uses.
    static let hardwareAvailable = tessera_krb_aes_available() != 0

    /// Expands `key` (16 or 32 bytes); `hardware: false` keeps swift-crypto's AES (for tests comparing the two).
    init(_ key: SymmetricKey, hardware: Bool = AESKey.hardwareAvailable) throws {
        guard key.bitCount == 128 || key.bitCount == 256 else {
            throw KerberosError.malformed("an AES key must be 16 or 32 bytes, not \(key.bitCount / 8)")
        }
        backend = hardware && Self.hardwareAvailable ? .hardware(ExpandedAESKey(key)) : .portable(key)
    }

    /// Whether this key runs on the AES instructions.
    var usesHardware: Bool {
        if case .hardware = backend { return true }
        return false
    }

    /// One block encrypted on its own (ECB).
    func encryptBlock(_ block: [UInt8]) throws -> [UInt8] {
        precondition(block.count == AESCTS.blockSize)
        switch backend {
        case .hardware(let expanded):
            return [UInt8](unsafeUninitializedCapacity: AESCTS.blockSize) { out, count in
                block.withUnsafeBufferPointer { tessera_krb_aes_encrypt_block(expanded.key, $0.baseAddress!, out.baseAddress!) }
                count = AESCTS.blockSize
            }
        case .portable(let key):
            return try AESCTS.encrypt(block, key: key)
        }
    }

    /// RFC 3962's AES-CTS encryption with a zero IV; at least one block.
    func encryptCTS(_ plaintext: [UInt8]) throws -> [UInt8] {
        switch backend {
        case .hardware(let expanded):
            return try expanded.run(plaintext[...], tessera_krb_aes_cts_encrypt)
        case .portable(let key):
            return try AESCTS.encrypt(plaintext, key: key)
        }
    }

    /// RFC 3962's AES-CTS decryption with a zero IV; at least one block.
    func decryptCTS(_ ciphertext: ArraySlice<UInt8>) throws -> [UInt8] {
        switch backend {
        case .hardware(let expanded):
            return try expanded.run(ciphertext, tessera_krb_aes_cts_decrypt)
        case .portable(let key):
            return try AESCTS.decrypt(ciphertext, key: key)
        }
    }
}

/// The expanded round keys, in memory of their own that is zeroed when the last reference goes. Immutable once
/// made, hence Sendable.
private final class ExpandedAESKey: @unchecked Sendable {
    let key: UnsafeMutablePointer<tessera_krb_aes_key>

    init(_ symmetric: SymmetricKey) {
        key = .allocate(capacity: 1)
        let status = symmetric.withUnsafeBytes { bytes in
            tessera_krb_aes_init(key, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        // The length was checked and the instructions were found: expansion cannot fail.
        precondition(status == 0, "AES key expansion failed")
    }

    deinit {
        tessera_krb_aes_clear(key)
        key.deallocate()
    }

    typealias CTS = (UnsafePointer<tessera_krb_aes_key>?, UnsafePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, Int) -> Int32

    /// `operation` over `input` into a new array of the same length.
    func run(_ input: ArraySlice<UInt8>, _ operation: CTS) throws -> [UInt8] {
        guard input.count >= AESCTS.blockSize else { throw KerberosError.malformed("AES-CTS input shorter than one block") }
        return input.withUnsafeBufferPointer { source in
            [UInt8](unsafeUninitializedCapacity: source.count) { out, count in
                _ = operation(key, source.baseAddress, out.baseAddress, source.count)
                count = source.count
            }
        }
    }
}
