/// The one error type of the directory: a Graph error code and a message for the caller.
///
/// Codes are compared, messages are for people. The HTTP edge maps each code to its status once.
public struct DirectoryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A Graph error code. New codes never break callers that switch over the ones they know.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as Graph spells it in `error.code`.
        public let rawValue: String
        /// The HTTP status Graph answers with for this code.
        public let status: Int
        init(_ rawValue: String, _ status: Int) {
            self.rawValue = rawValue
            self.status = status
        }
        public var description: String { rawValue }

        /// 400: the request is malformed or breaks a rule.
        public static let badRequest = Code("Request_BadRequest", 400)
        /// 400: the query is valid OData but not supported here (or needs `ConsistencyLevel: eventual`).
        public static let unsupportedQuery = Code("Request_UnsupportedQuery", 400)
        /// 404: no such object in this tenant.
        public static let notFound = Code("Request_ResourceNotFound", 404)
        /// 403: the caller lacks the permission or role.
        public static let accessDenied = Code("Authorization_RequestDenied", 403)
        /// 401: no token, or a token Tessera did not issue or that expired.
        public static let invalidToken = Code("InvalidAuthenticationToken", 401)
        /// 412: `If-Match` did not match the current ETag.
        public static let preconditionFailed = Code("Request_PreconditionFailed", 412)
        /// 413: the body is larger than Tessera accepts.
        public static let requestTooLarge = Code("Request_EntityTooLarge", 413)
        /// 405: the resource exists but not with this method.
        public static let methodNotAllowed = Code("Request_MethodNotAllowed", 405)
        /// 400: a delta token that expired or was never issued.
        public static let syncStateNotFound = Code("syncStateNotFound", 400)
        /// 409: a write lost a race or conflicts with current state.
        public static let conflict = Code("Request_Conflict", 409)
        /// 424: a `$batch` request whose dependency failed.
        public static let failedDependency = Code("Request_FailedDependency", 424)
        /// 408: the request body did not arrive in time.
        public static let requestTimeout = Code("Request_Timeout", 408)
        /// 421: the request named a host this deployment does not answer to.
        public static let misdirectedRequest = Code("Request_MisdirectedRequest", 421)
        /// 429: too many requests from this client; `Retry-After` says when to come back.
        public static let tooManyRequests = Code("TooManyRequests", 429)
        /// 503: the server is busy (or a dependency is down); `Retry-After` says when to come back.
        public static let serviceUnavailable = Code("ServiceUnavailable", 503)
        /// 507: the database's disk is full; the write was refused whole and succeeds again once space returns.
        public static let insufficientStorage = Code("insufficientStorage", 507)
        /// 500: something Tessera did not expect; details go to the log, not the client.
        public static let internalError = Code("Service_InternalServerError", 500)
    }

    /// What went wrong, as a code.
    public var code: Code
    /// A message for the caller; never contains a secret.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Graph's message for a uniqueness conflict.
    public static func duplicate(_ property: String) -> DirectoryError {
        DirectoryError(.badRequest, "Another object with the same value for property \(property) already exists.")
    }

    /// Graph's message for an id that names nothing.
    public static func notFound(_ id: String) -> DirectoryError {
        DirectoryError(.notFound, "Resource '\(id)' does not exist or one of its queried reference-property objects are not present.")
    }

    /// A plain 400.
    public static func badRequest(_ message: String) -> DirectoryError { DirectoryError(.badRequest, message) }
}
