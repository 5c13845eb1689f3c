import Foundation

/// Deciding a sign-in: every condition of every policy matched at once as sets of policies
/// (`ConditionalAccessEngine+Conditions.swift`), then the controls of the policies that apply.
extension ConditionalAccessEngine {
    /// Entra's tolerance for "every time" sign-in frequency: an authentication this recent counts as this one.
    static let everyTimeTolerance = 300.0

    /// The decision for a sign-in, with each policy's result and reasons.
    public func decide(_ facts: SignInFacts) -> ConditionalAccessDecision {
        var decision = ConditionalAccessDecision()
        decide(facts, into: &decision)
        return decision
    }

    /// The decision for a sign-in, written into `decision` over whatever it held: the same decision as
    /// `decide(_:)`, but reusing `decision`'s storage, so a caller deciding sign-in after sign-in allocates nothing.
    public func decide(_ facts: SignInFacts, into decision: inout ConditionalAccessDecision) {
        let program = self.program
        decision.prepare(for: program)
        decision.summary = decision.storage.withUnsafeMutableBufferPointer { storage in
            var evaluation = Evaluation(program: program, fixed: program.fixed.storage.base, out: storage.baseAddress!)
            evaluation.matchConditions(facts)
            evaluation.applyControls(facts)
            return evaluation.summary
        }
    }
}

/// One decision in progress: the program's fixed rows, and the decision's storage it writes.
struct Evaluation {
    typealias Row = ConditionalAccessDecision.Row
    typealias Fixed = DecisionProgram.Fixed
    let program: DecisionProgram
    let fixed: UnsafePointer<UInt64>
    let out: UnsafeMutablePointer<UInt64>
    let words: Int
    var summary = ConditionalAccessDecision.Summary()
    /// The authentication strengths (the first 64) already checked for this sign-in, and those it meets.
    private var strengthsChecked: UInt64 = 0, strengthsMet: UInt64 = 0

    init(program: DecisionProgram, fixed: UnsafePointer<UInt64>, out: UnsafeMutablePointer<UInt64>) {
        self.program = program
        self.fixed = fixed
        self.out = out
        words = program.words
    }

    @inline(__always) func fixed(_ row: Int) -> UnsafePointer<UInt64> { fixed + row * words }
    @inline(__always) func row(_ row: Int) -> UnsafeMutablePointer<UInt64> { out + row * words }

    /// The controls of every policy that applies: its result, what is unmet, and whether it blocks.
    mutating func applyControls(_ facts: SignInFacts) {
        let applied = row(Row.applied), blocking = row(Row.blocking), needs = row(Row.needs)
        let invalid = fixed(Fixed.invalid), enabled = fixed(Fixed.enabled)
        let results = out + Row.count * words, unmet = results + program.count
        // A policy that cannot be read at all fails closed for every sign-in.
        for w in 0..<words {
            blocking[w] = invalid[w] & enabled[w]
            needs[w] = 0
            summary.failures += blocking[w].nonzeroBitCount
        }
        if case .servicePrincipal = facts.subject { summary.servicePrincipal = true }
        let methods = facts.methods
        var latest: Date?
        var lookedForLatest = false
        for w in 0..<words {
            var remaining = applied[w]
            while remaining != 0 {
                let i = w << 6 | remaining.trailingZeroBitCount
                remaining &= remaining - 1
                let controls = program.controls[i]
                var result: AppliedPolicyResult
                var missing: UInt64 = 0
                var blocks = false
                if controls.unevaluable || controls.block {
                    result = controls.enabled ? .failure : .reportOnlyFailure
                    blocks = true
                } else {
                    if controls.controlCount > 0 {
                        var count = 0
                        for k in 0..<controls.controlCount
                        where !isMet(program.grantControls[controls.firstControl + k], facts: facts, methods: methods) {
                            missing |= 1 << UInt64(k)
                            count += 1
                        }
                        if controls.anyOf && count < controls.controlCount { missing = 0 }
                    }
                    if let frequency = controls.frequency, case .user = facts.subject {
                        if !lookedForLatest {
                            latest = facts.methodsUsed.lazy.map { $0.at }.max()
                            lookedForLatest = true
                        }
                        // Never authenticated, or longer ago than the frequency allows.
                        if latest.map({ facts.now.timeIntervalSince($0) > frequency }) ?? true {
                            missing |= ConditionalAccessDecision.reauthentication
                        }
                    }
                    (result, blocks) = Self.result(controls, missing: &missing)
                }
                results[i] = result.code
                unmet[i] = missing
                guard controls.enabled else { continue }
                if result == .failure {
                    summary.failures += 1
                    if blocks { blocking[w] |= 1 << UInt64(i & 63) } else { needs[w] |= 1 << UInt64(i & 63) }
                } else if result == .success {
                    summary.successes += 1
                    if controls.setsPersistentBrowser { summary.persistentBrowser = i }
                }
            }
        }
        var anyBlocking = false, anyNeeds = false
        for w in 0..<words {
            anyBlocking = anyBlocking || blocking[w] != 0
            anyNeeds = anyNeeds || needs[w] != 0
        }
        summary.kind = anyBlocking || (anyNeeds && summary.servicePrincipal) ? .block : anyNeeds ? .needs : .allow
    }

    /// The result of a policy that applied, from the controls it still misses (narrowed to the ones a user can meet
    /// for an `OR` that is not a dead end); whether nothing the user does can satisfy it.
    static func result(_ controls: DecisionProgram.Controls, missing: inout UInt64) -> (AppliedPolicyResult, blocks: Bool) {
        guard missing != 0 else { return (controls.enabled ? .success : .reportOnlySuccess, false) }
        // Never met: an AND with an unsupported control, or an OR whose every control is unsupported.
        let grant = missing & ~ConditionalAccessDecision.reauthentication
        let blocks = grant != 0
            && (controls.anyOf ? grant & ~controls.unsupported == 0 : grant & controls.unsupported != 0)
        if controls.anyOf, !blocks { missing &= ~controls.unsupported }
        if controls.enabled { return (.failure, blocks) }
        let interactive = controls.anyOf ? grant == 0 || grant & controls.interactive != 0 : grant & ~controls.interactive == 0
        return (interactive && !blocks ? .reportOnlyInterrupted : .reportOnlyFailure, blocks)
    }

    mutating func isMet(_ control: DecisionProgram.Control, facts: SignInFacts, methods: AuthenticationMethodModes) -> Bool {
        switch control {
        case .strength(let number):
            let bit: UInt64 = number < 64 ? 1 << UInt64(number) : 0
            if strengthsChecked & bit != 0 { return strengthsMet & bit != 0 }
            let met = satisfies(strength: number, facts: facts, methods: methods)
            strengthsChecked |= bit
            if met { strengthsMet |= bit }
            return met
        case .compliantDevice: return facts.device?.isCompliant ?? false
        case .hybridJoinedDevice: return facts.device?.isHybridJoined ?? false
        case .never: return false
        }
    }

    private func satisfies(strength number: Int, facts: SignInFacts, methods: AuthenticationMethodModes) -> Bool {
        let strength = program.strengthRanges[number]
        if strength.restricted { return program.strengths[number].isSatisfied(by: facts.methodsUsed) }
        for k in strength.first..<strength.first + strength.count
        where methods.isSuperset(of: AuthenticationMethodModes(rawValue: program.combinations[k])) {
            return true
        }
        return false
    }
}
