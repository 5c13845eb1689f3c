import Foundation
import TesseraCore

/// `/directory/tenantGovernance/governanceInvitations` (beta `governanceInvitation`): a tenant that wants to be governed
/// invites a tenant of this deployment to govern it (Microsoft's alternative to the governing tenant asking first);
/// the invitation lives 30 days, and only a tenant whose settings allow it (`canReceiveInvitations`) receives one.
/// Create, list, get and delete, as Microsoft documents them. Like requests, each
/// invitation is kept in both tenants and audited in each in one transaction, so the invited tenant sees what it was
/// sent and a third tenant sees nothing.
struct GovernanceInvitations {
    let context: RequestContext
    let app: TesseraApp

    static let kind = ObjectKind(rawValue: "governanceInvitation")
    static let permissions = (read: ["TenantGovernance-Invitation.Read.All", "TenantGovernance-Invitation.ReadWrite.All"],
                              write: ["TenantGovernance-Invitation.ReadWrite.All"])
    /// Microsoft's example: created on the 1st, expiring on the 31st.
    static let lifetime: TimeInterval = 30 * 86_400

    var relationships: GovernanceRelationships { GovernanceRelationships(context: context, app: app) }
    var metadata: String { "\(context.base)/$metadata#directory/tenantGovernance/governanceInvitations" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch (rest.count, context.request.method) {
        case (0, "GET"):
            try context.caller.require(anyOf: Self.permissions.read)
            return try await relationships.list(Self.kind, metadata, type: "governanceInvitation")
        case (1, "GET"):
            try context.caller.require(anyOf: Self.permissions.read)
            return relationships.entity(try await relationships.one(Self.kind, rest[0]).body, metadata, type: "governanceInvitation")
        case (0, "POST"):
            try context.caller.require(anyOf: Self.permissions.write)
            return try await create()
        case (1, "DELETE"):
            try context.caller.require(anyOf: Self.permissions.write)
            try await delete(rest[0])
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "Use GET or POST on governanceInvitations, GET or DELETE on an invitation.")
        }
    }

    /// The governed tenant (the caller's) invites `governingTenantId`.
    func create() async throws -> APIResponse {
        let body = try context.request.jsonObject()
        for key in body.keys where !["@odata.type", "governingTenantId"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' is read-only or does not exist on type 'governanceInvitation'.")
        }
        guard let governingID = body["governingTenantId"]?.stringValue?.lowercased(), Identifier.isGUID(governingID) else {
            throw DirectoryError.badRequest("'governingTenantId' is required and must be a tenant id.")
        }
        let governedID = context.tenant
        guard governingID != governedID else { throw DirectoryError.badRequest("A tenant cannot invite itself to govern it.") }
        let (governing, governed) = try await app.store.read { tx in (try await tx.tenant(governingID), try await tx.tenant(governedID)) }
        guard let governing, governing.id == governingID else {
            throw DirectoryError.badRequest("No tenant '\(governingID)' of this deployment can be invited to govern this tenant.")
        }
        guard let governed else { throw DirectoryError.notFound(governedID) }
        let now = app.clock.now, id = Identifier.makeTimeOrdered(at: now)
        let invitation: [String: JSONValue] = [
            "id": .string(id), "governingTenantId": .string(governing.id), "governingTenantName": .string(governing.name),
            "governedTenantId": .string(governed.id), "governedTenantName": .string(governed.name),
            "createdDateTime": .string(Timestamp.format(now)), "expirationDateTime": .string(Timestamp.format(now.addingTimeInterval(Self.lifetime))),
        ]
        let actor = context.caller.actor, address = context.request.clientAddress
        try await app.store.write { tx in
            // The invited tenant receives invitations only once its settings say so (Microsoft's default: it does not).
            guard try await GovernanceSettings.canReceiveInvitations(tx, tenant: governingID) else {
                throw DirectoryError(.accessDenied, "Tenant \(governingID) does not receive governance invitations: its tenant governance settings' canReceiveInvitations is false.")
            }
            // One unexpired invitation a pair of tenants.
            let open = try await tx.query(ObjectQuery(tenant: governedID, kinds: [Self.kind])).contains {
                $0.body["governingTenantId"]?.stringValue == governingID
                    && ($0.body["expirationDateTime"]?.stringValue.flatMap(Timestamp.parse) ?? .distantPast) > now
            }
            guard !open else { throw DirectoryError(.conflict, "Tenant \(governingID) already has an open invitation from this tenant.") }
            try await GovernanceRelationships.writeBoth(tx, id: id, kind: Self.kind, body: invitation, tenants: [governedID, governingID])
            try await GovernanceRelationships.audit(tx, tenants: [governedID, governingID], objectId: id, kind: Self.kind, operation: "create",
                                                    activity: "Create governance invitation", actor: actor, address: address,
                                                    actingTenant: governedID, now: now)
        }
        var response = relationships.entity(invitation, metadata, type: "governanceInvitation")
        response.status = 201
        return response
    }

    /// Either tenant withdraws (or declines) the invitation: gone from both.
    func delete(_ id: String) async throws {
        let invitation = try await relationships.one(Self.kind, id)
        let tenants = [invitation.body["governedTenantId"]?.stringValue, invitation.body["governingTenantId"]?.stringValue].compactMap { $0 }
        let actor = context.caller.actor, address = context.request.clientAddress, acting = context.tenant, now = app.clock.now
        try await app.store.write { tx in
            for tenant in tenants where try await tx.object(tenant: tenant, id: invitation.id) != nil {
                try await tx.purge(tenant: tenant, id: invitation.id)
            }
            try await GovernanceRelationships.audit(tx, tenants: tenants, objectId: invitation.id, kind: Self.kind, operation: "delete",
                                                    activity: "Delete governance invitation", actor: actor, address: address,
                                                    actingTenant: acting, now: now)
        }
    }
}
