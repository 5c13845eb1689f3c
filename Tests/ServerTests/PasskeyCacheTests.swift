import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// The sign-in path keeps passkeys by credential id (`TesseraApp.passkeyCache`): a node whose kept passkey was changed
/// or deleted by another node (which its own cache does not hear of) finds out in the statement that spends the
/// challenge, which checks the passkey's version and then writes nothing, and verifies the sign-in again with the
/// passkey as stored now.
@Suite("Passkeys kept by the sign-in path")
struct PasskeyCacheTests {
    static func signIn(_ node: Harness, _ authenticator: SoftAuthenticator) async throws -> APIResponse {
        var ceremony = SoftAuthenticator.Ceremony()
        ceremony.challenge = try PasskeySignInTests.challenge(await PasskeySignInTests.json(node, "login/passkey/options", [:]))
        ceremony.signCount = 0
        return await PasskeySignInTests.json(node, "login/passkey", PasskeySignInTests.assertion(authenticator.authenticate(ceremony)))
    }

    @Test("a passkey renamed on one node still signs in on the node that kept it; deleted there, it is refused as unknown and opens no session",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func changedElsewhere(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let (userID, authenticator) = try await PasskeySignInCommitTests.enrolled(nodes[0], "judy")
            let tenant = nodes[0].tenant.tenantId
            // Node 1 signs in and keeps the passkey.
            #expect(try await Self.signIn(nodes[1], authenticator).status == 200)
            let method = try #require(try await nodes[0].app.directory.fido2Methods(tenant: tenant, userID: userID).first)
            // Renamed on node 0: node 1's kept passkey is at an older version, and the sign-in goes on with the stored one.
            var renamed = method
            renamed.body["displayName"] = "Judy's key"
            renamed.version = method.version + 1
            let changed = renamed
            try await nodes[0].app.store.write { tx in try await tx.update(changed, expectedVersion: method.version) }
            #expect(try await Self.signIn(nodes[1], authenticator).status == 200)
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 2)
            // Deleted on node 0: refused on node 1 as a passkey this tenant does not know.
            try await nodes[0].app.directory.deleteFido2Method(tenant: tenant, userID: userID, methodID: method.id, actor: .system)
            let refused = try await Self.signIn(nodes[1], authenticator)
            #expect(refused.status == 400 && refused.json["error_codes"]?.arrayValue?.first == "credential.unknown", "\(refused.text)")
            #expect(try await PasskeySignInCommitTests.sessions(nodes[1], of: userID) == 2)
        }
    }
}
