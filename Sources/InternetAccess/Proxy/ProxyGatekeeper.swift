/// Who may go where through the proxy: authenticates the `Proxy-Authorization` header or the device certificate a client
/// presented on the TLS listener, and decides each destination. Tessera's implementation (`NetworkAccessGatekeeper` in
/// the server library) validates the access token as its resource APIs do, or the device certificate as the device
/// registration service issued it, and asks Conditional Access for the security profiles on the user's traffic.
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
    /// The certificate (DER) the client presented in the TLS handshake with the proxy's TLS listener, if any. The
    /// handshake proved the client holds its key; nothing else about it is checked before the gatekeeper.
    public var clientCertificate: [UInt8]?
    public init(proxyAuthorization: String?, host: String, port: Int, path: String?, clientAddress: String?, userAgent: String?,
                clientCertificate: [UInt8]? = nil) {
        self.proxyAuthorization = proxyAuthorization; self.host = host; self.port = port; self.path = path
        self.clientAddress = clientAddress; self.userAgent = userAgent; self.clientCertificate = clientCertificate
    }
}

/// The user behind a connection, as the token or the device's registration names them, and the device it comes from.
public struct ProxyUser: Sendable, Hashable {
    public var tenantID: String
    /// Nil for a device's own traffic: a device certificate alone, of a device with no registered owner or user.
    public var userID: String?
    public var userPrincipalName: String?
    public var device: ProxyDevice?
    public init(tenantID: String, userID: String?, userPrincipalName: String?, device: ProxyDevice? = nil) {
        self.tenantID = tenantID; self.userID = userID; self.userPrincipalName = userPrincipalName; self.device = device
    }
}

/// The device a connection comes from: proved by its device certificate, or named by the token's `deviceid` claim
/// (then only its id is known). Traffic records carry it as Graph's `deviceId`, `deviceOperatingSystem` and
/// `deviceOperatingSystemVersion`.
public struct ProxyDevice: Sendable, Hashable {
    public var deviceId: String
    public var displayName: String?
    public var operatingSystem: String?
    public var operatingSystemVersion: String?
    public init(deviceId: String, displayName: String? = nil, operatingSystem: String? = nil, operatingSystemVersion: String? = nil) {
        self.deviceId = deviceId; self.displayName = displayName; self.operatingSystem = operatingSystem
        self.operatingSystemVersion = operatingSystemVersion
    }
}

public enum ProxyAdmission: Sendable, Hashable {
    /// Not authenticated: the reason goes in the 407's body.
    case unauthenticated(String)
    /// A certificate of a tenant's device CA that does not count now (outside its validity, the device deleted or
    /// disabled, its certificate replaced), or whose device's registered owner is disabled: answered 407 with the reason, like
    /// ``unauthenticated(_:)``, and recorded as a `block` in that tenant's traffic log with the device.
    case deviceNotAccepted(tenantID: String, device: ProxyDevice, reason: String)
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
