/// A numbering of every user, group and directory role the tenant's policies name, made when they are compiled: a
/// decision looks the subject's id, groups and roles up once, and then tests each policy's targets as bits instead of
/// hashing ids policy by policy.
struct DirectoryIndex: Sendable {
    private var users: [String: Int] = [:]
    private var groups: [String: Int] = [:]
    private var roles: [String: Int] = [:]
    private var count = 0

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

    /// The numbered ids a user is, or is a member of, or holds; empty for a service principal.
    func bits(for subject: SignInFacts.Subject) -> SubjectBits {
        guard case .user(let id, let groupIDs, let roleIDs, _) = subject, count > 0 else { return SubjectBits(words: []) }
        var bits = SubjectBits(words: Array(repeating: 0, count: (count + 63) / 64))
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

/// A set of `DirectoryIndex` numbers.
struct SubjectBits: Sendable {
    var words: [UInt64]

    mutating func insert(_ number: Int) { words[number >> 6] |= 1 << UInt64(number & 63) }

    func contains(_ number: Int) -> Bool { number >> 6 < words.count && words[number >> 6] & (1 << UInt64(number & 63)) != 0 }
}
