import Foundation
import Testing
@testable import Server
import TesseraCore

/// A create's 201 for a user is written straight to bytes (`Renderer.userBytes`); these prove those bytes are the ones
/// the generic rendering (`Renderer.render` with `@odata.context`, then `serializedBytes`) gives, for users holding
/// every kind of value, and that `POST /users` answers with them.
@Suite("A created user's 201 written directly is the generic rendering, byte for byte")
struct RendererDirectTests {
    static let context = "https://tessera.test/v1.0/$metadata#users/$entity"

    /// What the 201's body was before it was written directly.
    static func generic(_ object: StoredObject, context: String) -> [UInt8] {
        var rendered = Renderer.render(object, select: nil)
        rendered["@odata.context"] = .string(context)
        return rendered.serializedBytes
    }

    static func user(_ body: [String: JSONValue], id: String = "8f1c2f6e-2b3a-4c5d-9e8f-0a1b2c3d4e5f", version: Int64 = 1) -> StoredObject {
        StoredObject(tenant: "t", id: id, kind: .user, body: body, version: version)
    }

    /// Stored user bodies with every kind of value in and around the default properties.
    static let bodies: [(name: String, body: [String: JSONValue])] = [
        ("a created user as stored", [
            "accountEnabled": true, "displayName": "Load r1-1-1", "mailNickname": "r1-1-1", "userPrincipalName": "r1-1-1@bench.test",
            "passwordProfile": ["forceChangePasswordNextSignIn": true, "forceChangePasswordNextSignInWithMfa": false, "password": nil],
            "createdDateTime": "2026-12-07T21:00:00Z", "userType": "Member", "businessPhones": [], "proxyAddresses": [],
            "id": "8f1c2f6e-2b3a-4c5d-9e8f-0a1b2c3d4e5f",
        ]),
        ("nothing at all", [:]),
        ("explicit nulls", [
            "displayName": nil, "givenName": nil, "jobTitle": nil, "mail": nil, "mobilePhone": nil, "officeLocation": nil,
            "preferredLanguage": nil, "surname": nil, "userPrincipalName": nil, "businessPhones": nil,
        ]),
        ("unicode, escapes and control characters", [
            "displayName": "Zoë Ångström 山田太郎 👩🏽‍💻", "givenName": "e\u{301}lise", "surname": "O\"Brien \\ back",
            "jobTitle": "line\nbreak\ttab\r\u{1}\u{1F}", "officeLocation": "Straße ﬁ", "preferredLanguage": "de-DE",
            "userPrincipalName": "zoë@contoso.test", "mail": "zoë@contoso.test",
        ]),
        ("collections and numbers", [
            "businessPhones": ["+1 555 0100", "+44 20 7946 0000"], "mobilePhone": 5550100, "officeLocation": .double(12.5),
            "jobTitle": true, "givenName": false, "surname": .double(1e300), "mail": .int(-42),
            "displayName": ["nested": ["deeper": [1, 2, 3]], "_secret": "hidden", "list": [["_digest": "x", "kept": "y"]]],
            "userPrincipalName": [["_private": 1], "text", nil, ["a": ["_b": 2, "c": 3]]],
        ]),
        ("extension attributes, identities and private members", [
            "displayName": "Ext", "userPrincipalName": "ext@contoso.test",
            "onPremisesExtensionAttributes": ["extensionAttribute1": "one", "extensionAttribute15": nil],
            "extension_0123456789abcdef0123456789abcdef_costCenter": "CC-1",
            "extension_0123456789abcdef0123456789abcdef_tags": ["a", "b"],
            "identities": [["signInType": "emailAddress", "issuer": "contoso.test", "issuerAssignedId": "ext@contoso.test"]],
            "_passwordDigest": "secret", "_credentials": ["_x": 1], "@odata.type": "#microsoft.graph.user",
            "id": "a-different-id-in-the-body", "deletedDateTime": nil,
        ]),
        ("non-ASCII member names beside the defaults", [
            "displayName": "Namen", "naïve": "x", "e\u{301}x": 1, "Ω": 2, "mail": "m@contoso.test",
        ]),
    ]

    @Test("the direct bytes equal the generic rendering", arguments: bodies.map(\.name))
    func sameBytes(name: String) throws {
        let body = try #require(Self.bodies.first { $0.name == name }?.body)
        for context in [Self.context, "https://tëssera.test:8443/beta/$metadata#users/$entity", "https://x.test/\"q\"\\/$metadata"] {
            for id in ["8f1c2f6e-2b3a-4c5d-9e8f-0a1b2c3d4e5f", "id with \"quotes\" and ü"] {
                let object = Self.user(body, id: id, version: 7)
                let direct = try #require(Renderer.userBytes(object, context: context))
                let generic = Self.generic(object, context: context)
                #expect(direct == generic, "\(name): \(String(decoding: direct, as: UTF8.self)) vs \(String(decoding: generic, as: UTF8.self))")
            }
        }
    }

    @Test("other kinds and deleted users are left to the generic rendering")
    func onlyLiveUsers() {
        var deleted = Self.user(["displayName": "Gone"])
        deleted.deletedAt = "2026-12-07T21:00:00Z"
        #expect(Renderer.userBytes(deleted, context: Self.context) == nil)
        let group = StoredObject(tenant: "t", id: "g", kind: .group, body: ["displayName": "G"])
        #expect(Renderer.userBytes(group, context: Self.context) == nil)
    }

    @Test("POST /users answers with the generic rendering of what it stored, its Location and its ETag")
    func postUsers() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let body: [String: JSONValue] = [
                "accountEnabled": true, "displayName": "Zoë \"Q\" Ångström 👩🏽‍💻", "mailNickname": "zoe",
                "userPrincipalName": "zoe@contoso.test", "givenName": "Zoë", "surname": nil, "jobTitle": "Ingénieure\nR&D",
                "businessPhones": ["+1 555 0100"], "mail": "zoe@contoso.test", "officeLocation": "Bâtiment 4",
                "preferredLanguage": "fr-FR", "mobilePhone": nil, "department": "Recherche",
                "onPremisesExtensionAttributes": ["extensionAttribute1": "un", "extensionAttribute15": nil],
                "passwordProfile": ["forceChangePasswordNextSignIn": true, "password": "Str0ng!Passw0rd"],
            ]
            let created = await h.graph("POST", "users", token: token, json: .object(body))
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
            let id = try #require(created.json["id"]?.stringValue)
            let tenant = h.tenant.tenantId
            let stored = try #require(try await h.app.store.read { tx in try await tx.object(tenant: tenant, id: id) })
            #expect(created.body == Self.generic(stored, context: "\(Harness.base)/v1.0/$metadata#users/$entity"))
            #expect(created.headers.first { $0.name == "Location" }?.value == "\(Harness.base)/v1.0/users/\(id)")
            #expect(created.headers.first { $0.name == "ETag" }?.value == ETag.make(stored))
            #expect(created.headers.first { $0.name == "Content-Type" }?.value == "application/json; odata.metadata=minimal; charset=utf-8")
            // What is stored is what it was: the password dropped, the extension attributes kept.
            #expect(stored.body["passwordProfile"]?["password"] == .null)
            #expect(stored.body["onPremisesExtensionAttributes"]?["extensionAttribute1"] == "un")
        }
    }
}
