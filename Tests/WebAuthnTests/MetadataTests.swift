import Foundation
import Testing
import WebAuthn
import SwiftASN1
import X509

/// FIDO MDS3 BLOBs: the signature chain, the entries and the status rules.
@Suite struct MetadataTests {
    static let pki = Vector.folder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("interop/webauthn/testpki")
    static func text(_ name: String) throws -> String { try String(contentsOf: pki.appendingPathComponent(name), encoding: .utf8) }
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aBlobSignedUnderTheRootIsReadWithItsEntries() async throws {
        let blob = try await MetadataBLOB(jwt: try Self.text("mds-blob.jwt"), root: try Certificate(pemEncoded: try Self.text("mds-root.pem")), at: Self.now)
        #expect(blob.number >= 1 && blob.entries.count >= 4)
        let certified = try #require(blob.entry(for: AAGUID("7e55e2a0-0a0a-4a0a-8a0a-00000000000a")!))
        #expect(certified.description != nil && !certified.attestationRootCertificates.isEmpty)
    }

    @Test func aBlobUnderAnotherRootIsRefused() async throws {
        let root = try Certificate(pemEncoded: try Self.text("mds-root.pem"))
        await #expect { try await MetadataBLOB(jwt: try Self.text("mds-blob-wrong-root.jwt"), root: root, at: Self.now) }
            throws: { ($0 as? WebAuthnError)?.code == .metadataBlobInvalid }
    }

    @Test func aTamperedPayloadIsRefused() async throws {
        let root = try Certificate(pemEncoded: try Self.text("mds-root.pem"))
        let parts = try Self.text("mds-blob.jwt").trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").map(String.init)
        var payload = Base64URL.decode(parts[1])!
        let text = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "REVOKED", with: "FIDO_CERTIFIED")
        payload = Array(text.utf8)
        let forged = [parts[0], Base64URL.encode(payload), parts[2]].joined(separator: ".")
        await #expect { try await MetadataBLOB(jwt: forged, root: root, at: Self.now) }
            throws: { ($0 as? WebAuthnError)?.code == .metadataBlobInvalid }
        await #expect { try await MetadataBLOB(jwt: "not a jwt", root: root, at: Self.now) }
            throws: { ($0 as? WebAuthnError)?.code == .metadataBlobInvalid }
    }
}
