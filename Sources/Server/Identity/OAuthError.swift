import Foundation
import TesseraCore

/// An OAuth 2.0 error (RFC 6749 §5.2) in Entra's shape: `error`, `error_description` with an AADSTS code,
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`.
struct OAuthError: Error, Sendable {
    let error: String
    let code: Int
    let description: String
    var status: Int = 400

    var response: APIResponse {
        let trace = Identifier.make()
        var headers: [(name: String, value: String)] = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if status == 401 { headers.append(("WWW-Authenticate", "Basic realm=\"tessera\"")) }
        return .json([
            "error": .string(error), "error_description": .string("AADSTS\(code): \(description) Trace ID: \(trace)"),
            "error_codes": [.int(Int64(code))], "timestamp": .string(Timestamp.format(Date())), "trace_id": .string(trace),
            "correlation_id": .string(Identifier.make()),
        ], status: status, headers: headers)
    }

    static func invalidRequest(_ code: Int, _ description: String) -> OAuthError { OAuthError(error: "invalid_request", code: code, description: description) }
    static func invalidClient(_ code: Int, _ description: String) -> OAuthError {
        OAuthError(error: "invalid_client", code: code, description: description, status: 401)
    }
}
