import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// A batch of sign-in records and queued credential records reaches the SQL store as one statement a kind, with what one
/// insert a record did: every object saved, credential records already stored (or queued twice) left as they are.
@Suite("Sign-in batches: one statement a kind")
struct SignInBatchTests {
    static func row(_ tenant: String, _ id: String, payload: String) -> CredentialRow {
        CredentialRow(tenant: tenant, id: id, kind: CredentialKind(rawValue: "sessionClient"), userID: "u", family: "session-1", handle: nil,
                      state: "active", expiresAt: "2999-01-01T00:00:00Z", payload: payload)
    }

    /// Records five sign-ins and queues three credential records (one stored before, one queued twice), then flushes.
    static func fill(_ store: SQLDirectoryStore, _ directory: DirectoryService, _ t: String) async throws {
        try await store.write { tx in try await tx.insertCredential(Self.row(t, "stored", payload: "{\"old\":true}")) }
        for i in 0..<5 { try await directory.recordSignIn(tenant: t, entry: ["status": ["errorCode": .int(Int64(i))]]) }
        for (id, payload) in [("new-1", "{}"), ("stored", "{\"old\":false}"), ("new-2", "{}"), ("new-1", "{\"again\":true}")] {
            try await directory.queueCredential(Self.row(t, id, payload: payload))
        }
    }

    static func check(_ store: SQLDirectoryStore, _ directory: DirectoryService, _ t: String) async throws {
        let signIns = try await directory.signIns(tenant: t, filter: nil, limit: 50)
        #expect(Set(signIns.compactMap { $0.body["status"]?["errorCode"]?.intValue }) == [0, 1, 2, 3, 4])
        let rows = try await store.read { tx in try await tx.credentialRows(tenant: t, kind: CredentialKind(rawValue: "sessionClient"), family: "session-1") }
        #expect(rows.map(\.id) == ["new-1", "new-2", "stored"])
        #expect(rows.map(\.payload) == ["{}", "{}", "{\"old\":true}"])
    }

    @Test("sign-in records and queued credential records are all written, those stored already left as they were", arguments: TestDatabases.all)
    func written(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            try await Self.fill(store, directory, tenant.tenantId)
            try await directory.flushSignIns()
            try await Self.check(store, directory, tenant.tenantId)
        }
    }

    @Test("on PostgreSQL a batch is BEGIN, one INSERT of its objects, one of its credential records, COMMIT",
          arguments: PostgresRoundTripTests.databases)
    func statements(_ url: String) async throws {
        try await PostgresRoundTripTests.withCountedStore(url) { store, directory, tenant, sent in
            await directory.holdSignInWritesUntilFlushed(true)
            try await Self.fill(store, directory, tenant.tenantId)
            _ = sent.take()
            try await directory.flushSignIns()
            let statements = sent.take()
            #expect(statements.count == 4, "\(statements)")
            #expect(statements.first == "BEGIN" && statements.last == "COMMIT")
            #expect(statements.dropFirst().first?.hasPrefix("INSERT INTO objects") == true)
            #expect(statements.dropFirst(2).first?.hasPrefix("INSERT INTO credential_records") == true)
            try await Self.check(store, directory, tenant.tenantId)
        }
    }
}
