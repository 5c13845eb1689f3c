/// Why the forward proxy refused a request, with the status it answers.
public struct ProxyError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public let status: Int
        public var description: String { rawValue }

        /// Not an HTTP/1.x request head.
        public static let malformed = Code(rawValue: "BadRequest", status: 400)
        public static let headTooLarge = Code(rawValue: "RequestHeaderFieldsTooLarge", status: 431)
        public static let unsupportedVersion = Code(rawValue: "HttpVersionNotSupported", status: 505)
        /// An origin-form request, or https:// without CONNECT.
        public static let notAProxyRequest = Code(rawValue: "NotAProxyRequest", status: 400)
        public static let portNotAllowed = Code(rawValue: "PortNotAllowed", status: 403)
        public static let authenticationRequired = Code(rawValue: "InvalidAuthenticationToken", status: 407)
        public static let blocked = Code(rawValue: "AccessBlockedByPolicy", status: 403)
        /// Conditional Access on the Internet Access traffic blocks the user, or asks for more than the token shows.
        public static let conditionalAccess = Code(rawValue: "AccessBlockedByConditionalAccess", status: 403)
        /// A request body inside an inspected tunnel larger than the proxy reads.
        public static let bodyTooLarge = Code(rawValue: "RequestEntityTooLarge", status: 413)
        /// A prompt the prompt policy blocks (TLS inspection of AI apps).
        public static let promptBlocked = Code(rawValue: "PromptInjectionBlocked", status: 403)
        public static let headTimeout = Code(rawValue: "RequestTimeout", status: 408)
        public static let upstreamFailed = Code(rawValue: "BadGateway", status: 502)
        public static let overloaded = Code(rawValue: "ServiceUnavailable", status: 503)
        public static let internalError = Code(rawValue: "InternalServerError", status: 500)
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code.rawValue): \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
