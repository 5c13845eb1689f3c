import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Passkey challenges: single-use, five minutes, bound to their purpose")
struct PasskeyChallengeTests {
    static func redeem(_ h: Harness, _ challenge: [UInt8], purpose: String) async -> Bool {
        do {
            try await h.app.passkeyChallenges.redeem(challenge, purpose: purpose, tenant: h.tenant.tenantId, now: h.clock.now, store: h.app.store)
            return true
        } catch {
            return false
        }
    }

    @Test("a challenge works once, only for what it was issued for, and only for five minutes")
    func challengeRules() async throws {
        try await Harness.run { h in
            let purpose = PasskeyRegistration.purpose(tenant: h.tenant.tenantId, user: "user-a")
            let (first, expires) = h.app.passkeyChallenges.issue(purpose, now: h.clock.now)
            #expect(abs(expires.timeIntervalSince(h.clock.now) - 300) < 1)
            #expect(await !Self.redeem(h, first, purpose: PasskeyRegistration.purpose(tenant: h.tenant.tenantId, user: "user-b")))
            #expect(await Self.redeem(h, first, purpose: purpose))
            #expect(await !Self.redeem(h, first, purpose: purpose))
            let (second, _) = h.app.passkeyChallenges.issue(purpose, now: h.clock.now)
            var forged = second
            forged[3] ^= 1
            #expect(await !Self.redeem(h, forged, purpose: purpose))
            h.clock.advance(301)
            #expect(await !Self.redeem(h, second, purpose: purpose))
            #expect(await !Self.redeem(h, Array(second.prefix(20)), purpose: purpose))
        }
    }

    @Test("any replica can check another's challenge: the key is shared through the store")
    func sharedKey() async throws {
        try await Harness.run { h in
            let again = try await PasskeyChallenges.loadOrCreate(store: h.app.store, secrets: h.app.signingKeys.secrets)
            let purpose = "create:t:u"
            let (challenge, _) = h.app.passkeyChallenges.issue(purpose, now: h.clock.now)
            try await again.redeem(challenge, purpose: purpose, tenant: h.tenant.tenantId, now: h.clock.now, store: h.app.store)
        }
    }
}
