import Foundation
import WebAuthn
import X509
import SwiftASN1

/// The vectors in `Vectors/` (see its README): ceremonies from Chromium, python-fido2, the W3C specification and
/// published sources, each with its input to the verifier and the expected outcome.
struct Vector: CustomStringConvertible, Sendable {
    let path: String
    let data: Data

    var object: [String: Any] { try! JSONSerialization.jsonObject(with: data) as! [String: Any] }
    var ceremony: String { object["ceremony"] as! String }
    var input: [String: Any] { object["input"] as! [String: Any] }
    var expect: [String: Any] { object["expect"] as! [String: Any] }

    var description: String { path }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    static let all: [Vector] = {
        let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)!
        var vectors: [Vector] = []
        for case let url as URL in enumerator where url.pathExtension == "json" {
            vectors.append(load(url))
        }
        return vectors.sorted { $0.path < $1.path }
    }()

    static func load(_ url: URL) -> Vector {
        Vector(path: String(url.path.dropFirst(folder.path.count + 1)), data: try! Data(contentsOf: url))
    }

    static func named(_ path: String) -> Vector { all.first { $0.path == path }! }

    var challenge: [UInt8] { Base64URL.decode(input["challenge"] as! String)! }
    var requireUserVerification: Bool { input["requireUserVerification"] as? Bool ?? false }
    var responseJSON: [UInt8] { Array(try! JSONSerialization.data(withJSONObject: input["response"]!)) }

    /// The vector's own `verificationTime`, or one fixed instant: never the wall clock, so that a vector judged today is
    /// judged the same next year (a vector whose certificates matter names its time).
    var verificationTime: Date {
        (input["verificationTime"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) } ?? Self.fixedTime
    }

    static let fixedTime = ISO8601DateFormatter().date(from: "2026-12-06T12:00:00Z")!

    func relyingParty() async throws -> RelyingParty {
        let time = verificationTime
        let anchors = try (input["trustAnchors"] as? [String] ?? []).map { try Certificate(pemEncoded: $0) }
        var metadata: MetadataBLOB? = nil
        if let spec = input["metadata"] as? [String: Any] {
            metadata = try await MetadataBLOB(jwt: spec["blob"] as! String,
                                              root: try Certificate(pemEncoded: spec["rootCertificate"] as! String), at: time)
        }
        let algorithms = (input["allowedAlgorithms"] as? [Int]).map { $0.map(COSEAlgorithm.init) } ?? COSEAlgorithm.defaultAllowed
        return RelyingParty(id: input["rpId"] as! String, origins: input["origins"] as! [String],
                            allowedTopOrigins: input["allowedTopOrigins"] as? [String] ?? [], allowedAlgorithms: algorithms, trustAnchors: anchors, metadata: metadata, clock: { time })
    }

    func storedCredential() throws -> StoredCredential {
        let credential = input["credential"] as! [String: Any]
        return StoredCredential(
            id: Base64URL.decode(credential["id"] as! String)!,
            publicKey: try CredentialPublicKey(cose: Base64URL.decode(credential["publicKey"] as! String)!),
            signCount: UInt32(credential["signCount"] as! Int), backupEligible: credential["backupEligible"] as? Bool ?? false,
            userHandle: (credential["userHandle"] as? String).flatMap { Base64URL.decode($0) })
    }

    var expectsSuccess: Bool { expect["verified"] as? Bool ?? true }
    var expectedError: String? { expect["error"] as? String }
}
