import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Telemetry: what /metrics counts")
struct TelemetryTests {
    @Test("routes are templates: ids and unknown paths never become label values", arguments: [
        (["v1.0", "users", "8d1f0a52-2b5e-4c0e-9a51-6f6f0d1b7c11", "memberOf"], "/v1.0/users"),
        (["beta", "identity", "conditionalAccess", "policies"], "/beta/identity"),
        (["v1.0", "users('a@b.test')"], "/v1.0/{resource}"),
        (["3c2f0a52-2b5e-4c0e-9a51-6f6f0d1b7c11", "oauth2", "v2.0", "token"], "/{tenant}/oauth2/v2.0/token"),
        (["contoso.test", "v2.0", ".well-known", "openid-configuration"], "/{tenant}/v2.0/.well-known/openid-configuration"),
        (["x", "wp-login.php"], "other"), (["oidc", "userinfo"], "/oidc/userinfo"), ([], "/"),
    ])
    func routes(_ segments: [String], _ route: String) {
        #expect(Telemetry.route(segments) == route)
    }

    @Test("the background jobs' durations and outcomes are counted by kind")
    func jobs() async throws {
        try await Harness.run { h in
            _ = await RetentionService(app: h.app).sweep()
            let text = String(decoding: h.app.telemetry.exposition(), as: UTF8.self)
            #expect(text.contains(#"tessera_job_duration_seconds_count{kind="snapshot",result="success"} 1"#))
            #expect(text.contains(#"tessera_job_duration_seconds_count{kind="retention",result="success"} 1"#))
            #expect(text.contains(#"tessera_store_transaction_duration_seconds_count{kind="write"}"#))
        }
    }
}
