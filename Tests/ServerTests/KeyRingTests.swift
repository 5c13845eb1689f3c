import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting

/// The signing key ring as Entra rotates it: the next key published before it signs, the previous one's tokens good
/// until they expire, rotation by hand and on a schedule, every node of a cluster on the same ring.
@Suite("Signing key rotation")
struct KeyRingTests {
    static func jwksKids(_ h: Harness) async -> [String] {
        await h.send("GET", "/\(h.tenant.tenantId)/discovery/v2.0/keys").json["keys"]?.arrayValue?.compactMap { $0["kid"]?.stringValue } ?? []
    }

    static func kid(_ token: String) throws -> String {
        try #require(JWT.decode(token)?.header["kid"]?.stringValue)
    }

    /// Rotates by hand, as `tessera keys rotate` does, and has `app` take the new ring at once.
    static func rotate(_ h: Harness) async throws {
        _ = try await DeploymentKeys.rotate(store: h.app.store, keyEncryption: nil, now: h.clock.now)
        await h.app.refreshSigningKeys(force: true)
    }

    @Test("the JWKS publishes the next key before it signs anything; after a rotation it signs, and the previous key stays published")
    func nextPublishedFirst() async throws {
        try await Harness.run { h in
            let ring = h.app.signingKeys.ring
            #expect(await Self.jwksKids(h) == [ring.current.kid, ring.next.kid])
            #expect(try Self.kid(try await h.accessToken()) == ring.current.kid)
            try await Self.rotate(h)
            let token = try await h.accessToken()
            // The key that signs now is the one relying parties could fetch before the rotation.
            #expect(try Self.kid(token) == ring.next.kid)
            let after = await Self.jwksKids(h)
            #expect(after.count == 3 && after[0] == ring.next.kid && after[2] == ring.current.kid)
            #expect(after[1] != ring.current.kid && after[1] != ring.next.kid)
        }
    }

    @Test("a token the previous key signed still verifies after a rotation; one by a key rotated out does not")
    func previousStaysValid() async throws {
        try await Harness.run { h in
            let first = try await h.accessToken()
            #expect(await h.graph("GET", "users", token: first).status == 200)
            try await Self.rotate(h)
            let second = try await h.accessToken()
            #expect(try Self.kid(second) != Self.kid(first))
            #expect(await h.graph("GET", "users", token: first).status == 200, "signed by the previous key, not expired")
            #expect(await h.graph("GET", "users", token: second).status == 200)
            try await Self.rotate(h)
            #expect(await h.graph("GET", "users", token: first).status == 401, "its key is no longer published")
            #expect(await h.graph("GET", "users", token: second).status == 200)
            #expect(try await !Self.jwksKids(h).contains(Self.kid(first)))
        }
    }

    @Test("a request signs with the key that was current when it began, though a rotation lands meanwhile")
    func onePerRequest() async throws {
        try await Harness.run { h in
            let began = h.app.signingKey
            try await SigningKeyRingCache.$requestKey.withValue(began) {
                try await Self.rotate(h)
                #expect(h.app.signingKey.kid == began.kid)
            }
            #expect(h.app.signingKey.kid != began.kid)
        }
    }

    @Test("serve rotates on its schedule: not before the period, at the first request after it")
    func scheduled() async throws {
        try await Harness.run { h in
            let node = try await TesseraApp.make(store: h.app.store, clock: h.clock, signingKeyRotation: 42 * 86_400)
            let ring = node.signingKeys.ring
            h.clock.advance(days: 41)
            _ = await node.handle(APIRequest(method: "GET", path: "/healthz", query: [], headers: [:], body: [], baseURL: Harness.base))
            #expect(node.signingKey.kid == ring.current.kid)
            // A check that outlasts its request's second (a loaded machine) goes on after it, and the next request
            // starts none meanwhile: the one after the period must find none running.
            while node.signingKeys.isChecking { try await Task.sleep(for: .milliseconds(10)) }
            h.clock.advance(days: 1)
            _ = await node.handle(APIRequest(method: "GET", path: "/healthz", query: [], headers: [:], body: [], baseURL: Harness.base))
            #expect(node.signingKey.kid == ring.next.kid)
            #expect(node.signingKeys.ring.previous?.kid == ring.current.kid)
            #expect(node.signingKeys.ring.rotatedAt == h.clock.now)
            // Not again until the next period is over.
            _ = await node.handle(APIRequest(method: "GET", path: "/healthz", query: [], headers: [:], body: [], baseURL: Harness.base))
            #expect(node.signingKey.kid == ring.next.kid)
        }
    }

    @Test("two nodes on one database agree after a rotation on one: the other takes the new ring within seconds, and each accepts the other's tokens")
    func twoNodes() async throws {
        try await Self.withTwoStores { a, b in
            let clock = TestClock()
            let one = try await TesseraApp.make(store: a, clock: clock)
            let two = try await TesseraApp.make(store: b, clock: clock)
            let tenant = try await TenantProvisioner(directory: one.directory).create(name: "Contoso", domain: "contoso.test")
            let h1 = Harness(app: one, clock: clock, tenant: tenant), h2 = Harness(app: two, clock: clock, tenant: tenant)
            #expect(one.signingKey.kid == two.signingKey.kid)
            let before = try await h1.accessToken()
            let old = one.signingKeys.ring
            try await Self.rotate(h1)
            #expect(one.signingKey.kid == old.next.kid)
            // Node two checks the store at most once a second, at a request; a check that outlasts its second (the whole
            // suite on two cores) goes on with the keys in memory, so allow it many.
            var waited = 0
            while two.signingKey.kid != old.next.kid, waited < 300 {
                try await Task.sleep(for: .milliseconds(100))
                _ = await h2.send("GET", "/healthz")
                waited += 1
            }
            #expect(two.signingKey.kid == old.next.kid)
            #expect(await Self.jwksKids(h2) == Self.jwksKids(h1))
            let fromOne = try await h1.accessToken(), fromTwo = try await h2.accessToken()
            #expect(try Self.kid(fromOne) == old.next.kid && Self.kid(fromTwo) == old.next.kid)
            for token in [before, fromOne, fromTwo] {
                #expect(await h1.graph("GET", "users", token: token).status == 200)
                #expect(await h2.graph("GET", "users", token: token).status == 200)
            }
        }
    }

    /// Two stores on one fresh PostgreSQL database when the test command provides one, else two on one SQLite file.
    static func withTwoStores(_ body: (SQLDirectoryStore, SQLDirectoryStore) async throws -> Void) async throws {
        try await SharedDatabase.withTwoStores(SharedDatabase.default, body)
    }
}
