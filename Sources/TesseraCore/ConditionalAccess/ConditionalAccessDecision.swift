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
    /// The security profile (`globalSecureAccessFilteringProfile.profileId`, lowercased) when the policy applied.
    public var filteringProfileID: String? { applied ? source.policy.filteringProfile : nil }

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

/// The decision for a sign-in. It holds what the engine found as compact sets of policies, in storage that
/// `ConditionalAccessEngine.decide(_:into:)` reuses from one sign-in to the next (so deciding allocates nothing);
/// `outcome`, `policies` and `persistentBrowser` are built from it when read.
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

    /// The rows a decision writes, each a set of policies (`DecisionProgram.words` words): per condition flag `f`,
    /// row `2f` (the policies whose condition matched) and `2f + 1` (the ones whose condition did not); then the
    /// policies that applied, the enforced ones that block, the enforced ones that need something, and scratch.
    enum Row {
        static func satisfied(_ flag: Int) -> Int { 2 * flag }
        static func notSatisfied(_ flag: Int) -> Int { 2 * flag + 1 }
        static let applied = 2 * DecisionProgram.Flag.count
        static let blocking = applied + 1, needs = applied + 2
        static let include = applied + 3, exclude = applied + 4, matched = applied + 5
        static let count = applied + 6
    }

    /// The most grant controls a policy may name (a control is a bit of a word, the last bit is re-authentication).
    static let maximumControls = 63
    static let reauthentication: UInt64 = 1 << 63

    /// What a decision found beyond its rows.
    struct Summary: Sendable {
        enum Kind: Sendable { case allow, block, needs }
        var kind = Kind.allow
        var servicePrincipal = false
        /// The last enforced policy that succeeded and sets a persistent browser mode; -1 for none.
        var persistentBrowser = -1
        var failures = 0
        var successes = 0
    }

    /// The engine's policies this decision speaks of; nil for an empty decision.
    var program: DecisionProgram?
    /// The rows, then each applied policy's result code, then each applied policy's unmet controls (bits).
    var storage: [UInt64] = []
    var summary = Summary()

    /// An empty decision (allow, no policies), to be filled by `ConditionalAccessEngine.decide(_:into:)`.
    public init() {}

    /// Makes the storage fit `program`'s policies; what it held is overwritten by the next decision.
    mutating func prepare(for program: DecisionProgram) {
        let size = Row.count * program.words + 2 * program.count
        if self.program !== program { self.program = program }
        if storage.count != size { storage = Array(repeating: 0, count: size) }
    }

    var resultsOffset: Int { Row.count * (program?.words ?? 0) }
    var unmetOffset: Int { resultsOffset + (program?.count ?? 0) }

    func contains(_ policy: Int, row: Int) -> Bool {
        guard let program else { return false }
        return storage[row * program.words + policy >> 6] & (1 << UInt64(policy & 63)) != 0
    }

    func policies(in row: Int) -> [Int] {
        guard let program else { return [] }
        return (0..<program.count).filter { contains($0, row: row) }
    }

    /// What the issuer does: allow, block, or ask for what is missing.
    public var outcome: Outcome {
        guard let program else { return .allow }
        switch summary.kind {
        case .allow:
            return .allow
        case .block:
            // A workload identity cannot answer a prompt: what it has not met, it never will.
            let ids = policies(in: Row.blocking) + (summary.servicePrincipal ? policies(in: Row.needs) : [])
            return .block(policyIDs: ids.map { program.compiled[$0].policy.id })
        case .needs:
            return .needs(policies(in: Row.needs).flatMap { requirementSets($0, program: program) })
        }
    }

    /// Whether the sign-in may go on as it is.
    public var isAllowed: Bool { summary.kind == .allow }

    /// Every policy of the tenant, in the order they were given (built when read: keep it rather than read it twice).
    public var policies: [AppliedPolicy] {
        guard let program else { return [] }
        return (0..<program.count).map { appliedPolicy($0, program: program) }
    }

    /// The persistent browser mode an applied policy sets (`always` or `never`), if any.
    public var persistentBrowser: String? {
        summary.persistentBrowser < 0 ? nil : program?.compiled[summary.persistentBrowser].policy.persistentBrowser
    }

    /// Graph's `conditionalAccessStatus` for the sign-in log: `failure` if an enforced policy failed, `success`
    /// if one applied and all that applied were met, `notApplied` if none applied.
    public var status: String {
        summary.failures > 0 ? "failure" : summary.successes > 0 ? "success" : "notApplied"
    }

    /// The unmet controls of policy `i`, in the policy's order, re-authentication last.
    func unmetRequirements(_ i: Int, program: DecisionProgram) -> [ConditionalAccessRequirement] {
        let mask = storage[unmetOffset + i]
        let controls = program.compiled[i].policy.grant?.controls ?? []
        var unmet = controls.indices.filter { mask & (1 << UInt64($0)) != 0 }.map { controls[$0] }
        if mask & Self.reauthentication != 0 { unmet.append(.reauthentication) }
        return unmet
    }

    /// The grant controls still missing (any one of them for `OR`), and re-authentication on its own.
    func requirementSets(_ i: Int, program: DecisionProgram) -> [RequirementSet] {
        let policy = program.compiled[i].policy
        let unmet = unmetRequirements(i, program: program)
        let grant = unmet.filter { $0 != .reauthentication }
        var sets: [RequirementSet] = []
        if !grant.isEmpty { sets.append(.init(policyID: policy.id, anyOf: policy.grant?.anyOf ?? false, requirements: grant)) }
        if unmet.contains(.reauthentication) { sets.append(.init(policyID: policy.id, anyOf: false, requirements: [.reauthentication])) }
        return sets
    }

    func appliedPolicy(_ i: Int, program: DecisionProgram) -> AppliedPolicy {
        let source = program.compiled[i]
        let enforced = program.controls[i].enabled
        var result = AppliedPolicy(source: source, result: .notEnabled, conditionsSatisfied: .init(rawValue: 0),
                                   conditionsNotSatisfied: .init(rawValue: 0), applied: false, unmetRequirements: [],
                                   failedClosedBecause: nil)
        if program.fixed.contains(i, row: DecisionProgram.Fixed.invalid) {
            result.result = enforced ? .failure : .reportOnlyFailure
            result.failedClosedBecause = "The policy cannot be evaluated: \(source.policy.invalid ?? "")."
            return result
        }
        guard program.fixed.contains(i, row: DecisionProgram.Fixed.evaluable) else { return result }
        for (f, flag) in DecisionProgram.Flag.all.enumerated() {
            if contains(i, row: Row.satisfied(f)) { result.conditionsSatisfied.insert(flag) }
            if contains(i, row: Row.notSatisfied(f)) { result.conditionsNotSatisfied.insert(flag) }
        }
        guard contains(i, row: Row.applied) else {
            result.result = enforced ? .notApplied : .reportOnlyNotApplied
            return result
        }
        result.applied = true
        result.result = AppliedPolicyResult(code: storage[resultsOffset + i])
        result.unmetRequirements = unmetRequirements(i, program: program)
        if program.controls[i].unevaluable {
            result.failedClosedBecause = "The policy cannot be evaluated: "
                + source.policy.unevaluable.map { "\($0.0.names.joined(separator: ",")): \($0.1)" }.joined(separator: "; ") + "."
        }
        return result
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.outcome == rhs.outcome && lhs.policies == rhs.policies && lhs.persistentBrowser == rhs.persistentBrowser
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(outcome)
        hasher.combine(status)
    }
}

extension AppliedPolicyResult {
    /// The result as a number a decision stores.
    var code: UInt64 {
        switch self {
        case .success: 0
        case .failure: 1
        case .notApplied: 2
        case .notEnabled: 3
        case .reportOnlySuccess: 4
        case .reportOnlyFailure: 5
        case .reportOnlyNotApplied: 6
        case .reportOnlyInterrupted: 7
        }
    }

    init(code: UInt64) {
        let all: [Self] = [.success, .failure, .notApplied, .notEnabled, .reportOnlySuccess, .reportOnlyFailure,
                           .reportOnlyNotApplied, .reportOnlyInterrupted]
        self = all[Int(code)]
    }
}
