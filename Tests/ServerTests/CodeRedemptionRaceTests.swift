import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// An authorization code's spend and its refresh token are one statement on PostgreSQL (`SingleUseSpends`), run alone as
/// its own commit: the same code presented many times at once to two nodes must still be redeemed exactly once, and a
/// replay must still find and revoke what the winner was given.
@Suite("An authorization code redeemed at once on two nodes")
struct CodeRedemptionRaceTests {
    @Test("one code presented twelve times at once to two nodes: one answer has tokens, eleven are invalid_grant, and the replays revoked the winner's refresh token",
          arguments: ReplayOnEveryDatabaseTests.databases)
    func concurrentCodeReplays(_ database: String) async throws {
        try await ReplayOnEveryDatabaseTests.nodes(database) { nodes in
            let h = nodes[0]
            let admin = try await h.accessToken()
            let spa = await h.graph("POST", "applications", token: admin, json: [
                "displayName": "SPA", "spa": ["redirectUris": [.string(TokenGrantHardeningTests.spa)]]])
            let appID = try #require(spa.json["appId"]?.stringValue)
            _ = await h.graph("POST", "servicePrincipals", token: admin, json: ["appId": .string(appID)])
            let code = try await TokenGrantHardeningTests.code(h, client: appID, redirect: TokenGrantHardeningTests.spa)
            let form = [("grant_type", "authorization_code"), ("client_id", appID), ("redirect_uri", TokenGrantHardeningTests.spa), ("code", code)]
            let answers = await withTaskGroup(of: APIResponse.self) { group in
                for i in 0..<12 { group.addTask { await TokenGrantHardeningTests.post(nodes[i % 2], "token", form) } }
                return await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.text))")
            #expect(answers.filter { $0.json["error"] == "invalid_grant" && $0.json["error_codes"]?.arrayValue?.first?.intValue == 54005 }.count == 11,
                    "\(answers.map(\.text))")
            let refresh = try #require(answers.first { $0.status == 200 }?.json["refresh_token"]?.stringValue)
            for node in nodes { #expect(await CredentialRecordsTests.refresh(node, appID, refresh).json["error"] == "invalid_grant") }
            #expect(try await ReplayOnEveryDatabaseTests.refreshTokens(h).isEmpty)
        }
    }
}
