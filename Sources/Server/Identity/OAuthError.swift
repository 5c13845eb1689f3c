import Foundation
import TesseraCore

/// An OAuth 2.0 error (RFC 6749 §5.2) in Entra's shape: `error`, `error_description` with an AADSTS code,
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`.
struct OAuthError: Error, Sendable {
    let error: String
    let code: Int
    let description: String
    var status: Int = 400
    /// Seconds to wait, sent as `Retry-After` (throttling and lockout).
    var retryAfter: Int? = nil
    /// A claims challenge (`interaction_required`): what the client passes as `claims` to its next interactive request.
    var claims: String? = nil

    var response: APIResponse {
        let trace = Identifier.make()
        var headers: [(name: String, value: String)] = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if status == 401 { headers.append(("WWW-Authenticate", "Basic realm=\"tessera\"")) }
        if let retryAfter { headers.append(("Retry-After", String(retryAfter))) }
        var body: [String: JSONValue] = [
            "error": .string(error), "error_description": .string("AADSTS\(code): \(description) Trace ID: \(trace)"),
            "error_codes": [.int(Int64(code))], "timestamp": .string(Timestamp.format(Date())), "trace_id": .string(trace),
            "correlation_id": .string(Identifier.make()),
        ]
        if let claims { body["claims"] = .string(claims) }
        return .json(.object(body), status: status, headers: headers)
    }

    /// What a throttled or locked-out attempt is told (AADSTS50053 for a lock, 429 for a source out of attempts).
    static func refused(_ refusal: SignInThrottle.Refusal, now: Date) -> OAuthError {
        switch refusal {
        case .lockedOut:
            OAuthError(error: "invalid_client", code: 50053,
                       description: "The account is locked because of too many failed attempts from this address. Retry later.",
                       status: 400, retryAfter: refusal.retryAfter(now: now))
        case .throttled:
            OAuthError(error: "temporarily_unavailable", code: 50196,
                       description: "Too many failed attempts from this address. Retry later.", status: 429, retryAfter: refusal.retryAfter(now: now))
        }
    }

    static func invalidRequest(_ code: Int, _ description: String) -> OAuthError { OAuthError(error: "invalid_request", code: code, description: description) }
    static func invalidClient(_ code: Int, _ description: String) -> OAuthError {
        OAuthError(error: "invalid_client", code: code, description: description, status: 401)
    }
}
