/// Matching a sign-in's facts against a policy's conditions. A condition the policy does not configure matches.
extension ConditionalAccessEngine.Compiled {
    /// The configured conditions the sign-in matched, and those it did not.
    func conditions(_ facts: SignInFacts, subject: SubjectBits, trustedRanges: IPAddressRangeSet)
        -> (satisfied: ConditionalAccessConditions, notSatisfied: ConditionalAccessConditions)
    {
        var satisfied = ConditionalAccessConditions(rawValue: 0)
        var notSatisfied = ConditionalAccessConditions(rawValue: 0)
        func check(_ condition: ConditionalAccessConditions, _ matches: Bool) {
            if matches { satisfied.insert(condition) } else { notSatisfied.insert(condition) }
        }
        switch facts.subject {
        case .user(_, _, _, let external):
            let included = policy.includeUsers.contains(subject, external: external)
            let excluded = policy.excludeUsers.contains(subject, external: external)
            check(.users, included && !excluded)
        case .servicePrincipal(let id):
            if let principals = policy.servicePrincipals {
                check(.workloadIdentities, (principals.all || principals.include.contains(id)) && !principals.exclude.contains(id))
            } else {
                check(.workloadIdentities, false)
            }
            if let levels = policy.servicePrincipalRisk { check(.servicePrincipalRisk, levels.contains(facts.servicePrincipalRisk)) }
        }
        switch facts.target {
        case .application:
            let number = subject.application
            let byApp = (policy.applications.includeAll || number.map(policy.applications.includeNumbers.contains) ?? false)
                && !(number.map(policy.applications.excludeNumbers.contains) ?? false)
            let byContext = !policy.applications.authenticationContexts.isEmpty
                && !policy.applications.authenticationContexts.isDisjoint(with: facts.authenticationContexts)
            let targetsApps = policy.applications.includeAll || !policy.applications.include.isEmpty
            let condition: ConditionalAccessConditions =
                byContext || (!targetsApps && !policy.applications.authenticationContexts.isEmpty) ? .authenticationContext
                : !targetsApps && !policy.applications.userActions.isEmpty ? .userActions : .application
            check(condition, byApp || byContext)
        case .userAction(let action):
            check(.userActions, policy.applications.userActions.contains(action))
        }
        if let platforms = policy.platforms {
            let platform = facts.platform
            let included = platforms.includeAll || platform.map(platforms.include.contains) ?? false
            let excluded = platform.map(platforms.exclude.contains) ?? false
            check(.devicePlatform, included && !excluded)
        }
        if let locations = policy.locations {
            let ip = facts.clientIP, country = facts.country
            let trusted = ip.map(trustedRanges.contains) ?? false
            let included = locations.includeAll || (locations.includeTrusted && trusted)
                || locations.include.contains { $0.contains(ip: ip, country: country) }
            let excluded = locations.excludeAll || (locations.excludeTrusted && trusted)
                || locations.exclude.contains { $0.contains(ip: ip, country: country) }
            check(.location, included && !excluded)
        }
        if let types = policy.clientAppTypes { check(.clientApps, types.contains(facts.clientAppType)) }
        if let device = policy.device { check(.devices, device.filter.matches(facts.device) == device.include) }
        if case .user = facts.subject {
            if let levels = policy.userRisk { check(.userRisk, levels.contains(facts.userRisk)) }
            if let levels = policy.insiderRisk { check(.insiderRisk, facts.insiderRisk.map { levels.contains($0.lowercased()) } ?? false) }
        }
        if let levels = policy.signInRisk { check(.signInRisk, levels.contains(facts.signInRisk)) }
        if let methods = policy.transferMethods {
            check(.authenticationFlow, facts.transferMethod.map { methods.contains($0.lowercased()) } ?? false)
        }
        return (satisfied, notSatisfied)
    }
}
