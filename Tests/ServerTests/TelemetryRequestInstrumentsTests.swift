import Foundation
import Testing
@testable import Server

/// A request's counter and timer are made once per route, method and status and kept: each request still counts once
/// under its own labels, on every route, method and status, from many tasks at once.
@Suite("Telemetry: a request's instruments, kept")
struct TelemetryRequestInstrumentsTests {
    @Test("requests are counted by route, method and status, and timed by route and method, however often they repeat")
    func counted() async {
        let telemetry = Telemetry()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<50 {
                        telemetry.request(route: "/{tenant}/oauth2/v2.0/token", method: "POST", status: (task == 0 && i < 5) ? 400 : 200,
                                          duration: .milliseconds(3))
                        telemetry.request(route: "/v1.0/users", method: i.isMultiple(of: 2) ? "GET" : "POST", status: 200, duration: .milliseconds(1))
                    }
                }
            }
        }
        let text = String(decoding: telemetry.exposition(), as: UTF8.self)
        #expect(text.contains(#"tessera_http_requests_total{route="/{tenant}/oauth2/v2.0/token",method="POST",status="200"} 395"#))
        #expect(text.contains(#"tessera_http_requests_total{route="/{tenant}/oauth2/v2.0/token",method="POST",status="400"} 5"#))
        #expect(text.contains(#"tessera_http_requests_total{route="/v1.0/users",method="GET",status="200"} 200"#))
        #expect(text.contains(#"tessera_http_requests_total{route="/v1.0/users",method="POST",status="200"} 200"#))
        #expect(text.contains(#"tessera_http_request_duration_seconds_count{route="/{tenant}/oauth2/v2.0/token",method="POST"} 400"#))
        #expect(text.contains(#"tessera_http_request_duration_seconds_count{route="/v1.0/users",method="GET"} 200"#))
        // The token requests took 3 ms each: all in the 5 ms bucket, none in the 2 ms one.
        #expect(text.contains(#"tessera_http_request_duration_seconds_bucket{route="/{tenant}/oauth2/v2.0/token",method="POST",le="0.005"} 400"#))
        #expect(text.contains(#"tessera_http_request_duration_seconds_bucket{route="/{tenant}/oauth2/v2.0/token",method="POST",le="0.002"} 0"#))
    }

    @Test("methods a client makes up are counted as one label, other: the kept instruments and the registry stay bounded")
    func madeUpMethods() {
        let telemetry = Telemetry()
        for i in 0..<500 { telemetry.request(route: "other", method: "X\(i)", status: 405, duration: .milliseconds(1)) }
        telemetry.request(route: "other", method: "PATCH", status: 405, duration: .milliseconds(1))
        let text = String(decoding: telemetry.exposition(), as: UTF8.self)
        #expect(text.contains(#"tessera_http_requests_total{route="other",method="other",status="405"} 500"#))
        #expect(text.contains(#"tessera_http_requests_total{route="other",method="PATCH",status="405"} 1"#))
        #expect(!text.contains(#"method="X"#))
    }
}
