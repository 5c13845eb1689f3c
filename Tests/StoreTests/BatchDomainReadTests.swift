import Foundation
import Testing
@testable import Store
@testable import TesseraCore
import TesseraTesting

/// A batch (`DirectoryService.apply`) reads a user's UPN domain once, not once a user: a domain an earlier write of the
/// batch found verified is not read again, unless a write of the batch changed it since.
@Suite("A batch's users read their UPN domain once")
struct BatchDomainReadTests {
    static func body(_ upn: String) -> [String: JSONValue] {
        ["accountEnabled": true, "displayName": "Someone", "mailNickname": "someone", "userPrincipalName": .string(upn),
         "passwordProfile": ["password": "Str0ng!Passw0rd"]]
    }

    /// A user's create as `DirectoryService.insert` makes it: its name as its key, its domain as its requirement.
    static func create(_ name: String, domain: String, tenant: String, in pending: PendingWrites) async throws {
        let upn = "\(name)@\(domain)"
        let object = StoredObject(tenant: tenant, id: UUID().uuidString.lowercased(), kind: .user, body: ["userPrincipalName": .string(upn)])
        try await pending.create(object, keys: [UniqueKey("userPrincipalName", upn)],
                                 change: ChangeRecord(tenant: tenant, objectId: object.id, kind: .user, operation: "create", activity: "Add user",
                                                      actor: .null, at: "2026-01-01T00:00:00Z"),
                                 requiring: try UserRules.verifiedDomain(of: upn))
    }

    @Test("a later write of the batch takes an earlier one's reading of the domain: the domain, removed behind the batch's back, is not read again; a write without that reading reads it and is refused",
          arguments: TestDatabases.all)
    func readOnce(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            _ = try await directory.create(tenant: t, kind: .domain, body: ["id": "fabrikam.test"], actor: .system, id: "fabrikam.test")
            _ = try await directory.update(tenant: t, id: "fabrikam.test", kind: .domain, patch: ["isVerified": true], actor: .system,
                                           allowReadOnly: true)
            try await store.write { tx in
                let first = PendingWrites(tx)
                try await Self.create("ann", domain: "fabrikam.test", tenant: t, in: first)
                try await tx.record(try await first.play())
                let known = await first.requirementsMet
                #expect(known.map(\.requirement.id) == ["fabrikam.test"])
                // Gone, but not through the batch: only a write that reads the domain again can tell.
                try await tx.purge(tenant: t, id: "fabrikam.test")
                try await Self.create("bob", domain: "fabrikam.test", tenant: t, in: PendingWrites(tx, met: known))
                await #expect(throws: UserDomainRequirementTests.refused) {
                    try await Self.create("carl", domain: "fabrikam.test", tenant: t, in: PendingWrites(tx))
                }
            }
        }
    }

    @Test("a write of the batch that changes the domain makes the next create read it again: unverified in the batch, the next user in it is refused; verified in the batch, the next is created",
          arguments: TestDatabases.all)
    func changedInTheBatch(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            let t = tenant.tenantId
            _ = try await directory.create(tenant: t, kind: .domain, body: ["id": "fabrikam.test"], actor: .system, id: "fabrikam.test")
            _ = try await directory.update(tenant: t, id: "fabrikam.test", kind: .domain, patch: ["isVerified": true], actor: .system,
                                           allowReadOnly: true)
            let unverified = try await directory.apply([
                .create(.user, body: Self.body("ann@fabrikam.test")),
                .update(id: "fabrikam.test", kind: .domain, patch: ["isVerified": false]),
                .create(.user, body: Self.body("bob@fabrikam.test")),
                .create(.user, body: Self.body("carl@\(tenant.domain)")),
            ], tenant: t, actor: .system, allowReadOnly: true)
            #expect(unverified.map { (try? $0.get()) != nil } == [true, true, false, true])
            #expect(throws: UserDomainRequirementTests.refused) { try unverified[2].get() }

            let verified = try await directory.apply([
                .create(.user, body: Self.body("dan@fabrikam.test")),
                .update(id: "fabrikam.test", kind: .domain, patch: ["isVerified": true]),
                .create(.user, body: Self.body("eve@fabrikam.test")),
            ], tenant: t, actor: .system, allowReadOnly: true)
            #expect(verified.map { (try? $0.get()) != nil } == [false, true, true])
            #expect(throws: UserDomainRequirementTests.refused) { try verified[0].get() }
            let held = try await store.read { tx in
                try await tx.holders(tenant: t, of: ["ann", "bob", "carl", "dan", "eve"].map {
                    UniqueKey("userPrincipalName", "\($0)@\($0 == "carl" ? tenant.domain : "fabrikam.test")")
                })
            }
            #expect(held.keys.map(\.value).sorted() == ["ann@fabrikam.test", "carl@\(tenant.domain)", "eve@fabrikam.test"])
        }
    }
}
