public import Foundation

/// What Conditional Access knows about one sign-in or token request: the input of a decision. Ids are compared
/// case-insensitively (they are lowercased here once).
public struct SignInFacts: Sendable {
    /// Who signs in: a user (with the groups and directory roles it holds, transitively) or a service principal
    /// (client credentials: Conditional Access for workload identities).
    public enum Subject: Sendable, Hashable {
        case user(id: String, groupIDs: Set<String>, roleTemplateIDs: Set<String>, external: ExternalUserKind?)
        case servicePrincipal(id: String)
    }

    /// A guest or external user, in Graph's `conditionalAccessGuestOrExternalUserTypes` vocabulary, with the
    /// tenant the user comes from (nil for an internal guest).
    public struct ExternalUserKind: Sendable, Hashable {
        public var type: GuestOrExternalUserType
        public var homeTenantID: String?
        public init(type: GuestOrExternalUserType, homeTenantID: String?) {
            self.type = type
            self.homeTenantID = homeTenantID?.lowercased()
        }

        /// The kind Entra gives a user from its `userType` and home tenant: a guest of this tenant is an internal
        /// guest, a guest from another a B2B collaboration guest, a member from another a B2B collaboration member;
        /// nil for a member of this tenant.
        public init?(userType: String, homeTenantID: String?, tenantID: String) {
            let home = homeTenantID?.lowercased()
            let isGuest = userType.lowercased() == "guest"
            let isForeign = home != nil && home != tenantID.lowercased()
            switch (isGuest, isForeign) {
            case (true, false): self.init(type: .internalGuest, homeTenantID: nil)
            case (true, true): self.init(type: .b2bCollaborationGuest, homeTenantID: home)
            case (false, true): self.init(type: .b2bCollaborationMember, homeTenantID: home)
            case (false, false): return nil
            }
        }
    }

    /// What the sign-in asks for: a resource (by application id), a user action, or both with authentication
    /// contexts (`acrs`).
    public enum Target: Sendable, Hashable {
        case application(appID: String)
        case userAction(UserAction)
    }

    /// A method the session used, and when.
    public struct MethodUse: Sendable, Hashable {
        public var method: AuthenticationMethodModes
        public var at: Date
        /// The passkey's AAGUID (lowercased), for a `fido2` use.
        public var aaguid: String?
        /// A use of `method` at `at` (for a passkey, with its AAGUID).
        public init(_ method: AuthenticationMethodModes, at: Date, aaguid: String? = nil) {
            self.method = method
            self.at = at
            self.aaguid = aaguid?.lowercased()
        }
    }

    public var tenantID: String
    public var subject: Subject {
        didSet { (groups, roles) = Self.memberships(of: subject) }
    }
    /// The user's group and role ids packed as UTF-8, kept with `subject`: a decision reads them without retaining
    /// each string.
    private(set) var groups = PackedIDs(), roles = PackedIDs()
    public var target: Target
    /// Authentication context class references the request carries (`c1` … `c99`).
    public var authenticationContexts: Set<String>
    public var clientAppType: ClientAppType
    /// Nil when the User-Agent names none Tessera recognises.
    public var platform: DevicePlatform?
    public var clientIP: IPAddress?
    /// The ISO 3166 code of the client's country, nil when unknown.
    public var country: String?
    /// The device, nil when it is unregistered.
    public var device: DeviceFacts?
    public var userRisk: RiskLevel
    public var signInRisk: RiskLevel
    public var servicePrincipalRisk: RiskLevel
    /// Nil when nothing sets it (`minor`, `moderate`, `elevated` in Entra).
    public var insiderRisk: String?
    /// `deviceCodeFlow` or `authenticationTransfer` when the sign-in is one of those flows.
    public var transferMethod: String?
    /// The methods this session used; the latest use of each counts.
    public var methodsUsed: [MethodUse]
    /// The clock.
    public var now: Date

    /// The facts of a sign-in; everything not given is unknown or `none`. Ids, tenants and the country are
    /// normalised here (lowercase ids, uppercase country) so a decision compares without converting.
    public init(tenantID: String, subject: Subject, target: Target, authenticationContexts: Set<String> = [],
                clientAppType: ClientAppType = .browser, platform: DevicePlatform? = nil, clientIP: IPAddress? = nil,
                country: String? = nil, device: DeviceFacts? = nil, userRisk: RiskLevel = .none,
                signInRisk: RiskLevel = .none, servicePrincipalRisk: RiskLevel = .none, insiderRisk: String? = nil,
                transferMethod: String? = nil, methodsUsed: [MethodUse] = [], now: Date) {
        self.tenantID = tenantID.lowercased()
        switch subject {
        case .user(let id, let groups, let roles, let external):
            self.subject = .user(id: id.lowercased(), groupIDs: Set(groups.map { $0.lowercased() }),
                                 roleTemplateIDs: Set(roles.map { $0.lowercased() }), external: external)
        case .servicePrincipal(let id):
            self.subject = .servicePrincipal(id: id.lowercased())
        }
        switch target {
        case .application(let appID): self.target = .application(appID: appID.lowercased())
        case .userAction: self.target = target
        }
        self.authenticationContexts = authenticationContexts
        self.clientAppType = clientAppType
        self.platform = platform
        self.clientIP = clientIP
        self.country = country?.uppercased()
        self.device = device
        self.userRisk = userRisk
        self.signInRisk = signInRisk
        self.servicePrincipalRisk = servicePrincipalRisk
        self.insiderRisk = insiderRisk
        self.transferMethod = transferMethod
        self.methodsUsed = methodsUsed
        self.now = now
        (groups, roles) = Self.memberships(of: self.subject)
    }

    private static func memberships(of subject: Subject) -> (groups: PackedIDs, roles: PackedIDs) {
        guard case .user(_, let groups, let roles, _) = subject else { return (PackedIDs(), PackedIDs()) }
        return (PackedIDs(groups), PackedIDs(roles))
    }

    /// Every method the session used, as one set of flags.
    public var methods: AuthenticationMethodModes {
        methodsUsed.reduce(into: AuthenticationMethodModes(rawValue: 0)) { $0.formUnion($1.method) }
    }
}

/// Graph's `conditionalAccessGuestOrExternalUserTypes` members.
public enum GuestOrExternalUserType: String, Sendable, Hashable, CaseIterable {
    case internalGuest, b2bCollaborationGuest, b2bCollaborationMember, b2bDirectConnectUser, otherExternalUser
    case serviceProvider
}

/// The user actions a policy can target (`includeUserActions`).
public enum UserAction: String, Sendable, Hashable, CaseIterable {
    /// Registering security information, such as a passkey.
    case registerSecurityInformation = "urn:user:registersecurityinfo"
    /// Registering or joining a device.
    case registerOrJoinDevices = "urn:user:registerdevice"
}

/// Ids end to end as UTF-8, each read as a byte buffer.
struct PackedIDs: Sendable {
    private var bytes: [UInt8] = []
    private var ends: [Int32] = []

    init() {}

    init(_ ids: some Sequence<String>) {
        for id in ids {
            bytes.append(contentsOf: id.utf8)
            ends.append(Int32(bytes.count))
        }
    }

    var count: Int { ends.count }

    /// Calls `body` with each id's bytes.
    @inline(__always)
    func forEach(_ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            ends.withUnsafeBufferPointer { ends in
                var start = 0
                for end in ends {
                    body(UnsafeRawBufferPointer(rebasing: all[start..<Int(end)]))
                    start = Int(end)
                }
            }
        }
    }
}

extension DevicePlatform {
    /// The position in `allCases`, without building it.
    var index: Int {
        switch self {
        case .android: 0
        case .iOS: 1
        case .windows: 2
        case .windowsPhone: 3
        case .macOS: 4
        case .linux: 5
        }
    }
}

extension ClientAppType {
    /// The position in `allCases`, without building it.
    var index: Int {
        switch self {
        case .browser: 0
        case .mobileAppsAndDesktopClients: 1
        case .exchangeActiveSync: 2
        case .other: 3
        }
    }
}

extension UserAction {
    /// The position in `allCases`, without building it.
    var index: Int {
        switch self {
        case .registerSecurityInformation: 0
        case .registerOrJoinDevices: 1
        }
    }
}

extension RiskLevel {
    /// The position in `allCases`, without building it.
    var index: Int {
        switch self {
        case .none: 0
        case .low: 1
        case .medium: 2
        case .high: 3
        }
    }
}
