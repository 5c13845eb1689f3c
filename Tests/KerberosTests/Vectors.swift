import Foundation

/// The crypto vectors of `Vectors/crypto.json` (see `Vectors/README.md` for their sources).
struct CryptoVectors: Decodable {
    struct NFold: Decodable, Sendable { let input: String, bits: Int, output: String }
    struct CTS: Decodable, Sendable { let key: String, input: String, output: String }
    struct StringToKey: Decodable, Sendable { let enctype: Int32, password: String, salt: String, params: String, key: String }
    struct DeriveKey: Decodable, Sendable { let enctype: Int32, baseKey: String, constant: String, derived: String }
    struct Decrypt: Decodable, Sendable { let enctype: Int32, usage: Int32, key: String, plaintext: String, ciphertext: String }
    struct Checksum: Decodable, Sendable {
        let checksumType: Int32, enctype: Int32, usage: Int32, key: String, data: String, checksum: String
    }

    let nfold: [NFold]
    let cts: [CTS]
    let stringToKey: [StringToKey]
    let deriveKey: [DeriveKey]
    let decrypt: [Decrypt]
    let checksum: [Checksum]

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let all: CryptoVectors = {
        let data = try! Data(contentsOf: folder.appendingPathComponent("Vectors/crypto.json"))
        return try! JSONDecoder().decode(CryptoVectors.self, from: data)
    }()
}

/// Hex to bytes (the vectors' notation).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
}

/// The captured tickets of `Fixtures/` (see its README).
enum Fixtures {
    struct Metadata: Decodable {
        let capturedAt: Int64
        let realm: String
        let servicePrincipal: String
        let rc4ServicePrincipal: String
        let client: String
        let domainSidBase64: String
    }

    static let folder = CryptoVectors.folder.appendingPathComponent("Fixtures")
    static let metadata = try! JSONDecoder().decode(
        Metadata.self, from: Data(contentsOf: folder.appendingPathComponent("fixtures.json")))
    static let keytab = [UInt8](try! Data(contentsOf: folder.appendingPathComponent("service.keytab")))

    static func token(_ name: String) -> [UInt8] {
        let text = try! String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        return [UInt8](Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))!)
    }

    /// A moment just after the capture, when the tickets were fresh.
    static var captureTime: Date { Date(timeIntervalSince1970: TimeInterval(metadata.capturedAt)) }
}
