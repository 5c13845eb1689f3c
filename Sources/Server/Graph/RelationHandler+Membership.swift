import TesseraCore

/// Graph's membership functions on users, groups, service principals and devices (`getMemberGroups`,
/// `checkMemberGroups`, `getMemberObjects`, `checkMemberObjects`): transitive, as Microsoft documents them; the
/// `…Objects` forms include the directory roles held tenant-wide.
extension RelationHandler {
    static let membershipFunctions: Set<String> = ["getMemberGroups", "checkMemberGroups", "getMemberObjects", "checkMemberObjects"]

    func membershipFunction(_ name: String) async throws -> APIResponse {
        guard method == "POST" else { throw resource.methodNotAllowed() }
        try caller.require(anyOf: Caller.permissions(for: kind, write: false))
        let body = try context.request.jsonObject()
        let tenant = self.tenant, id = self.id, directory = app.directory
        let groups = try await app.store.read { tx in
            let ids = try await directory.transitiveGroups(tenant: tenant, of: id, tx: tx)
            return try await tx.objects(tenant: tenant, ids: ids).filter { $0.kind == .group && $0.deletedAt == nil }
        }
        let includeObjects = name.hasSuffix("Objects")
        var found = groups.map { group in (id: group.id, securityEnabled: group.body["securityEnabled"] == .bool(true)) }
        if includeObjects {
            let roles = try await RolesHandler.heldRoles(by: [id] + groups.map(\.id), tenant: tenant, app: app)
            found += roles.map { (id: $0.templateId, securityEnabled: true) }
        }
        let value: [String]
        if name.hasPrefix("check") {
            let field = includeObjects ? "ids" : "groupIds"
            guard let asked = body[field]?.arrayValue?.compactMap(\.stringValue), !asked.isEmpty, asked.count <= 20 else {
                throw DirectoryError.badRequest("Property '\(field)' is required: 1 to 20 ids.")
            }
            let held = Set(found.map(\.id))
            value = asked.filter { held.contains($0.lowercased()) }
        } else {
            guard let securityOnly = body["securityEnabledOnly"]?.boolValue else {
                throw DirectoryError.badRequest("Property 'securityEnabledOnly' is required.")
            }
            value = found.filter { !securityOnly || $0.securityEnabled }.map(\.id)
        }
        return .json(["@odata.context": .string("\(context.base)/$metadata#Collection(Edm.String)"), "value": .strings(value)])
    }
}
