import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("The test harness is production's setup")
struct HarnessTests {
    @Test("a write inside a read transaction fails, as it does for tessera serve (read-only reader connections)")
    func readTransactionsCannotWrite() async throws {
        try await Harness.run { h in
            let object = StoredObject(tenant: h.tenant.tenantId, id: Identifier.make(), kind: ObjectKind(rawValue: "recoveryJob"), body: [:])
            // A read is handed a `DirectoryReader`, which has no writes; cast past the type, the connection still refuses.
            await #expect(throws: (any Error).self) {
                try await h.app.store.read { tx -> Void in
                    guard let writable = tx as? any DirectoryTransaction else {
                        Issue.record("the read view is not the store's transaction")
                        return
                    }
                    try await writable.insert(object)
                }
            }
            #expect(try await h.app.store.read { tx in try await tx.object(tenant: h.tenant.tenantId, id: object.id) } == nil)
            // The same write in a write transaction is fine.
            try await h.app.store.write { tx in try await tx.insert(object) }
            #expect(try await h.app.store.read { tx in try await tx.object(tenant: h.tenant.tenantId, id: object.id) } != nil)
        }
    }

    @Test("a key credential without dates is valid for a year from the directory's clock, not the wall clock")
    func keyCredentialDatesFollowTheClock() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let (_, der) = try SessionAndAssertionTests.certificate(at: h.clock.now)
            let app = await h.graph("POST", "applications", token: token, json: ["displayName": "Daemon", "keyCredentials": [[
                "type": "AsymmetricX509Cert", "usage": "Verify", "key": .string(Data(der).base64EncodedString())]]])
            #expect(app.status == 201, "\(app.text)")
            let key = app.json["keyCredentials"]?.arrayValue?.first
            #expect(key?["startDateTime"] == .string(Timestamp.format(h.clock.now)), "\(app.text)")
            #expect(key?["endDateTime"] == .string(Timestamp.format(h.clock.now.addingTimeInterval(365 * 86_400))), "\(app.text)")
        }
    }

    @Test("the clock starts where TestClock.start says, and only the test moves it")
    func clockStartsAtTheFixedInstant() async throws {
        try await Harness.run { h in
            #expect(h.clock.now == TestClock.start)
            h.clock.advance(toNext: 86_400, plus: 60)
            #expect(Int(h.clock.now.timeIntervalSince1970) % 86_400 == 60 && h.clock.now > TestClock.start)
        }
    }
}
