public import TesseraCore

/// Which directory user a log's user field names: their userPrincipalName, or their onPremisesSamAccountName alone, as
/// `DOMAIN\name`, or as `name@` another domain (Kerberos and NTLM proxies log these). Case does not matter. A name two
/// users could claim is left unattributed rather than guessed.
public struct UserAttribution: Sendable {
    public struct User: Sendable, Hashable {
        public var id: String
        public var userPrincipalName: String
        public init(id: String, userPrincipalName: String) { self.id = id; self.userPrincipalName = userPrincipalName }
    }

    private var byUPN: [String: User] = [:]
    private var bySam: [String: User?] = [:]

    public init(users: [(user: User, samAccountName: String?)]) {
        for (user, sam) in users {
            byUPN[user.userPrincipalName.lowercased()] = user
            if let sam, !sam.isEmpty {
                let key = sam.lowercased()
                // Two users with one sAMAccountName (two forests): ambiguous.
                bySam[key] = bySam[key] == nil ? user : .some(nil)
            }
        }
    }

    /// Every user of the tenant, read in pages.
    public static func load(tenant: String, store: any DirectoryStore) async throws -> UserAttribution {
        var users: [(User, String?)] = []
        var after: String?
        while true {
            let query = ObjectQuery(tenant: tenant, kinds: [.user], limit: 1000, afterId: after)
            let page = try await store.read { tx in try await tx.query(query) }
            for object in page {
                guard let upn = object.body["userPrincipalName"]?.stringValue else { continue }
                users.append((User(id: object.id, userPrincipalName: upn), object.body["onPremisesSamAccountName"]?.stringValue))
            }
            guard page.count == 1000, let last = page.last else { break }
            after = last.id
        }
        return UserAttribution(users: users)
    }

    /// The user a log's user field names, if exactly one does.
    public func user(named raw: String) -> User? {
        let name = raw.lowercased()
        if let user = byUPN[name] { return user }
        if let slash = name.lastIndex(of: "\\") { return sam(String(name[name.index(after: slash)...])) }
        if let user = sam(name) { return user }
        if let at = name.firstIndex(of: "@") { return sam(String(name[..<at])) }
        return nil
    }

    private func sam(_ name: String) -> User? { bySam[name] ?? nil }
}
