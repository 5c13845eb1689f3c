import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// `$batch` whose requests are independent writes runs them through `DirectoryService.apply`: one transaction, each
/// write checked and answered as the request alone would be, one refused write failing alone.
@Suite("$batch of independent writes through the batch API")
struct BatchApplyTests {
    static func user(_ name: String, extra: [String: JSONValue] = [:]) -> JSONValue {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": .string(name), "mailNickname": .string(name),
            "userPrincipalName": .string("\(name)@contoso.test"), "passwordProfile": ["password": "Str0ng!Passw0rd"],
        ]
        for (key, value) in extra { body[key] = value }
        return .object(body)
    }

    static func request(_ id: String, _ method: String, _ url: String, _ body: JSONValue? = nil, headers: [String: JSONValue] = [:]) -> JSONValue {
        var request: [String: JSONValue] = ["id": .string(id), "method": .string(method), "url": .string(url)]
        var all = headers
        if let body {
            request["body"] = body
            all["Content-Type"] = "application/json"
        }
        if !all.isEmpty { request["headers"] = .object(all) }
        return .object(request)
    }

    static func responses(_ response: APIResponse) -> [JSONValue] { response.json["responses"]?.arrayValue ?? [] }

    @Test("independent creates, updates and member adds commit in one transaction, each answered as the request alone is")
    func oneTransaction() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let existing = try #require(await h.graph("POST", "users", token: token, json: Self.user("ada")).json["id"]?.stringValue)
            let group = try #require(await h.graph("POST", "groups", token: token, json: [
                "displayName": "Team", "mailEnabled": false, "mailNickname": "team", "securityEnabled": true]).json["id"]?.stringValue)
            let alone = await h.graph("POST", "users", token: token, json: Self.user("alone"))
            try await h.app.directory.flushSignIns()
            let before = try PasskeySignInCommitTests.writes(h)
            let batch = await h.graph("POST", "$batch", token: token, json: ["requests": [
                Self.request("1", "POST", "/users", Self.user("bea")),
                Self.request("2", "PATCH", "/users/\(existing)", ["jobTitle": "Engineer"]),
                Self.request("3", "POST", "/groups", ["displayName": "Ops", "mailEnabled": false, "mailNickname": "ops", "securityEnabled": true]),
                Self.request("4", "POST", "/groups/\(group)/members/$ref", ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(existing)")]),
                Self.request("5", "PATCH", "/users/ada@contoso.test", ["department": "R&D"]),
            ]])
            #expect(batch.status == 200)
            #expect(try PasskeySignInCommitTests.writes(h) - before == 1)
            let items = Self.responses(batch)
            #expect(items.map { $0["id"]?.stringValue } == ["1", "2", "3", "4", "5"])
            #expect(items.map { $0["status"]?.intValue } == [201, 204, 201, 204, 204])
            // A create is answered as `POST /users` alone: the same members, its context, where it is and its ETag.
            let created = try #require(items.first?["body"]?.objectValue)
            let single = try #require(alone.json.objectValue)
            #expect(Set(created.keys) == Set(single.keys))
            #expect(created["@odata.context"] == single["@odata.context"] && created["userPrincipalName"] == "bea@contoso.test")
            let newID = try #require(created["id"]?.stringValue)
            #expect(items.first?["headers"]?["Location"]?.stringValue == "\(Harness.base)/v1.0/users/\(newID)")
            #expect(items.first?["headers"]?["ETag"]?.stringValue?.hasPrefix("W/") == true)
            #expect(Set(items.first?["headers"]?.objectValue?.keys.map { $0 } ?? []) == Set(alone.headers.map(\.name)))
            #expect(items[1]["body"] == nil && items[3]["body"] == nil)
            // And written.
            let ada = await h.graph("GET", "users/\(existing)", token: token, query: [("$select", "jobTitle,department")])
            #expect(ada.json["jobTitle"] == "Engineer" && ada.json["department"] == "R&D")
            let members = await h.graph("GET", "groups/\(group)/members", token: token)
            #expect(members.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [existing])
            #expect(await h.graph("GET", "users/\(newID)", token: token).status == 200)
        }
    }

    @Test("one refused write fails alone, with the error its request alone gets; the others are written")
    func refusedFailsAlone() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let taken = try #require(await h.graph("POST", "users", token: token, json: Self.user("dora")).json["id"]?.stringValue)
            let group = try #require(await h.graph("POST", "groups", token: token, json: [
                "displayName": "Team", "mailEnabled": false, "mailNickname": "team", "securityEnabled": true]).json["id"]?.stringValue)
            let missing = "00000000-0000-0000-0000-00000000dead"
            let stale = "W/\"\(Base64URL.encode(Data("\(taken):99".utf8)))\""
            let refused: [(url: String, method: String, body: JSONValue, headers: [String: JSONValue])] = [
                ("/users", "POST", Self.user("DORA"), [:]),                                       // the UPN is taken
                ("/users", "POST", Self.user("eve", extra: ["favouriteColour": "blue"]), [:]),    // not in the schema
                ("/users/\(missing)", "PATCH", ["jobTitle": "x"], [:]),                            // no such user
                ("/users/\(taken)", "PATCH", ["jobTitle": "x"], ["If-Match": .string(stale)]),    // changed since
                ("/groups/\(group)/members/$ref", "POST", ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(missing)")], [:]),
                ("/groups/\(group)/members/$ref", "POST", ["@odata.id": "not a reference"], [:]),
            ]
            var requests: [JSONValue] = [Self.request("ok-1", "POST", "/users", Self.user("fay"))]
            for (index, item) in refused.enumerated() {
                requests.append(Self.request("bad-\(index)", item.method, item.url, item.body, headers: item.headers))
            }
            requests.append(Self.request("ok-2", "POST", "/groups/\(group)/members/$ref",
                                         ["@odata.id": .string("https://graph.microsoft.com/v1.0/directoryObjects/\(taken)")]))
            try await h.app.directory.flushSignIns()
            let before = try PasskeySignInCommitTests.writes(h)
            let items = Self.responses(await h.graph("POST", "$batch", token: token, json: ["requests": .array(requests)]))
            #expect(try PasskeySignInCommitTests.writes(h) - before == 1)
            #expect(items.first?["status"]?.intValue == 201 && items.last?["status"]?.intValue == 204)
            // Each refused one is answered as the same request alone is answered (after the batch, so against the same state).
            for (index, item) in refused.enumerated() {
                var headers: [String: String] = [:]
                for (name, value) in item.headers { headers[name.lowercased()] = value.stringValue }
                let path = String(item.url.dropFirst())
                let single = await h.graph(item.method, path, token: token, json: item.body, headers: headers)
                let batched = items[index + 1]
                #expect(batched["status"]?.intValue == Int64(single.status), "\(item.method) \(item.url)")
                #expect(single.status >= 400)
                #expect(batched["body"]?["error"]?["code"] == single.json["error"]?["code"], "\(item.method) \(item.url)")
                #expect(batched["body"]?["error"]?["message"] == single.json["error"]?["message"], "\(item.method) \(item.url)")
                #expect(batched["body"]?["error"]?["innerError"]?["request-id"]?.stringValue == batched["headers"]?["request-id"]?.stringValue)
            }
            // The two good writes are in; nothing of the refused ones is.
            let fay = await h.graph("GET", "users/fay@contoso.test", token: token)
            #expect(fay.status == 200)
            #expect(await h.graph("GET", "users/eve@contoso.test", token: token).status == 404)
            let dora = await h.graph("GET", "users/\(taken)", token: token)
            #expect(dora.json["jobTitle"] == nil || dora.json["jobTitle"] == .null)
            let members = await h.graph("GET", "groups/\(group)/members", token: token)
            #expect(members.json["value"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [taken])
        }
    }

    @Test("two creates of one UPN in one batch: the first is written, the second is refused as a duplicate")
    func duplicateInsideBatch() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let items = Self.responses(await h.graph("POST", "$batch", token: token, json: ["requests": [
                Self.request("a", "POST", "/users", Self.user("gil")),
                Self.request("b", "POST", "/users", Self.user("GIL")),
            ]]))
            #expect(items.map { $0["status"]?.intValue } == [201, 400])
            #expect(items[1]["body"]?["error"]?["code"] == "Request_BadRequest")
            let listed = await h.graph("GET", "users", token: token, query: [("$filter", "startswith(userPrincipalName,'gil@')")])
            #expect(listed.json["value"]?.arrayValue?.count == 1)
        }
    }

    @Test("a batch with a read or a dependsOn runs request by request, as before")
    func otherBatchesRunInOrder() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            try await h.app.directory.flushSignIns()
            let before = try PasskeySignInCommitTests.writes(h)
            let items = Self.responses(await h.graph("POST", "$batch", token: token, json: ["requests": [
                Self.request("1", "POST", "/users", Self.user("hal")),
                Self.request("2", "POST", "/users", Self.user("ida"), headers: [:]).withDependency("1"),
                Self.request("3", "GET", "/users/hal@contoso.test"),
            ]]))
            #expect(items.map { $0["status"]?.intValue } == [201, 201, 200])
            #expect(try PasskeySignInCommitTests.writes(h) - before == 2)
        }
    }
}

extension JSONValue {
    fileprivate func withDependency(_ id: String) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        fields["dependsOn"] = [.string(id)]
        return .object(fields)
    }
}
