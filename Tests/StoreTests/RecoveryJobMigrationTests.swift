import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// Recovery jobs leave the Graph objects table (issue 15): a job written as the last release wrote it (a `recoveryJob`
/// object with `_changes` and `_cancel`) becomes its typed record in `recovery_jobs` with its changes, Graph's view of
/// it unchanged, and its object goes; the step runs once, and moving again keeps what was moved. The table holds one job
/// in progress per tenant. On SQLite and PostgreSQL.
@Suite("Recovery jobs in a table of their own")
struct RecoveryJobMigrationTests {
    static let kind = ObjectKind(rawValue: "recoveryJob")

    /// A finished recovery and a cancelled report in progress, as `RecoveryJobs` of the last release wrote them.
    static func legacyBodies() -> [(id: String, body: [String: JSONValue])] {
        let recovery = "0190a1b2-0000-7000-8000-000000000001", preview = "0190a1b2-0000-7000-8000-000000000002"
        let change: JSONValue = ["@odata.type": "#microsoft.graph.entraRecoveryServices.userRecoveryChange", "id": "u1", "tesseraApplied": true,
                                 "failureMessage": nil]
        return [
            (recovery, [
                "@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJob", "id": .string(recovery), "status": "successful",
                "jobStartDateTime": "2026-12-01T10:00:00Z", "jobCompletionDateTime": "2026-12-01T10:00:05Z",
                "targetStateDateTime": "2026-11-30T02:00:00Z",
                "filteringCriteria": ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter", "entityTypes": ["user"]],
                "totalChangedObjectsCalculated": 1, "totalChangedLinksCalculated": 2, "snapshotId": "snap-1", "comparisonSnapshotId": nil,
                "totalFailedChanges": 0, "totalObjectsModified": 1, "totalLinksModified": 2, "tesseraResumedDateTime": "2026-12-01T10:00:02Z",
                "_changes": [change],
            ]),
            (preview, [
                "@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryPreviewJob", "id": .string(preview), "status": "calculating",
                "jobStartDateTime": "2026-12-01T11:00:00Z", "jobCompletionDateTime": nil, "targetStateDateTime": "2026-11-30T02:00:00Z",
                "filteringCriteria": nil, "totalChangedObjectsCalculated": 0, "totalChangedLinksCalculated": 0, "snapshotId": "snap-1",
                "comparisonSnapshotId": "snap-2", "_changes": [], "_cancel": true,
            ]),
        ]
    }

    /// Leaves the schema as the release before the step: its table gone, its step not recorded.
    static func unapplyStep(_ store: SQLDirectoryStore) async throws {
        try await store.backend.withWriteSession { session in
            _ = try await session.execute("DROP TABLE recovery_jobs", [])
            _ = try await session.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(Migrations.recoveryJobStep))])
        }
    }

    static func insertLegacy(_ store: SQLDirectoryStore, tenant: String) async throws {
        try await store.write { tx in
            for (id, body) in legacyBodies() { try await tx.insert(StoredObject(tenant: tenant, id: id, kind: kind, body: body)) }
        }
    }

    @Test("an old job moves to its record with its changes and cancel, Graph's view of it unchanged; its object goes; the step runs once and moving again keeps what moved",
          arguments: TestDatabases.all)
    func upgradeMovesJobs(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            let tenant = try await TenantProvisioner(directory: DirectoryService(store: store, clock: TestClock()))
                .create(name: "Upgrade", domain: "upgrade.test").tenantId
            try await Self.unapplyStep(store)
            try await Self.insertLegacy(store, tenant: tenant)
            #expect(try await store.pendingMigrations() == [Migrations.recoveryJobStep])

            #expect(try await store.applyMigrations().map(\.number) == [Migrations.recoveryJobStep])

            let legacy = Self.legacyBodies()
            try await store.read { tx in
                #expect(try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind])).isEmpty, "no job is left in the objects table")
                #expect(try await tx.rawObjects(tenant: tenant, ids: legacy.map(\.id)).isEmpty)
                let jobs = try await tx.recoveryJobs(tenant: tenant, statuses: nil)
                #expect(jobs.map(\.id) == legacy.map(\.id).reversed(), "newest first")
                for (id, body) in legacy {
                    let job = try #require(try await tx.recoveryJob(tenant: tenant, id: id))
                    // Graph shows exactly what it showed of the object: its members without the `_` ones.
                    #expect(job.graphView == .object(body.filter { !$0.key.hasPrefix("_") }), "\(job.graphView.serialized)")
                    #expect(job.graphView.serialized == JSONValue.object(body.filter { !$0.key.hasPrefix("_") }).serialized)
                    #expect(try await tx.recoveryJobChanges(tenant: tenant, id: id) == body["_changes"]?.arrayValue)
                    #expect(job.cancelRequested == (body["_cancel"] == .bool(true)))
                }
                #expect(try await tx.recoveryJobs(tenant: tenant, statuses: RecoveryJobRecord.Status.active).map(\.id) == [legacy[1].id])
            }
            #expect(try await store.applyMigrations().isEmpty, "the step runs once")

            // Moving again (an object the step finds twice) keeps the record as it is and removes the object.
            try await store.write { tx in
                var job = try #require(try await tx.lockedRecoveryJob(tenant: tenant, id: legacy[1].id))
                job.status = .abandoned
                job.version += 1
                #expect(try await tx.replaceRecoveryJob(job, changes: nil, expectedVersion: job.version - 1))
            }
            try await Self.insertLegacy(store, tenant: tenant)
            try await store.backend.withWriteSession { session in try await Migrations.moveRecoveryJobs(session, store.backend.dialect) }
            try await store.read { tx throws -> Void in
                #expect(try await tx.query(ObjectQuery(tenant: tenant, kinds: [Self.kind])).isEmpty)
                #expect(try await tx.recoveryJob(tenant: tenant, id: legacy[1].id)?.status == .abandoned, "what moved stays")
                #expect(try await tx.recoveryJobs(tenant: tenant, statuses: nil).count == 2)
            }
        }
    }

    static func job(_ id: String, tenant: String = "t1") -> RecoveryJobRecord {
        RecoveryJobRecord(tenant: tenant, id: id, type: .recovery, status: .calculating, snapshotId: "s", targetStateDateTime: "",
                          filteringCriteria: .null, jobStartDateTime: "2026-12-01T00:00:00Z")
    }

    @Test("one job in progress per tenant, held by the database; a replace is a compare-and-set on the version",
          arguments: TestDatabases.all)
    func oneActiveJobAndCompareAndSet(_ database: String) async throws {
        try await CredentialMigrationTests.withOwnDatabase(database) { store in
            try await store.migrate()
            try await store.write { tx in try await tx.insertRecoveryJob(Self.job("a")) }
            // A second one in progress, inserted without the service's check (two nodes past it at once): refused.
            let refused = await #expect(throws: DirectoryError.self) { try await store.write { tx in try await tx.insertRecoveryJob(Self.job("b")) } }
            #expect(refused?.code == .conflict)
            let duplicate = await #expect(throws: DirectoryError.self) { try await store.write { tx in try await tx.insertRecoveryJob(Self.job("a", tenant: "t1")) } }
            #expect(duplicate?.message == DirectoryError.duplicate("id").message)
            try await store.write { tx in try await tx.insertRecoveryJob(Self.job("c", tenant: "t2")) }  // another tenant's
            // Finished, the job frees its tenant's place.
            try await store.write { tx in
                var done = try #require(try await tx.recoveryJob(tenant: "t1", id: "a"))
                done.status = .successful
                done.version = 2
                #expect(try await tx.replaceRecoveryJob(done, changes: ["x"], expectedVersion: 1))
                #expect(try await !tx.replaceRecoveryJob(done, changes: nil, expectedVersion: 1), "a stale version is refused")
                try await tx.insertRecoveryJob(Self.job("b"))
            }
            try await store.read { tx throws -> Void in
                #expect(try await tx.recoveryJob(tenant: "t1", id: "a")?.status == .successful)
                #expect(try await tx.recoveryJobChanges(tenant: "t1", id: "a") == ["x"])
                #expect(try await tx.recoveryJobChanges(tenant: "t1", id: "b") == [])
                #expect(try await tx.recoveryJobs(tenant: "t1", statuses: nil).map(\.id) == ["b", "a"])
            }
        }
    }
}
