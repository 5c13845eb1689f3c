import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Temporary Access Pass")
struct TemporaryAccessPassTests {
    static func user(_ h: Harness, _ token: String) async throws -> String {
        let nick = "tap\(Int.random(in: 1000...9999))"
        let created = await h.graph("POST", "users", token: token, json: [
            "accountEnabled": true, "displayName": .string(nick), "mailNickname": .string(nick),
            "userPrincipalName": .string("\(nick)@contoso.test"), "passwordProfile": ["password": "Xy!9Xy!9Xy!9"]])
        return try #require(created.json["id"]?.stringValue)
    }

    @Test("a one-time pass is shown once, works once, and says why it no longer works")
    func oneTime() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await Self.user(h, token)
            let path = "users/\(user)/authentication/temporaryAccessPassMethods"
            let created = await h.graph("POST", path, token: token, json: ["isUsableOnce": true, "lifetimeInMinutes": 60])
            #expect(created.status == 201)
            let passcode = try #require(created.json["temporaryAccessPass"]?.stringValue)
            #expect(passcode.count == 12 && created.json["isUsable"] == true && created.json["methodUsabilityReason"] == "EnabledByPolicy")
            let listed = await h.graph("GET", path, token: token).json["value"]?.arrayValue?.first
            #expect(listed?["temporaryAccessPass"] == .null && listed?["id"] == created.json["id"])
            #expect(!String(decoding: await h.graph("GET", path, token: token).body, as: UTF8.self).contains(passcode))
            let directory = h.app.directory, tenant = h.tenant.tenantId
            #expect(try await !directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode.lowercased()))
            #expect(try await directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode))
            #expect(try await !directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode))
            #expect(await h.graph("GET", path, token: token).json["value"]?.arrayValue?.first?["methodUsabilityReason"] == "OneTimeUsed")
            // One pass per user: a new one replaces the old, as Microsoft documents.
            let replacement = await h.graph("POST", path, token: token, json: [:])
            #expect(replacement.status == 201)
            let methods = await h.graph("GET", path, token: token).json["value"]?.arrayValue ?? []
            #expect(methods.count == 1 && methods.first?["id"] == replacement.json["id"])
            let next = try #require(replacement.json["temporaryAccessPass"]?.stringValue)
            #expect(try await directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: next))
        }
    }

    @Test("a pass works only between its start and the end of its lifetime, and can be deleted")
    func window() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await Self.user(h, token)
            let path = "users/\(user)/authentication/temporaryAccessPassMethods"
            let start = Timestamp.format(h.clock.now.addingTimeInterval(3600))
            let created = await h.graph("POST", path, token: token, json: ["startDateTime": .string(start), "lifetimeInMinutes": 10])
            let passcode = try #require(created.json["temporaryAccessPass"]?.stringValue)
            #expect(created.json["methodUsabilityReason"] == "NotYetValid")
            let directory = h.app.directory, tenant = h.tenant.tenantId
            #expect(try await !directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode))
            h.clock.advance(3600 + 60)
            #expect(try await directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode))
            #expect(try await directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode)) // multi-use
            h.clock.advance(600)
            #expect(try await !directory.redeemTemporaryAccessPass(tenant: tenant, userID: user, passcode: passcode))
            let id = try #require(created.json["id"]?.stringValue)
            let fresh = try await h.accessToken() // the first token expired while the clock moved on
            #expect(await h.graph("GET", "\(path)/\(id)", token: fresh).json["methodUsabilityReason"] == "Expired")
            #expect(await h.graph("GET", "users/\(user)/authentication/methods", token: fresh).json["value"]?.arrayValue?.count == 1)
            #expect(await h.graph("DELETE", "\(path)/\(id)", token: fresh).status == 204)
            #expect(await h.graph("GET", path, token: fresh).json["value"] == [])
        }
    }

    @Test("bad requests are refused", arguments: [
        ["lifetimeInMinutes": 5] as [String: JSONValue], ["lifetimeInMinutes": 50_000], ["isUsableOnce": "yes"],
        ["startDateTime": "tomorrow"], ["temporaryAccessPass": "ChooseMyOwn1"],
    ])
    func refusals(_ body: [String: JSONValue]) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await Self.user(h, token)
            let response = await h.graph("POST", "users/\(user)/authentication/temporaryAccessPassMethods", token: token, json: .object(body))
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest")
        }
    }
}
