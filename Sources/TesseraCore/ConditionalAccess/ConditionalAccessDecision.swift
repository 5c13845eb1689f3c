/// The conditions of a policy, named as Graph's `whatIfAnalysisReasons` flags name them: the conditions a policy
/// matched, or the ones that kept it from applying.
public struct ConditionalAccessConditions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let users = Self(rawValue: 4)
    public static let workloadIdentities = Self(rawValue: 8)
    public static let application = Self(rawValue: 16)
    public static let userActions = Self(rawValue: 32)
    public static let authenticationContext = Self(rawValue: 64)
    public static let devicePlatform = Self(rawValue: 128)
    public static let devices = Self(rawValue: 256)
    public static let clientApps = Self(rawValue: 512)
    public static let location = Self(rawValue: 1024)
    public static let signInRisk = Self(rawValue: 2048)
    public static let userRisk = Self(rawValue: 32768)
    public static let insiderRisk = Self(rawValue: 131072)
    public static let authenticationFlow = Self(rawValue: 262144)
    /// Not a `whatIfAnalysisReasons` member: the service principal risk condition (Graph folds it into
    /// `workloadIdentities` there).
    public static let servicePrincipalRisk = Self(rawValue: 1 << 30)

    static let names: [(String, Self)] = [
        ("users", .users), ("workloadIdentities", .workloadIdentities), ("application", .application),
        ("userActions", .userActions), ("authenticationContext", .authenticationContext),
        ("devicePlatform", .devicePlatform), ("devices", .devices), ("clientApps", .clientApps),
        ("location", .location), ("signInRisk", .signInRisk), ("userRisk", .userRisk),
        ("insiderRisk", .insiderRisk), ("authenticationFlow", .authenticationFlow),
        ("servicePrincipalRisk", .servicePrincipalRisk),
    ]

    /// The flag names, comma-separated, as Graph serialises a flags enum.
    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
}

/// What a sign-in still has to do to satisfy a policy's grant or session controls.
public enum ConditionalAccessRequirement: Sendable, Hashable {
    /// Sign in with methods that satisfy the strength (the `mfa` control is the built-in MFA strength).
    case authenticationStrength(AuthenticationStrength)
    case compliantDevice
    /// A Microsoft Entra hybrid joined device (`domainJoinedDevice`, trust type `ServerAD`).
    case hybridJoinedDevice
    /// Sign in again: the sign-in frequency has passed.
    case reauthentication
    /// A control Tessera cannot satisfy (`approvedApplication`, `compliantApplication`, `passwordChange`,
    /// `riskRemediation`, terms of use, custom factors, or an unknown authentication strength): never met, so a
    /// policy that demands it alone fails closed.
    case unsupported(String)

    /// Whether the user can meet it by signing in again (an interruption rather than a dead end).
    public var isInteractive: Bool {
        switch self {
        case .authenticationStrength, .reauthentication: true
        case .compliantDevice, .hybridJoinedDevice, .unsupported: false
        }
    }
}

/// Graph's `appliedConditionalAccessPolicyResult`.
public enum AppliedPolicyResult: String, Sendable, Hashable {
    case success, failure, notApplied, notEnabled
    case reportOnlySuccess, reportOnlyFailure, reportOnlyNotApplied, reportOnlyInterrupted
}

/// One policy's part in a decision: an `appliedConditionalAccessPolicy` with the reasons behind it. It refers to the
/// compiled policy for what the policy says (id, name, controls), so recording a result copies no strings.
public struct AppliedPolicy: Sendable, Hashable {
    let source: ConditionalAccessEngine.Compiled
    /// The policy's result in the sign-in log's vocabulary.
    public var result: AppliedPolicyResult
    /// The conditions the sign-in matched (all of the policy's configured ones when it applied).
    public var conditionsSatisfied: ConditionalAccessConditions
    /// The conditions that kept the policy from applying.
    public var conditionsNotSatisfied: ConditionalAccessConditions
    /// Whether every condition matched, so the policy's controls were enforced (or, report-only, reported).
    public var applied: Bool
    /// What the sign-in has not yet done, when the policy applied and is not satisfied (empty for a block).
    public var unmetRequirements: [ConditionalAccessRequirement]
    /// Why the policy could not be evaluated, when it failed closed.
    public var failedClosedBecause: String?

    /// The policy's id (lowercase).
    public var id: String { source.policy.id }
    /// The policy's display name.
    public var displayName: String { source.policy.displayName }
    /// The grant controls as Graph's `builtInControls` name them (`block`, `mfa`, `compliantDevice`…), plus
    /// `authenticationStrength`, `termsOfUse` and `customAuthenticationFactors`, when the policy applied.
    public var enforcedGrantControls: [String] { applied ? source.policy.grant?.names ?? [] : [] }
    /// The session controls (`SignInFrequency`, `PersistentBrowserSessionMode`) when the policy applied.
    public var enforcedSessionControls: [String] { applied ? source.policy.sessionControlNames : [] }

    public static func == (lhs: AppliedPolicy, rhs: AppliedPolicy) -> Bool {
        lhs.source === rhs.source && lhs.result == rhs.result && lhs.conditionsSatisfied == rhs.conditionsSatisfied
            && lhs.conditionsNotSatisfied == rhs.conditionsNotSatisfied && lhs.applied == rhs.applied
            && lhs.unmetRequirements == rhs.unmetRequirements && lhs.failedClosedBecause == rhs.failedClosedBecause
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(source))
        hasher.combine(result)
    }
}

/// The decision for a sign-in.
public struct ConditionalAccessDecision: Sendable, Hashable {
    /// What the issuer does with the sign-in.
    public enum Outcome: Sendable, Hashable {
        case allow
        /// A policy blocks (its `block` control, a requirement Tessera can never meet, or a policy that failed
        /// closed); the ids of the blocking policies.
        case block(policyIDs: [String])
        /// The sign-in can continue once every requirement is met: one alternative list per unsatisfied policy
        /// (any one requirement of a list satisfies an `OR` policy; all of them an `AND` one).
        case needs([RequirementSet])
    }

    /// An unsatisfied enforced policy's missing controls.
    public struct RequirementSet: Sendable, Hashable {
        public var policyID: String
        /// True when any one of `requirements` is enough (`OR`), false when all are needed (`AND`).
        public var anyOf: Bool
        public var requirements: [ConditionalAccessRequirement]

        public init(policyID: String, anyOf: Bool, requirements: [ConditionalAccessRequirement]) {
            self.policyID = policyID
            self.anyOf = anyOf
            self.requirements = requirements
        }
    }

    /// What the issuer does: allow, block, or ask for what is missing.
    public var outcome: Outcome
    /// Every policy of the tenant, in the order they were given.
    public var policies: [AppliedPolicy]
    /// The persistent browser mode an applied policy sets (`always` or `never`), if any.
    public var persistentBrowser: String?

    /// Graph's `conditionalAccessStatus` for the sign-in log: `failure` if an enforced policy failed, `success`
    /// if one applied and all that applied were met, `notApplied` if none applied.
    public var status: String {
        if policies.contains(where: { $0.result == .failure }) { return "failure" }
        if policies.contains(where: { $0.result == .success }) { return "success" }
        return "notApplied"
    }
}
