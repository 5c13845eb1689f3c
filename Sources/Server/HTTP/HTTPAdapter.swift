import Foundation
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import Synchronization
import TesseraCore

/// Adapts Hummingbird requests to `TesseraApp.handle`, and its answers back. It is where the network is distrusted:
/// the `Host` must be one the deployment answers to, Graph callers prove who they are before a byte of their body is
/// read, every body is read within a size, a time and a shared memory budget, and the client address comes from the
/// connection (or from a proxy the deployment was told to trust).
public struct TesseraResponder: HTTPResponder {
    public typealias Context = TesseraRequestContext
    let app: TesseraApp
    let scheme: String
    let limits: ServerLimits
    let budget: BodyBudget
    let graphLimiter: RateLimiter?
    let tokenLimiter: RateLimiter?
    let bodyDeadlines: BodyDeadlines

    public init(app: TesseraApp, scheme: String, limits: ServerLimits = .init()) {
        self.app = app
        self.scheme = scheme
        self.limits = limits
        self.budget = BodyBudget(capacity: limits.maxBufferedBodyBytes)
        self.bodyDeadlines = BodyDeadlines(timeout: limits.bodyDeadline)
        self.graphLimiter = limits.graphRequestsPerSecond > 0
            ? RateLimiter(rate: Double(limits.graphRequestsPerSecond), burst: Double(2 * limits.graphRequestsPerSecond)) : nil
        self.tokenLimiter = limits.tokenRequestsPerSecond > 0
            ? RateLimiter(rate: Double(limits.tokenRequestsPerSecond), burst: Double(2 * limits.tokenRequestsPerSecond)) : nil
    }

    public func respond(to request: Request, context: TesseraRequestContext) async throws -> Response {
        // The id is minted before anything can fail, so that every answer, and the log line about it, carries it.
        let start = ContinuousClock.now
        let requestID = Identifier.make()
        let segments = request.uri.path.split(separator: "/").map(String.init)
        var tenant: String?
        let response = await answer(request, context: context, requestID: requestID, tenant: &tenant)
        let status = response.status.code
        let elapsed = ContinuousClock.now - start
        let route = Telemetry.route(segments)
        app.telemetry.request(route: route, method: request.method.rawValue, status: status, duration: elapsed)
        var metadata: Logger.Metadata = [
            "request-id": .string(requestID), "method": .string(request.method.rawValue), "route": .string(route),
            "status": .stringConvertible(status), "duration_ms": .stringConvertible(Telemetry.nanoseconds(elapsed) / 1_000_000),
        ]
        if let tenant { metadata["tenant"] = .string(tenant) }
        if let peer = context.remoteAddress?.ipAddress { metadata["peer"] = .string(peer) }
        app.logger.log(level: status >= 500 ? .error : .info, "request", metadata: metadata)
        return response
    }

    /// The answer to one request; `tenant` is set as soon as it is known, for the log.
    func answer(_ request: Request, context: TesseraRequestContext, requestID: String, tenant: inout String?) async -> Response {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName  // lowercased already (HTTPTypes)
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        // Behind a proxy that terminates TLS, the scheme and host the client used are the proxy's word (only a trusted
        // one's), and so is the client's address; the host must still be one the deployment answers to.
        let forwarded = app.network.resolve(listener: self.scheme, peer: context.remoteAddress?.ipAddress,
                                            host: request.head.authority ?? headers["host"], headers: headers)
        guard let baseURL = app.network.baseURL(scheme: forwarded.scheme, host: forwarded.host) else {
            return convert(.error(DirectoryError(.misdirectedRequest, "This server does not answer to that host name; use \(app.network.publicURLs.first ?? "its configured URL").")),
                           base: nil, requestID: requestID)
        }
        let clientAddress = forwarded.clientAddress
        let path = request.uri.path
        let isGraph = path.hasPrefix("/v1.0/") || path.hasPrefix("/beta/") || path == "/v1.0" || path == "/beta"
        var limit = min(app.maxBodyBytes, limits.maxAnonymousBodyBytes)
        var verifiedToken: JWT?
        if isGraph {
            // Graph is for callers with a token: anyone else is answered from the headers alone.
            do {
                let token = try Caller.verifiedToken(headers["authorization"], app: app, base: baseURL)
                verifiedToken = token
                tenant = token.claims["tid"]?.stringValue
                if let graphLimiter, let wait = graphLimiter.take("\(tenant ?? ""):\(token.claims["oid"]?.stringValue ?? "")") {
                    app.telemetry.throttled(kind: "graph")
                    return convert(Self.throttled(wait), base: baseURL, requestID: requestID)
                }
            } catch {
                let refused = APIRequest(method: request.method.rawValue, path: path, query: [], headers: headers, body: [], baseURL: baseURL,
                                         requestID: requestID)
                return convert(.error(error, request: refused, now: app.clock.now), base: baseURL, requestID: requestID)
            }
            limit = app.maxBodyBytes
        }
        if let tokenLimiter, path.hasSuffix("/oauth2/v2.0/token"), let wait = tokenLimiter.take(clientAddress ?? "-") {
            app.telemetry.throttled(kind: "token")
            return convert(Self.throttled(wait), base: baseURL, requestID: requestID)
        }
        let declared = headers["content-length"].flatMap(Self.contentLength)
        if let declared, declared > limit { return convert(Self.tooLarge(limit), base: baseURL, requestID: requestID) }
        let reservation = min(declared ?? limit, limit) + 1
        guard budget.reserve(reservation) else {
            var busy = APIResponse.error(DirectoryError(.serviceUnavailable, "The server is busy; retry shortly."))
            busy.headers.append(("Retry-After", "1"))
            return convert(busy, base: baseURL, requestID: requestID)
        }
        defer { budget.release(reservation) }
        let body: ByteBuffer
        do {
            // A late body's read is ended by failing the connection's inbound stream: the read throws, the answer is 408
            // with `Connection: close`, and the connection reads no further request.
            let connection = context.connection
            body = try await bodyDeadlines.collect(request, upTo: min(reservation, limit + 1),
                                                   stop: { connection.pipeline.fireErrorCaught(BodyLate()) })
        } catch is BodyTimeout {
            var late = APIResponse.error(DirectoryError(.requestTimeout, "The request body did not arrive in time."))
            late.headers.append(("Connection", "close"))
            return convert(late, base: baseURL, requestID: requestID)
        } catch {
            return convert(Self.tooLarge(limit), base: baseURL, requestID: requestID)
        }
        if body.readableBytes > limit { return convert(Self.tooLarge(limit), base: baseURL, requestID: requestID) }
        var apiRequest = APIRequest(
            method: request.method.rawValue, path: path, query: APIRequest.parseForm(request.uri.query ?? ""),
            headers: headers, body: Array(buffer: body), baseURL: baseURL, clientAddress: clientAddress, requestID: requestID)
        apiRequest.verifiedToken = verifiedToken
        if tenant == nil, let first = apiRequest.segments.first, Identifier.isGUID(first) { tenant = first }
        return convert(await app.handle(apiRequest), base: baseURL, requestID: requestID)
    }

    /// Graph's throttling answer: 429, `TooManyRequests`, and when to come back.
    static func throttled(_ seconds: Int) -> APIResponse {
        var response = APIResponse.error(DirectoryError(.tooManyRequests, "Too many requests from this caller. Retry after \(seconds) seconds."))
        response.headers.append(("Retry-After", String(seconds)))
        return response
    }

    static func tooLarge(_ limit: Int) -> APIResponse {
        var response = APIResponse.error(DirectoryError(.requestTooLarge, "The request body exceeds the maximum of \(limit) bytes."))
        response.headers.append(("Connection", "close"))
        return response
    }

    struct BodyTimeout: Error {}

    /// What a late body's connection is failed with, to end its read.
    struct BodyLate: Error {}

    /// A `Content-Length` value as a number: digits alone (what clients send) are read as they are, anything else with
    /// the spaces around it trimmed, as before. Foundation's trimming bridged every request's value through UTF-16.
    static func contentLength(_ value: String) -> Int? {
        if !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) { return Int(value) }
        return Int(value.trimmingCharacters(in: .whitespaces))
    }

    /// Whether answers on `base` carry HSTS: over HTTPS to a host name other than localhost. Asked of each answer, and
    /// answered by Foundation's URL parser only once a base (a deployment answers on a few).
    static func wantsHSTS(_ base: String) -> Bool {
        if let known = hstsByBase.withLock({ $0[base] }) { return known }
        let wants = base.hasPrefix("https://") && URL(string: base)?.host.map { $0 != "localhost" && NetworkPolicy.address($0) == nil } == true
        hstsByBase.withLock { cache in if cache.count < 64 { cache[base] = wants } }
        return wants
    }

    private static let hstsByBase = Mutex<[String: Bool]>([:])

    static let requestIDName = HTTPField.Name("request-id")!

    /// The response with the headers every answer carries: no MIME sniffing, and over HTTPS (the client's, when a proxy
    /// terminates it) to a real host name,
    /// HSTS (not for localhost, where it would outlive the test server and break every other local site).
    func convert(_ response: APIResponse, base: String?, requestID: String) -> Response {
        var fields = HTTPFields()
        if !response.headers.contains(where: { $0.name.utf8.count == 10 && $0.name.lowercased() == "request-id" }) {
            fields.append(HTTPField(name: Self.requestIDName, value: requestID))
        }
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields[.xContentTypeOptions] = "nosniff"
        if let base, Self.wantsHSTS(base) {
            fields[.strictTransportSecurity] = "max-age=31536000"
        }
        return Response(status: .init(code: response.status), headers: fields,
                        body: .init(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}
