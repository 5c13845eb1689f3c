/// Matching a sign-in against every policy's conditions at once. For each condition the evaluation builds the set of
/// policies it matched (from the rows of the sign-in's ids, address, platform, client, device and risks) and records,
/// for the policies that configure the condition and can read it, which matched and which did not; a policy applies
/// when it is evaluated and no condition of it failed. A condition a policy does not configure matches.
extension Evaluation {
    mutating func matchConditions(_ facts: SignInFacts) {
        typealias Flag = DecisionProgram.Flag
        let include = row(Row.include), exclude = row(Row.exclude), matched = row(Row.matched)
        let everyPolicy = fixed(Fixed.evaluable)

        switch facts.subject {
        case .user(let id, let groupIDs, _, let external):
            include.copy(from: fixed(Fixed.includeAllUsers), words: words)
            exclude.copy(from: fixed(Fixed.excludeAllUsers), words: words)
            if let number = program.users.find(id) { union(program.userRows, number, include, exclude) }
            // Walk whichever side is smaller: the user's groups, or the groups the policies name.
            let groups = program.groups, groupRows = program.groupRows
            if facts.groups.count <= groups.count {
                facts.groups.forEach { group in
                    if let number = groups.find(bytes: group) { union(groupRows, number, include, exclude) }
                }
            } else {
                for (number, group) in program.groupIDs.enumerated() where groupIDs.contains(group) {
                    union(program.groupRows, number, include, exclude)
                }
            }
            let roles = program.roles, roleRows = program.roleRows
            facts.roles.forEach { role in
                if let number = roles.find(bytes: role) { union(roleRows, number, include, exclude) }
            }
            if let external {
                for rule in program.guestRules where rule.guests.contains(external) {
                    (rule.include ? include : exclude)[rule.policy >> 6] |= 1 << UInt64(rule.policy & 63)
                }
            }
            record(Flag.users, configured: everyPolicy) { include[$0] & ~exclude[$0] }
            clear(Flag.workloadIdentities)
            clear(Flag.servicePrincipalRisk)
        case .servicePrincipal(let id):
            include.copy(from: fixed(Fixed.allServicePrincipals), words: words)
            exclude.clear(words: words)
            if let number = program.servicePrincipals.find(id) { union(program.servicePrincipalRows, number, include, exclude) }
            clear(Flag.users)
            record(Flag.workloadIdentities, configured: everyPolicy) { include[$0] & ~exclude[$0] }
            let level = fixed(Fixed.servicePrincipalRiskLevel + facts.servicePrincipalRisk.index)
            record(Flag.servicePrincipalRisk, configured: fixed(Fixed.servicePrincipalRisk)) { level[$0] }
        }

        switch facts.target {
        case .application(let appID):
            // include, less matched: the policies whose application list takes the app; exclude: those naming an
            // authentication context of the request.
            include.copy(from: fixed(Fixed.includeAllApplications), words: words)
            matched.clear(words: words)
            if let number = program.applications.find(appID) { union(program.applicationRows, number, include, matched) }
            exclude.clear(words: words)
            if program.hasContexts, !facts.authenticationContexts.isEmpty {
                for context in facts.authenticationContexts {
                    if let number = program.contexts[context] { program.contextRows.union(row: number, into: exclude) }
                }
            }
            let targets = fixed(Fixed.targetsApplications), contexts = fixed(Fixed.hasContexts)
            let actions = fixed(Fixed.hasUserActions)
            for w in 0..<words {
                let byApp = include[w] & ~matched[w], byContext = exclude[w]
                // Which condition the policy reports: the context when one matched (or it targets only contexts),
                // user actions when it targets only those, else the application.
                let contextCondition = byContext | (~targets[w] & contexts[w])
                let actionCondition = ~contextCondition & ~targets[w] & actions[w]
                include[w] = contextCondition
                exclude[w] = actionCondition
                matched[w] = byApp | byContext
            }
            record(Flag.authenticationContext, configured: include) { matched[$0] }
            record(Flag.userActions, configured: exclude) { matched[$0] }
            record(Flag.application, configured: { ~include[$0] & ~exclude[$0] }, matching: { matched[$0] })
        case .userAction(let action):
            let taking = fixed(Fixed.userAction + action.index)
            record(Flag.userActions, configured: everyPolicy) { taking[$0] }
            clear(Flag.application)
            clear(Flag.authenticationContext)
        }

        let platform = fixed(Fixed.platform + (facts.platform?.index ?? 6))
        record(Flag.devicePlatform, configured: fixed(Fixed.platforms)) { platform[$0] }

        include.copy(from: fixed(Fixed.includeAllLocations), words: words)
        exclude.copy(from: fixed(Fixed.excludeAllLocations), words: words)
        let locationRows = program.locationRows
        let trusted = program.locations.forEachContaining(ip: facts.clientIP, country: facts.country) { location in
            locationRows.union(row: 2 * location, into: include)
            locationRows.union(row: 2 * location + 1, into: exclude)
        }
        if trusted {
            include.formUnion(fixed(Fixed.includeTrusted), words: words)
            exclude.formUnion(fixed(Fixed.excludeTrusted), words: words)
        }
        record(Flag.location, configured: fixed(Fixed.locations)) { include[$0] & ~exclude[$0] }

        let client = fixed(Fixed.clientApp + facts.clientAppType.index)
        record(Flag.clientApps, configured: fixed(Fixed.clientApps)) { client[$0] }

        matched.clear(words: words)
        for (number, filter) in program.deviceFilters.enumerated() {
            // Include mode applies to the devices the filter matches, exclude mode to the others.
            program.deviceRows.union(row: 2 * number + (filter.matches(facts.device) ? 0 : 1), into: matched)
        }
        record(Flag.devices, configured: fixed(Fixed.devices)) { matched[$0] }

        if case .user = facts.subject {
            let userRisk = fixed(Fixed.userRiskLevel + facts.userRisk.index)
            record(Flag.userRisk, configured: fixed(Fixed.userRisk)) { userRisk[$0] }
            let insider = facts.insiderRisk.flatMap { Self.index(of: $0, in: DecisionProgram.insiderLevels) }
            let insiderLevel = insider.map { fixed(Fixed.insiderRiskLevel + $0) }
            record(Flag.insiderRisk, configured: fixed(Fixed.insiderRisk)) { insiderLevel?[$0] ?? 0 }
        } else {
            clear(Flag.userRisk)
            clear(Flag.insiderRisk)
        }
        let signInRisk = fixed(Fixed.signInRiskLevel + facts.signInRisk.index)
        record(Flag.signInRisk, configured: fixed(Fixed.signInRisk)) { signInRisk[$0] }
        let transfer = facts.transferMethod.flatMap { Self.index(of: $0, in: DecisionProgram.transferMethods) }
        let transferMethod = transfer.map { fixed(Fixed.transferMethod + $0) }
        record(Flag.authenticationFlow, configured: fixed(Fixed.authenticationFlow)) { transferMethod?[$0] ?? 0 }

        // Applied: evaluated, and no condition it can read failed.
        let applied = row(Row.applied)
        for w in 0..<words {
            var failed: UInt64 = 0
            for flag in 0..<Flag.count { failed |= out[Row.notSatisfied(flag) * words + w] }
            applied[w] = everyPolicy[w] & ~failed
        }
    }

    /// Records a condition: of the policies `configured` (and able to read it), those `matching` satisfied it, the
    /// others did not.
    @inline(__always)
    func record(_ flag: Int, configured: UnsafePointer<UInt64>, matching: (Int) -> UInt64) {
        record(flag, configured: { configured[$0] }, matching: matching)
    }

    @inline(__always)
    func record(_ flag: Int, configured: (Int) -> UInt64, matching: (Int) -> UInt64) {
        let satisfied = row(Row.satisfied(flag)), notSatisfied = row(Row.notSatisfied(flag))
        let readable = fixed(Fixed.readable + flag)
        for w in 0..<words {
            let concerned = configured(w) & readable[w], matches = matching(w)
            satisfied[w] = concerned & matches
            notSatisfied[w] = concerned & ~matches
        }
    }

    @inline(__always)
    func record(_ flag: Int, configured: UnsafeMutablePointer<UInt64>, matching: (Int) -> UInt64) {
        record(flag, configured: UnsafePointer(configured), matching: matching)
    }

    /// A condition no policy is asked about for this sign-in.
    func clear(_ flag: Int) {
        row(Row.satisfied(flag)).clear(words: words)
        row(Row.notSatisfied(flag)).clear(words: words)
    }

    /// The policies that include the id numbered `number` join `include`, those that exclude it `exclude`.
    @inline(__always)
    func union(_ rows: FrozenRows, _ number: Int, _ include: UnsafeMutablePointer<UInt64>, _ exclude: UnsafeMutablePointer<UInt64>) {
        rows.union(row: 2 * number, into: include)
        rows.union(row: 2 * number + 1, into: exclude)
    }

    /// The position of `value` in `names`, ignoring ASCII case (the names are lowercase), without allocating.
    static func index(of value: String, in names: [String]) -> Int? {
        names.firstIndex { name in
            name.utf8.count == value.utf8.count
                && zip(name.utf8, value.utf8).allSatisfy { $0 == ($1 >= 65 && $1 <= 90 ? $1 + 32 : $1) }
        }
    }
}
