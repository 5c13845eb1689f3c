/// A numbering of every user, group, directory role and application the tenant's policies name, made when they are
/// compiled: a decision looks the sign-in's ids up once, and then tests each policy's targets as bits and small
/// integers instead of hashing ids policy by policy.
struct DirectoryIndex: Sendable {
    private var users: [String: Int] = [:]
    private var groups: [String: Int] = [:]
    private var roles: [String: Int] = [:]
    private var count = 0
    private var applications: [String: Int] = [:]

    /// Numbers the ids a user condition names and records their numbers in it.
    mutating func intern(_ principals: inout CompiledPolicy.Principals) {
        func number(_ id: String, in table: inout [String: Int]) -> Int {
            if let known = table[id] { return known }
            defer { count += 1 }
            table[id] = count
            return count
        }
        principals.indexes = principals.users.map { number($0, in: &users) }
            + principals.groups.map { number($0, in: &groups) } + principals.roles.map { number($0, in: &roles) }
    }

    /// Numbers the applications an application condition names (keywords already expanded).
    mutating func intern(_ condition: inout CompiledPolicy.Applications) {
        func number(_ id: String) -> Int {
            if let known = applications[id] { return known }
            applications[id] = applications.count
            return applications.count - 1
        }
        condition.includeNumbers = condition.include.map(number)
        condition.excludeNumbers = condition.exclude.map(number)
    }

    /// The numbers of the sign-in's ids: those a user is, is a member of or holds (none for a service principal), and
    /// the requested application's.
    func bits(for facts: SignInFacts) -> SubjectBits {
        var application: Int?
        if case .application(let appID) = facts.target { application = applications[appID] }
        guard case .user(let id, let groupIDs, let roleIDs, _) = facts.subject, count > 0 else {
            return SubjectBits(words: [], application: application)
        }
        var bits = SubjectBits(words: Array(repeating: 0, count: (count + 63) / 64), application: application)
        if let user = users[id] { bits.insert(user) }
        // Walk whichever side is smaller: the user's groups, or the groups the policies name.
        if groupIDs.count <= groups.count {
            for group in groupIDs { if let number = groups[group] { bits.insert(number) } }
        } else {
            for (group, number) in groups where groupIDs.contains(group) { bits.insert(number) }
        }
        for role in roleIDs { if let number = roles[role] { bits.insert(number) } }
        return bits
    }
}

/// A sign-in's `DirectoryIndex` numbers.
struct SubjectBits: Sendable {
    /// The set of user, group and role numbers.
    var words: [UInt64]
    /// The requested application's number; nil when no policy names it.
    var application: Int?

    mutating func insert(_ number: Int) { words[number >> 6] |= 1 << UInt64(number & 63) }

    func contains(_ number: Int) -> Bool { number >> 6 < words.count && words[number >> 6] & (1 << UInt64(number & 63)) != 0 }
}
