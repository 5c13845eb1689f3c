import Foundation
import TesseraCore

/// An HTTP request as Tessera's handlers see it, independent of the server library (so `$batch` can
/// dispatch its parts through the same code).
public struct APIRequest: Sendable {
    public var method: String
    /// Path segments, percent-decoded.
    public var segments: [String]
    /// Query parameters, percent-decoded, in order.
    public var query: [(name: String, value: String)]
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// `https://host:port`: the deployment's URL the request came in by (its `Host`, checked against the
    /// ``NetworkPolicy``), for the issuer and absolute links.
    public var baseURL: String
    /// The client's address: the connection's peer, or whom a trusted proxy forwarded for. Nil in-process.
    public var clientAddress: String?
    /// This request's id, minted as it arrived: sent back as `request-id` and in Graph's error `innerError`, and on
    /// every log line about it, so a client's report finds the log.
    public var requestID: String
    /// The bearer token of `authorization`, when the HTTP edge has already checked it (Graph callers are checked before
    /// their body is read), so that it is not verified twice.
    var verifiedToken: JWT?

    /// - Parameter requestID: the id the HTTP edge minted as the request arrived; a new one by default (in-process
    ///   requests, `$batch` parts), minted only then.
    public init(method: String, path: String, query: [(name: String, value: String)], headers: [String: String],
                body: [UInt8], baseURL: String, clientAddress: String? = nil, requestID: String? = nil) {
        self.requestID = requestID ?? Identifier.make()
        self.method = method.uppercased()
        // Foundation's percent-decoding only for a segment with a `%` in it (most have none, and it was about 1% of a
        // `POST /users`' CPU); a segment without one decodes to itself.
        self.segments = path.split(separator: "/", omittingEmptySubsequences: true).map {
            $0.utf8.contains(UInt8(ascii: "%")) ? String($0).removingPercentEncoding ?? String($0) : String($0)
        }
        self.query = query
        self.headers = headers
        self.body = body
        self.baseURL = baseURL
        self.clientAddress = clientAddress
    }

    /// A header by lowercased name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The first query parameter with this name.
    public func parameter(_ name: String) -> String? { query.first { $0.name == name }?.value }

    /// Parses `a=b&c=d` (form or query string) with `+` as space.
    public static func parseForm(_ text: String) -> [(name: String, value: String)] {
        text.utf8.split(separator: UInt8(ascii: "&")).compactMap { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let rawName = parts.first else { return nil }
            return (percentDecode(rawName), parts.count > 1 ? percentDecode(parts[1]) : "")
        }
    }

    /// `%XX` and `+` decoding; a malformed escape is kept as written.
    static func percentDecode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity(input.count)
        var i = 0
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 65...70: c - 55
            case 97...102: c - 87
            default: nil
            }
        }
        while i < input.count {
            let c = input[i]
            if c == UInt8(ascii: "%"), i + 2 < input.count, let hi = hexValue(input[i + 1]), let lo = hexValue(input[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The body as a JSON object, or a Graph 400.
    func jsonObject() throws(DirectoryError) -> [String: JSONValue] {
        guard !body.isEmpty else { throw DirectoryError.badRequest("Empty Payload. JSON content expected.") }
        do {
            guard case .object(let object) = try JSONParser.parse(body) else {
                throw DirectoryError.badRequest("Invalid request body: a JSON object was expected.")
            }
            return object
        } catch let error as JSONParser.Failure {
            throw DirectoryError.badRequest("Unable to read JSON request payload. \(error.description).")
        } catch let error as DirectoryError {
            throw error
        } catch {
            throw DirectoryError.badRequest("Unable to read JSON request payload.")
        }
    }
}

/// An HTTP response.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response.
    static func json(_ value: JSONValue, status: Int = 200, headers: [(name: String, value: String)] = []) -> APIResponse {
        json(bytes: value.serializedBytes, status: status, headers: headers)
    }

    /// A JSON response whose body is already serialised.
    static func json(bytes: [UInt8], status: Int = 200, headers: [(name: String, value: String)] = []) -> APIResponse {
        APIResponse(status: status, headers: [("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")] + headers, body: bytes)
    }

    static func text(_ text: String, status: Int = 200) -> APIResponse {
        APIResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }

    static let noContent = APIResponse(status: 204)

    /// Graph's error body: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
    static func error(_ error: DirectoryError, request: APIRequest? = nil, now: Date = Date()) -> APIResponse {
        let requestId = request?.requestID ?? Identifier.make()
        var inner: [String: JSONValue] = ["date": .string(Timestamp.format(now)), "request-id": .string(requestId)]
        inner["client-request-id"] = .string(request?.header("client-request-id") ?? requestId)
        var headers: [(name: String, value: String)] = [("request-id", requestId)]
        if error.code == .invalidToken {
            headers.append(("WWW-Authenticate", "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""))
        }
        return .json(["error": ["code": .string(error.code.rawValue), "message": .string(error.message), "innerError": .object(inner)]],
                     status: error.code.status, headers: headers)
    }
}
