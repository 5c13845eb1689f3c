/// Who may go where through the proxy: authenticates the `Proxy-Authorization` header and decides each destination.
/// Tessera's implementation validates the access token as its resource APIs do and asks Conditional Access for the
/// security profiles on the user's traffic (`ProxyAccess` in the server library).
public protocol ProxyGatekeeper: Sendable {
    /// The decision for one connection or request: who the caller is and whether the destination is allowed; or why
    /// the caller is not authenticated (answered 407). Throwing is a failure of the gatekeeper (answered 500).
    func admit(_ request: ProxyAdmissionRequest) async throws -> ProxyAdmission
}

/// What the proxy knows when it asks.
public struct ProxyAdmissionRequest: Sendable, Hashable {
    /// The `Proxy-Authorization` header, if any.
    public var proxyAuthorization: String?
    public var host: String
    public var port: Int
    /// The path, for a plain HTTP request (nil inside a tunnel the proxy does not inspect).
    public var path: String?
    public var clientAddress: String?
    public var userAgent: String?
    public init(proxyAuthorization: String?, host: String, port: Int, path: String?, clientAddress: String?, userAgent: String?) {
        self.proxyAuthorization = proxyAuthorization; self.host = host; self.port = port; self.path = path
        self.clientAddress = clientAddress; self.userAgent = userAgent
    }
}

/// The user behind a connection, as the token names them.
public struct ProxyUser: Sendable, Hashable {
    public var tenantID: String
    public var userID: String
    public var userPrincipalName: String?
    public var deviceID: String?
    public init(tenantID: String, userID: String, userPrincipalName: String?, deviceID: String? = nil) {
        self.tenantID = tenantID; self.userID = userID; self.userPrincipalName = userPrincipalName; self.deviceID = deviceID
    }
}

public enum ProxyAdmission: Sendable, Hashable {
    /// Not authenticated: the reason goes in the 407's body.
    case unauthenticated(String)
    /// Authenticated; `verdict` says whether the destination is blocked and by which policy and rule.
    case decided(ProxyUser, FilteringEngine.Verdict, application: TrafficRecord.Application?)
}
