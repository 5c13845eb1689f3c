public import TesseraCore

/// The proxy's own answers (refusals and the tunnel's 200), as raw HTTP/1.1 bytes. Errors are Graph's
/// `{"error":{"code","message"}}` for API clients, and a short HTML page for browsers (by `Accept`).
public enum ProxyResponse {
    /// `200 Connection established`: the tunnel is open.
    public static let established = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    /// A refusal; the connection is closed after it.
    public static func error(_ error: ProxyError, accept: String?, extra: [(String, String)] = [], innerError: [String: JSONValue] = [:]) -> [UInt8] {
        let answer = errorAnswer(error, accept: accept, extra: extra, innerError: innerError)
        var head = "HTTP/1.1 \(error.code.status) \(reason(error.code.status))\r\n"
        for (name, value) in answer.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(answer.body.count)\r\nConnection: close\r\n"
        if error.code == .authenticationRequired { head += "Proxy-Connection: close\r\n" }
        return Array((head + "\r\n").utf8) + answer.body
    }

    /// A refusal's header fields (without its framing and connection fields) and body: Graph's JSON error, or an HTML
    /// page for a browser.
    static func errorAnswer(_ error: ProxyError, accept: String?, extra: [(String, String)] = [], innerError: [String: JSONValue] = [:])
        -> (headers: [(String, String)], body: [UInt8]) {
        var object: [String: JSONValue] = ["code": .string(error.code.rawValue), "message": .string(error.message)]
        if !innerError.isEmpty { object["innerError"] = .object(innerError) }
        let html = accept.map { $0.lowercased().contains("text/html") } ?? false
        let body: [UInt8]
        let type: String
        if html {
            body = Array(page(title: reason(error.code.status), message: error.message, details: innerError).utf8)
            type = "text/html; charset=utf-8"
        } else {
            body = JSONValue.object(["error": .object(object)]).serializedBytes
            type = "application/json"
        }
        return ([("Content-Type", type), ("Cache-Control", "no-store")] + extra, body)
    }

    /// The 403 for a destination a filtering policy blocks, naming the policy and rule (ids in `innerError`).
    public static func blocked(host: String, match: FilteringEngine.Match, application: TrafficRecord.Application?, accept: String?) -> [UInt8] {
        let (error, inner) = blockedError(host: host, match: match, application: application)
        return self.error(error, accept: accept, innerError: inner)
    }

    /// The error and `innerError` of ``blocked(host:match:application:accept:)``.
    static func blockedError(host: String, match: FilteringEngine.Match, application: TrafficRecord.Application?)
        -> (ProxyError, [String: JSONValue]) {
        let what = application.map { "\($0.name) (\(host))" } ?? host
        let error = ProxyError(.blocked, "Access to \(what) is blocked by your organization's policy '\(match.policyName)', rule '\(match.ruleName)'.")
        var inner: [String: JSONValue] = [
            "filteringProfileId": .string(match.profileID), "policyId": .string(match.policyID), "policyRuleId": .string(match.ruleID),
            "conditionalAccessPolicyId": .string(match.conditionalAccessPolicyID), "destination": .string(host),
        ]
        if let application { inner["application"] = .string(application.catalogId) }
        return (error, inner)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }

    static func page(title: String, message: String, details: [String: JSONValue]) -> String {
        let rows = details.sorted { $0.key < $1.key }.map { "<tr><th>\(escape($0.key))</th><td>\(escape($0.value.stringValue ?? ""))</td></tr>" }
        return """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>body{font:16px system-ui,sans-serif;margin:3em auto;max-width:40em;color:#222}h1{font-size:1.4em}th{text-align:left;padding-right:1em;color:#555;font-weight:normal}</style>
        </head><body><h1>\(escape(title))</h1><p>\(escape(message))</p>\(rows.isEmpty ? "" : "<table>" + rows.joined() + "</table>")
        <p>Tessera Internet Access</p></body></html>
        """
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
