import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Bad input gets a Graph error and writes nothing")
struct BadInputTests {
    static let cases: [(String, String, Int, String)] = [
        ("malformed JSON", #"{"displayName": "#, 400, "Request_BadRequest"),
        ("not an object", "[1,2]", 400, "Request_BadRequest"),
        ("unknown property", #"{"accountEnabled":true,"displayName":"x","mailNickname":"x","userPrincipalName":"x@contoso.test","passwordProfile":{"password":"Passw0rd!!"},"favouriteColour":"red"}"#, 400, "Request_BadRequest"),
        ("wrong type", #"{"accountEnabled":"yes","displayName":"x","mailNickname":"x","userPrincipalName":"x@contoso.test","passwordProfile":{"password":"Passw0rd!!"}}"#, 400, "Request_BadRequest"),
        ("missing required property", #"{"displayName":"x"}"#, 400, "Request_BadRequest"),
        ("foreign domain", #"{"accountEnabled":true,"displayName":"x","mailNickname":"x","userPrincipalName":"x@evil.test","passwordProfile":{"password":"Passw0rd!!"}}"#, 400, "Request_BadRequest"),
        ("weak password", #"{"accountEnabled":true,"displayName":"x","mailNickname":"x","userPrincipalName":"x@contoso.test","passwordProfile":{"password":"short"}}"#, 400, "Request_BadRequest"),
        ("oversized body", "OVERSIZED", 413, "Request_EntityTooLarge"),
    ]

    @Test("POST /users with bad bodies", arguments: cases)
    func badBodies(_ name: String, _ text: String, _ status: Int, _ code: String) async throws {
        let body = text == "OVERSIZED" ? Array(repeating: UInt8(ascii: " "), count: 70 * 1024) : Array(text.utf8)
        try await Harness.run { h in
            let token = try await h.accessToken()
            let before = await h.graph("GET", "users/$count", token: token, headers: ["consistencylevel": "eventual"])
            let response = await h.send("POST", "/v1.0/users", headers: ["authorization": "Bearer \(token)", "content-type": "application/json"], body: body)
            #expect(response.status == status, "\(name)")
            #expect(response.errorCode == code, "\(name)")
            #expect(response.json["error"]?["message"]?.stringValue?.isEmpty == false)
            let after = await h.graph("GET", "users/$count", token: token, headers: ["consistencylevel": "eventual"])
            #expect(before.body == after.body, "\(name) must write nothing")
        }
    }

    @Test("an application with a malformed certificate is refused, not stored")
    func malformedKeyCredential() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let response = await h.graph("POST", "applications", token: token, json: [
                "displayName": "Bad cert", "keyCredentials": [["type": "AsymmetricX509Cert", "usage": "Verify", "key": "%%%not base64"]],
            ])
            #expect(response.status == 400)
            let list = await h.graph("GET", "applications", token: token, query: [("$filter", "displayName eq 'Bad cert'")])
            #expect(list.json["value"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test("bad OData gets 400", arguments: [
        ("$top", "1000", "Request_BadRequest"), ("$top", "0", "Request_BadRequest"), ("$filter", "displayName eq", "Request_BadRequest"),
        ("$filter", "nosuch eq 'x'", "Request_BadRequest"), ("$filter", "displayName ne 'x'", "Request_UnsupportedQuery"),
        ("$select", "displayName,,mail", "Request_BadRequest"), ("$skip", "3", "Request_UnsupportedQuery"),
        ("$skiptoken", "%%%", "Request_BadRequest"), ("$search", "\"displayName:x\"", "Request_UnsupportedQuery"),
    ])
    func badOData(_ option: String, _ value: String, _ code: String) async throws {
        try await Harness.run { h in
            let response = await h.graph("GET", "users", token: try await h.accessToken(), query: [(option, value)])
            #expect(response.status == 400)
            #expect(response.errorCode == code)
        }
    }

    @Test("$batch refuses more than 20 requests and reports failed dependencies with 424")
    func batch() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let many: [JSONValue] = (1...21).map { ["id": .string("\($0)"), "method": "GET", "url": "/users"] }
            #expect(await h.graph("POST", "$batch", token: token, json: ["requests": .array(many)]).status == 400)
            let response = await h.graph("POST", "$batch", token: token, json: ["requests": [
                ["id": "1", "method": "GET", "url": "/users/00000000-0000-0000-0000-00000000dead"],
                ["id": "2", "method": "GET", "url": "/users?$top=1", "dependsOn": ["1"]],
                ["id": "3", "method": "GET", "url": "/organization"],
            ]])
            let statuses = response.json["responses"]?.arrayValue?.map { $0["status"]?.intValue }
            #expect(statuses == [404, 424, 200])
        }
    }

    @Test("delta tokens expire after seven days with syncStateNotFound")
    func deltaExpiry() async throws {
        try await Harness.run { h in
            var token = try await h.accessToken()
            let first = await h.graph("GET", "users/delta", token: token)
            let link = try #require(first.json["@odata.deltaLink"]?.stringValue)
            let deltaToken = try #require(URLComponents(string: link)?.queryItems?.first { $0.name == "$deltatoken" }?.value)
            h.clock.advance(8 * 86_400)
            token = try await h.accessToken()
            let late = await h.graph("GET", "users/delta", token: token, query: [("$deltatoken", deltaToken)])
            #expect(late.status == 400)
            #expect(late.errorCode == "syncStateNotFound")
        }
    }
}
