import Foundation
import Testing
@testable import Server
@testable import Store
import TesseraCore
import TesseraTesting
import WebAuthn

/// Refresh-token reuse and passkey replays on every database, not only the Harness's SQLite: two nodes (a
/// `TesseraApp` each, over a store of its own on one new database: on PostgreSQL a connection pool per node, as a
/// cluster runs, on SQLite two writers on one file) share a clock and a tenant, and the same token or assertion is
/// presented to both at once. `CredentialRecordsTests` and `PasskeySignInCommitTests` run the same flows on one node.
@Suite("Refresh-token reuse and passkey replays on every database")
struct ReplayOnEveryDatabaseTests {
    static var databases: [String] {
        var databases = ["sqlite file"]
        if let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty { databases.append(url) }
        return databases
    }

    /// Two nodes on one new database of `database`'s kind, with one clock and one tenant, each as a ``Harness``.
    static func nodes(_ database: String, _ body: ([Harness]) async throws -> Void) async throws {
        try await SharedDatabase.withTwoStores(database) { first, second in
            let clock = TestClock()
            var apps: [TesseraApp] = []
            do {
                apps.append(try await TesseraApp.make(store: first, clock: clock, maxBodyBytes: 64 * 1024))
                apps.append(try await TesseraApp.make(store: second, clock: clock, maxBodyBytes: 64 * 1024))
                let tenant = try await TenantProvisioner(directory: apps[0].directory).create(name: "Contoso", domain: "contoso.test")
                try await body(apps.map { Harness(app: $0, clock: clock, tenant: tenant) })
            } catch {
                for app in apps { await app.jobs.idle() }
                throw error
            }
            for app in apps { await app.jobs.idle() }
        }
    }

    /// The administrator's refresh tokens left in the store.
    static func refreshTokens(_ h: Harness) async throws -> [RefreshTokenRecord] {
        let tenant = h.tenant.tenantId, admin = h.tenant.adminUserId
        return try await h.app.store.read { tx in try await tx.credentials(RefreshTokenRecord.self, tenant: tenant, userID: admin) }
    }

    @Test("a spent refresh token presented again, on the other node, revokes its family: the successor is refused too",
          arguments: databases)
    func reuseRevokesTheFamily(_ database: String) async throws {
        try await Self.nodes(database) { nodes in
            let (appID, token) = try await CredentialRecordsTests.refreshToken(nodes[0])
            let rotated = await CredentialRecordsTests.refresh(nodes[0], appID, token)
            let successor = try #require(rotated.json["refresh_token"]?.stringValue, "\(rotated.text)")
            #expect(try await Self.refreshTokens(nodes[0]).count == 2)
            // The spent token again: a theft, whichever node sees it.
            #expect(await CredentialRecordsTests.refresh(nodes[1], appID, token).json["error"] == "invalid_grant")
            #expect(await CredentialRecordsTests.refresh(nodes[0], appID, successor).json["error"] == "invalid_grant")
            #expect(try await Self.refreshTokens(nodes[1]).isEmpty)
        }
    }

    @Test("one refresh token presented twelve times at once to two nodes: one rotation, and the reuse revokes the successor",
          arguments: databases)
    func concurrentReuse(_ database: String) async throws {
        try await Self.nodes(database) { nodes in
            let (appID, token) = try await CredentialRecordsTests.refreshToken(nodes[0])
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for i in 0..<12 { group.addTask { await CredentialRecordsTests.refresh(nodes[i % 2], appID, token) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.json["error"] == "invalid_grant" }.count == 11, "\(answers.map(\.text))")
            let successor = try #require(answers.first { $0.status == 200 }?.json["refresh_token"]?.stringValue)
            // The rotation committed the spent token and its successor together, so the revocation found both.
            for node in nodes { #expect(await CredentialRecordsTests.refresh(node, appID, successor).json["error"] == "invalid_grant") }
            #expect(try await Self.refreshTokens(nodes[0]).isEmpty)
        }
    }

    @Test("one passkey assertion sent twelve times at once to two nodes opens exactly one session; the others find the challenge spent",
          arguments: databases)
    func concurrentPasskeyReplays(_ database: String) async throws {
        try await Self.nodes(database) { nodes in
            let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(nodes[0], "grace")
            var ceremony = SoftAuthenticator.Ceremony()
            ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(nodes[1], "login/passkey/options", [:]))
            ceremony.signCount = 0  // a synced passkey's counter stays 0: only the spent challenge stops a replay
            let assertion = PasskeySignInTests.assertion(authenticator.authenticate(ceremony))
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for i in 0..<12 { group.addTask { await PasskeySignInTests.json(nodes[i % 2], "login/passkey", assertion) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.status == 400 && $0.json["error_codes"]?.arrayValue?.first == "challenge.invalid" }.count == 11,
                    "\(answers.map(\.text))")
            #expect(try await PasskeySignInCommitTests.sessions(nodes[0], of: userID) == 1)
        }
    }

    @Test("six fresh challenges signed with the same counter, sent at once to two nodes: the counter's compare-and-set lets one sign in",
          arguments: databases)
    func concurrentCounter(_ database: String) async throws {
        try await Self.nodes(database) { nodes in
            let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(nodes[0], "heidi")
            func assertion(counter: UInt32, node: Harness) async throws -> JSONValue {
                var ceremony = SoftAuthenticator.Ceremony()
                ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(node, "login/passkey/options", [:]))
                ceremony.signCount = counter
                return PasskeySignInTests.assertion(authenticator.authenticate(ceremony))
            }
            #expect(await PasskeySignInTests.json(nodes[0], "login/passkey", try await assertion(counter: 5, node: nodes[0])).status == 200)
            var assertions: [JSONValue] = []
            for i in 0..<6 { assertions.append(try await assertion(counter: 9, node: nodes[i % 2])) }
            let signed = assertions
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for i in 0..<6 { group.addTask { await PasskeySignInTests.json(nodes[i % 2], "login/passkey", signed[i]) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.status == 400 && $0.json["error_codes"]?.arrayValue?.first == "assertion.possibleClone" }.count == 5,
                    "\(answers.map(\.text))")
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 2)
            let methods = try await nodes[1].app.directory.fido2Methods(tenant: nodes[1].tenant.tenantId, userID: userID)
            #expect(methods.first?.body["_signCount"]?.intValue == 9)
        }
    }

    @Test("a passkey challenge past its five minutes is refused on either node and opens no session", arguments: databases)
    func expiredChallenge(_ database: String) async throws {
        try await Self.nodes(database) { nodes in
            let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(nodes[0], "ivan")
            var ceremony = SoftAuthenticator.Ceremony()
            ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(nodes[0], "login/passkey/options", [:]))
            ceremony.signCount = 3
            let assertion = PasskeySignInTests.assertion(authenticator.authenticate(ceremony))
            nodes[0].clock.advance(5 * 60 + 1)
            for node in nodes {
                let late = await PasskeySignInTests.json(node, "login/passkey", assertion)
                #expect(late.status == 400 && late.json["error_codes"]?.arrayValue?.first == "challenge.invalid", "\(late.text)")
            }
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 0)
        }
    }
}
