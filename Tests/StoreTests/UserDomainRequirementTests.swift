import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A user's UPN must be in one of the tenant's verified domains. The create checks it as it saves the user (on
/// PostgreSQL, a create run alone checks it in its one statement): the same Graph error on every database and every
/// path, before a key another user holds, and nothing saved.
@Suite("A user's create in a domain that is not verified")
struct UserDomainRequirementTests {
    static let refused = DirectoryError.badRequest(
        "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.")

    static func body(_ upn: String, mail: String? = nil) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "accountEnabled": true, "displayName": "Someone", "mailNickname": "someone", "userPrincipalName": .string(upn),
            "passwordProfile": ["password": "Str0ng!Passw0rd"],
        ]
        if let mail { body["mail"] = .string(mail) }
        return body
    }

    @Test("an unverified domain, a domain the tenant does not have, or a UPN naming a non-domain object is refused with Graph's error, and nothing is saved; once verified, the create is saved",
          arguments: TestDatabases.all)
    func refusedThenAllowed(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let owner = try await directory.makeUser(tenant, "Owner", extra: ["mail": .string("shared@\(tenant.domain)")])
            _ = try await directory.create(tenant: t, kind: .domain, body: ["id": "fabrikam.test"], actor: .system, id: "fabrikam.test")
            let before = try await store.read { try await $0.latestSequence(tenant: t) }
            for upn in ["ann@fabrikam.test", "ann@FABRIKAM.test", "ann@nowhere.test", "ann@\(owner.id)"] {
                await #expect(throws: Self.refused) {
                    _ = try await directory.create(tenant: t, kind: .user, body: Self.body(upn), actor: .system)
                }
            }
            // The domain comes first, before a key another user holds (the proxy address).
            await #expect(throws: Self.refused) {
                _ = try await directory.create(tenant: t, kind: .user, body: Self.body("ann@fabrikam.test", mail: "shared@\(tenant.domain)"),
                                               actor: .system)
            }
            // The same inside a transaction with more writes (many creates at once): the first's domain, and all is rolled back.
            await #expect(throws: Self.refused) {
                _ = try await directory.createMany(tenant: t, kind: .user, bodies: [
                    Self.body("bob@\(tenant.domain)"), Self.body("ann@fabrikam.test"),
                ], actor: .system)
            }
            #expect(try await store.read { try await $0.latestSequence(tenant: t) } == before)
            let held = try await store.read { tx in
                try await tx.holders(tenant: t, of: [UniqueKey("userPrincipalName", "ann@fabrikam.test"),
                                                     UniqueKey("userPrincipalName", "bob@\(tenant.domain)")])
            }
            #expect(held.isEmpty)

            _ = try await directory.update(tenant: t, id: "fabrikam.test", kind: .domain, patch: ["isVerified": true], actor: .system,
                                           allowReadOnly: true)
            let ann = try await directory.create(tenant: t, kind: .user, body: Self.body("Ann@Fabrikam.test"), actor: .system)
            #expect(try await store.read { try await $0.object(tenant: t, id: ann.id) } == ann)
            #expect(try await store.read { try await $0.latestSequence(tenant: t) } == before + 2)
        }
    }

    @Test("only a domain whose isVerified is false refuses: missing, null or any other value holds users, on every database and path",
          arguments: TestDatabases.all)
    func onlyFalseRefuses(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            let domains: [(String, [String: JSONValue])] = [
                ("absent.test", ["id": "absent.test"]), ("null.test", ["id": "null.test", "isVerified": .null]),
                ("text.test", ["id": "text.test", "isVerified": "false"]), ("false.test", ["id": "false.test", "isVerified": false]),
            ]
            try await store.write { tx in
                for (id, body) in domains { try await tx.insert(StoredObject(tenant: t, id: id, kind: .domain, body: body)) }
            }
            for domain in ["absent.test", "null.test", "text.test"] {
                let user = try await directory.create(tenant: t, kind: .user, body: Self.body("ann@\(domain)"), actor: .system)
                #expect(user.body["userPrincipalName"] == .string("ann@\(domain)"))
            }
            await #expect(throws: Self.refused) {
                _ = try await directory.create(tenant: t, kind: .user, body: Self.body("ann@false.test"), actor: .system)
            }
            // Among several writes (the path that reads the domain first on PostgreSQL too).
            let many = try await directory.createMany(tenant: t, kind: .user, bodies: [Self.body("bob@absent.test"), Self.body("bob@null.test")],
                                                      actor: .system)
            #expect(many.count == 2)
        }
    }
}
