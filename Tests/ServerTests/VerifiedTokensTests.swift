import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// A Graph caller's bearer token has its signature checked once per node and is then found by its digest
/// (`VerifiedTokens`); what depends on the moment or on the ring is checked at every request as before.
@Suite("Verified bearer tokens")
struct VerifiedTokensTests {
    /// `token` with one character of its signature changed.
    static func tampered(_ token: String) -> String {
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var signature = Array(parts[2])
        signature[10] = signature[10] == "A" ? "B" : "A"
        parts[2] = String(signature)
        return parts.joined(separator: ".")
    }

    @Test("a token is verified once and then found; a changed signature is refused and not kept; a kept token whose key was rotated out, or that expired, is refused")
    func keptAndStillChecked() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let before = h.app.verifiedTokens.count
            #expect(await h.graph("GET", "users", token: token).status == 200)
            #expect(h.app.verifiedTokens.count == before + 1)
            #expect(await h.graph("GET", "users", token: token).status == 200)
            #expect(h.app.verifiedTokens.count == before + 1, "the second request found the token it had verified")
            let forged = await h.graph("GET", "users", token: Self.tampered(token))
            #expect(forged.status == 401 && forged.errorCode == "InvalidAuthenticationToken")
            #expect(h.app.verifiedTokens.count == before + 1, "a token whose signature fails is not kept")

            // Two rotations take the key that signed it out of the ring: kept or not, it is refused.
            try await KeyRingTests.rotate(h)
            #expect(await h.graph("GET", "users", token: token).status == 200, "signed by the previous key, still published")
            try await KeyRingTests.rotate(h)
            #expect(await h.graph("GET", "users", token: token).status == 401, "its key is no longer published")

            // A kept token is still refused once it expired.
            let fresh = try await h.accessToken()
            #expect(await h.graph("GET", "users", token: fresh).status == 200)
            h.clock.advance(days: 1)
            let expired = await h.graph("GET", "users", token: fresh)
            #expect(expired.status == 401 && expired.errorCode == "InvalidAuthenticationToken")
        }
    }
}
