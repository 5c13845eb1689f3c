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
    /// Authenticated, but Conditional Access on the Internet Access traffic does not let this token through: a policy
    /// blocks the user, or its grant controls ask for what the token does not show (multifactor authentication or
    /// another authentication strength, a compliant device…). Answered 403 and recorded as `block`.
    case refused(ProxyUser, ProxyRefusal, application: TrafficRecord.Application?)
}

/// Why Conditional Access keeps a user's traffic out, for the refusal page or JSON.
public struct ProxyRefusal: Sendable, Hashable {
    /// The Conditional Access policy that refuses.
    public var conditionalAccessPolicyID: String
    /// What the user is told: the policy's name and what it asks for.
    public var message: String
    public init(conditionalAccessPolicyID: String, message: String) {
        self.conditionalAccessPolicyID = conditionalAccessPolicyID; self.message = message
    }
}
