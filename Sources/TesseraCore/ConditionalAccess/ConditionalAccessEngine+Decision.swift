import Foundation

/// Deciding a sign-in: every policy evaluated in turn, then the enforced results combined.
extension ConditionalAccessEngine {
    /// Entra's tolerance for "every time" sign-in frequency: an authentication this recent counts as this one.
    static let everyTimeTolerance = 300.0

    /// The decision for a sign-in, with each policy's result and reasons.
    public func decide(_ facts: SignInFacts) -> ConditionalAccessDecision {
        let methods = facts.methods
        let subject = directory.bits(for: facts)
        var applied: [AppliedPolicy] = []
        applied.reserveCapacity(policies.count)
        var blocking: [String] = []
        var needs: [ConditionalAccessDecision.RequirementSet] = []
        var persistentBrowser: String?
        for compiled in policies {
            let outcome = compiled.evaluate(facts, subject: subject, methods: methods, trustedRanges: trustedRanges)
            if compiled.policy.state == .enabled {
                switch outcome.result.result {
                case .failure where outcome.blocks:
                    blocking.append(compiled.policy.id)
                case .failure:
                    needs.append(contentsOf: outcome.requirementSets(policyID: compiled.policy.id))
                case .success:
                    if let mode = compiled.policy.persistentBrowser { persistentBrowser = mode }
                default:
                    break
                }
            }
            applied.append(outcome.result)  // the outcome's last use, so its result moves rather than copies
        }
        if case .servicePrincipal = facts.subject, !needs.isEmpty {
            // A workload identity cannot answer a prompt: what it has not met, it never will.
            blocking.append(contentsOf: needs.map(\.policyID))
            needs = []
        }
        let decision: ConditionalAccessDecision.Outcome =
            !blocking.isEmpty ? .block(policyIDs: blocking) : needs.isEmpty ? .allow : .needs(needs)
        return ConditionalAccessDecision(outcome: decision, policies: applied, persistentBrowser: persistentBrowser)
    }
}

extension ConditionalAccessEngine.Compiled {
    struct PolicyOutcome {
        var result: AppliedPolicy
        /// True when nothing the user does can satisfy the policy (block, fail closed, unsupported controls).
        var blocks = false
        var anyOf = false

        /// The grant controls still missing (any one of them for `OR`), and re-authentication on its own.
        func requirementSets(policyID: String) -> [ConditionalAccessDecision.RequirementSet] {
            let grant = result.unmetRequirements.filter { $0 != .reauthentication }
            var sets: [ConditionalAccessDecision.RequirementSet] = []
            if !grant.isEmpty { sets.append(.init(policyID: policyID, anyOf: anyOf, requirements: grant)) }
            if result.unmetRequirements.contains(.reauthentication) {
                sets.append(.init(policyID: policyID, anyOf: false, requirements: [.reauthentication]))
            }
            return sets
        }
    }

    /// This policy's result for the sign-in. A method of the shared reference, so it reads the compiled policy in
    /// place instead of copying it.
    func evaluate(_ facts: SignInFacts, subject: SubjectBits, methods: AuthenticationMethodModes,
                  trustedRanges: IPAddressRangeSet) -> PolicyOutcome {
        var result = AppliedPolicy(source: self, result: .notEnabled, conditionsSatisfied: .init(rawValue: 0),
                                   conditionsNotSatisfied: .init(rawValue: 0), applied: false, unmetRequirements: [],
                                   failedClosedBecause: nil)
        let enforced = policy.state == .enabled
        switch policy.state {
        case .disabled: return PolicyOutcome(result: result)
        case .enabled, .reportOnly: break
        }
        if let reason = policy.invalid {
            result.result = enforced ? .failure : .reportOnlyFailure
            result.failedClosedBecause = "The policy cannot be evaluated: \(reason)."
            return PolicyOutcome(result: result, blocks: true)
        }
        var (satisfied, notSatisfied) = conditions(facts, subject: subject, trustedRanges: trustedRanges)
        // A condition the engine cannot read is unknown, neither met nor unmet: it cannot keep the policy from applying.
        satisfied.subtract(policy.unevaluableConditions)
        notSatisfied.subtract(policy.unevaluableConditions)
        result.conditionsSatisfied = satisfied
        result.conditionsNotSatisfied = notSatisfied
        guard notSatisfied.isEmpty else {
            result.result = enforced ? .notApplied : .reportOnlyNotApplied
            return PolicyOutcome(result: result)
        }
        result.applied = true
        if !policy.unevaluable.isEmpty {
            result.result = enforced ? .failure : .reportOnlyFailure
            result.failedClosedBecause = "The policy cannot be evaluated: "
                + policy.unevaluable.map { "\($0.0.names.joined(separator: ",")): \($0.1)" }.joined(separator: "; ") + "."
            return PolicyOutcome(result: result, blocks: true)
        }
        if policy.grant?.block == true {
            result.result = enforced ? .failure : .reportOnlyFailure
            return PolicyOutcome(result: result, blocks: true)
        }
        var unmet: [ConditionalAccessRequirement] = []
        let anyOf = policy.grant?.anyOf ?? false
        if let grant = policy.grant {
            let missing = grant.controls.filter { !isMet($0, facts: facts, methods: methods) }
            if !(grant.anyOf && missing.count < grant.controls.count) { unmet = missing }
        }
        if let frequency = policy.signInFrequency, needsReauthentication(frequency, facts: facts) {
            unmet.append(.reauthentication)
        }
        result.unmetRequirements = unmet
        guard !unmet.isEmpty else {
            result.result = enforced ? .success : .reportOnlySuccess
            return PolicyOutcome(result: result, anyOf: anyOf)
        }
        // Never met: an AND with an unsupported control, or an OR whose every control is unsupported.
        let isUnsupported: (ConditionalAccessRequirement) -> Bool = { if case .unsupported = $0 { true } else { false } }
        let grantUnmet = unmet.filter { $0 != .reauthentication }
        let blocks = !grantUnmet.isEmpty
            && (anyOf ? grantUnmet.allSatisfy(isUnsupported) : grantUnmet.contains(where: isUnsupported))
        if anyOf, !blocks { result.unmetRequirements = unmet.filter { !isUnsupported($0) } }
        if enforced {
            result.result = .failure
        } else {
            let interactive = (anyOf ? grantUnmet.isEmpty || grantUnmet.contains(where: \.isInteractive)
                : grantUnmet.allSatisfy(\.isInteractive))
            result.result = interactive && !blocks ? .reportOnlyInterrupted : .reportOnlyFailure
        }
        return PolicyOutcome(result: result, blocks: blocks, anyOf: anyOf)
    }

    private func isMet(_ requirement: ConditionalAccessRequirement, facts: SignInFacts,
                       methods: AuthenticationMethodModes) -> Bool {
        switch requirement {
        case .authenticationStrength(let strength):
            strength.fido2AllowedAAGUIDs == nil ? strength.isSatisfied(by: methods) : strength.isSatisfied(by: facts.methodsUsed)
        case .compliantDevice: facts.device?.isCompliant ?? false
        case .hybridJoinedDevice: facts.device?.isHybridJoined ?? false
        case .reauthentication, .unsupported: false
        }
    }

    private func needsReauthentication(_ frequency: CompiledPolicy.SignInFrequency, facts: SignInFacts) -> Bool {
        guard case .user = facts.subject else { return false }
        guard let latest = facts.methodsUsed.lazy.map(\.at).max() else { return true }
        let age = facts.now.timeIntervalSince(latest)
        return age > (frequency.seconds ?? ConditionalAccessEngine.everyTimeTolerance)
    }
}
