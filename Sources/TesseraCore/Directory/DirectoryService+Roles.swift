extension DirectoryService {
    /// The directory roles (template ids) `principal` holds at the tenant scope: assigned to it, or to a
    /// role-assignable group it is in (directly or through nested groups).
    public func directoryRoles(tenant: String, principal: String) async throws -> Set<String> {
        try await store.read { tx in try await directoryRoles(tenant: tenant, principal: principal, tx: tx) }
    }

    /// The same, inside a transaction the caller holds.
    public func directoryRoles(tenant: String, principal: String, tx: any DirectoryReader) async throws -> Set<String> {
        try await directoryRoles(tenant: tenant, principal: principal, groups: try await transitiveGroups(tenant: tenant, of: principal, tx: tx),
                                 tx: tx)
    }

    /// The same for a principal whose transitive groups the caller has already read.
    public func directoryRoles(tenant: String, principal: String, groups: [String], tx: any DirectoryReader) async throws -> Set<String> {
        let principals = [principal] + groups
        let assignments = try await tx.query(ObjectQuery(
            tenant: tenant, kinds: [.roleAssignment],
            filter: .in(PropertyPath(["principalId"]), principals.map { .string($0) })))
        return Set(assignments.compactMap { assignment -> String? in
            guard assignment.body["directoryScopeId"]?.stringValue ?? "/" == "/" else { return nil }
            return assignment.body["roleDefinitionId"]?.stringValue
        })
    }
}
