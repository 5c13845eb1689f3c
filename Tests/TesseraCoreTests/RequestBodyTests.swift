import Testing
@testable import TesseraCore

/// `RequestBody.parse` keeps a body with no `@` in any name as it is, and still strips and binds annotations at any
/// depth when one is there.
@Suite("Request bodies")
struct RequestBodyTests {
    @Test("a body without annotations is stored as given, nested objects and arrays included")
    func plainBody() throws {
        let body: [String: JSONValue] = [
            "displayName": "Ada", "proxyAddresses": ["SMTP:ada@example.test"], "accountEnabled": true, "employeeId": nil,
            "onPremisesExtensionAttributes": ["extensionAttribute1": "x", "extensionAttribute2": nil],
            "passwordProfile": ["password": "P@ssw0rd!", "forceChangePasswordNextSignIn": false],
            "identities": [["signInType": "emailAddress", "issuerAssignedId": "ada@example.test"]],
        ]
        let parsed = try RequestBody.parse(body, kind: .user)
        #expect(parsed.properties == body)
        #expect(parsed.binds.isEmpty)
    }

    @Test("annotations in names are dropped at every depth (@odata.type kept inside values) and binds become links")
    func annotatedBody() throws {
        let manager = "6f0a3c1e-8a55-4c8e-9d0e-3b8a2f1d4c5a"
        let body: [String: JSONValue] = [
            "displayName": "Ada", "@odata.type": "#microsoft.graph.user", "displayName@odata.etag": "W/\"1\"",
            "manager@odata.bind": .string("https://graph.microsoft.com/v1.0/users/\(manager)"),
            "identities": [["signInType": "emailAddress", "issuerAssignedId": "ada@example.test", "note@odata.context": "x"]],
            "onPremisesExtensionAttributes": ["@odata.type": "#microsoft.graph.onPremisesExtensionAttributes",
                                              "extensionAttribute1": "x", "extensionAttribute2@odata.etag": "y"],
        ]
        let parsed = try RequestBody.parse(body, kind: .user)
        #expect(parsed.properties == [
            "displayName": "Ada",
            "identities": [["signInType": "emailAddress", "issuerAssignedId": "ada@example.test"]],
            "onPremisesExtensionAttributes": ["@odata.type": "#microsoft.graph.onPremisesExtensionAttributes", "extensionAttribute1": "x"],
        ])
        #expect(parsed.binds.map(\.relation) == ["manager"] && parsed.binds.first?.targets == [manager])
        // Only a nested name has an '@': still stripped.
        let nested = try RequestBody.parse(["identities": [["signInType": "x", "a@odata.context": "y"]]], kind: .user)
        #expect(nested.properties == ["identities": [["signInType": "x"]]])
    }
}
