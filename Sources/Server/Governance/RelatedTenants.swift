import Foundation
import TesseraCore

/// `/directory/tenantGovernance/relatedTenants` (beta, `microsoft.graph.tenantGovernanceServices.relatedTenant`): the
/// tenants this tenant has links with. Entra discovers them from activity and refreshes them on request; Tessera knows
/// its links, so the list is computed from the store at each read (always on: no `enableRelatedTenants`, `refresh`
/// completes at once):
/// - B2B collaboration: guests here linked to a home tenant (inbound) and guests of this tenant's users elsewhere in
///   the deployment (outbound), counted in `b2BRegistrationMetrics.recent`;
/// - the multitenant organization's other tenants, governance relationships (active or asked to terminate) either way,
///   and partners allowed to synchronize users in (`identitySynchronization.userSyncInbound.isSyncAllowed`).
/// Tessera adds `displayName` (for tenants of this deployment) and `relationships`, naming the kinds of link found.
struct RelatedTenants {
    let context: RequestContext
    let app: TesseraApp

    static let readPermissions = ["TenantGovernance-RelatedTenant.Read.All", "TenantGovernance-RelatedTenant.ReadWrite.All"]
    static let writePermissions = ["TenantGovernance-RelatedTenant.ReadWrite.All"]

    /// One related tenant as found: its links, B2B counts and the earliest date a link was made.
    struct Found: Sendable {
        var tenantID: String
        var relationships: Set<String> = []
        var inboundUsers = 0
        var outboundUsers = 0
        var since: String?

        mutating func add(_ kind: String, at date: String?) {
            relationships.insert(kind)
            if let date, !date.isEmpty, since.map({ date < $0 }) ?? true { since = date }
        }
    }

    var metadata: String { "\(context.base)/$metadata#directory/tenantGovernance/relatedTenants" }

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch (context.request.method, rest) {
        case ("GET", []):
            try context.caller.require(anyOf: Self.readPermissions)
            let all = try await Self.find(app: app, tenant: context.tenant)
            var value: [JSONValue] = []
            for found in all { value.append(.object(try await graph(found))) }
            return .json(["@odata.context": .string(metadata), "value": .array(value)])
        case ("GET", ["refreshStatus"]), ("GET", ["microsoft.graph.tenantGovernanceServices.refreshStatus()"]):
            try context.caller.require(anyOf: Self.readPermissions)
            return .json(["@odata.type": "#microsoft.graph.tenantGovernanceServices.relatedTenantsRefreshStatus",
                          "mostRecentRefreshTime": .string(Timestamp.format(app.clock.now)), "mostRecentRefreshRequestStatus": "Completed",
                          "isFirstRefresh": false])
        case ("POST", ["refresh"]), ("POST", ["microsoft.graph.tenantGovernanceServices.refresh"]):
            try context.caller.require(anyOf: Self.writePermissions)
            return .noContent
        case ("GET", _) where rest.count == 1:
            let id = rest[0]
            try context.caller.require(anyOf: Self.readPermissions)
            guard let found = try await Self.find(app: app, tenant: context.tenant).first(where: { $0.tenantID == id.lowercased() }) else {
                throw DirectoryError.notFound(id)
            }
            var body = try await graph(found)
            body["@odata.context"] = .string("\(metadata)/$entity")
            return .json(.object(body))
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "relatedTenants")'.")
        }
    }

    func graph(_ found: Found) async throws -> [String: JSONValue] {
        let now = JSONValue.string(Timestamp.format(app.clock.now))
        let b2b: JSONValue = found.relationships.contains("b2bCollaboration") ? [
            "initial": nil,
            "recent": ["updateDateTime": now, "watermarkDateTime": now, "inboundTotalUsers": .int(Int64(found.inboundUsers)),
                       "outboundTotalUsers": .int(Int64(found.outboundUsers))],
        ] : nil
        return [
            "@odata.type": "#microsoft.graph.tenantGovernanceServices.relatedTenant", "id": .string(found.tenantID),
            "createdDateTime": .optional(found.since), "displayName": .optional(try await app.tenantRecord(found.tenantID)?.name),
            "relationships": .strings(found.relationships.sorted()), "b2BRegistrationMetrics": b2b, "b2BSignInActivityMetrics": nil,
            "appB2BSignInActivityMetrics": nil, "multiTenantApplicationMetrics": nil, "billingMetrics": nil,
        ]
    }

    /// Every tenant `tenant` has a link with, by tenant id.
    static func find(app: TesseraApp, tenant: String) async throws -> [Found] {
        var found: [String: Found] = [:]
        func note(_ id: String, _ kind: String, at date: String?, _ change: (inout Found) -> Void = { _ in }) {
            let id = id.lowercased()
            guard !id.isEmpty, id != tenant.lowercased() else { return }
            var entry = found[id] ?? Found(tenantID: id)
            entry.add(kind, at: date)
            change(&entry)
            found[id] = entry
        }
        let directory = app.directory
        let tenants = try await app.store.read { tx in try await tx.tenants() }
        let (inbound, outbound, relationships) = try await app.store.read { tx in
            // B2B inbound: this tenant's guests and their home tenants (a provider's user names its tid); outbound: this
            // tenant's users who are guests in the deployment's other tenants.
            let inbound = try await tx.query(ObjectQuery(tenant: tenant, kinds: [.externalUserLink]))
            var outbound: [(tenant: String, link: StoredObject)] = []
            for other in tenants where other.id != tenant {
                for link in try await tx.query(ObjectQuery(tenant: other.id, kinds: [.externalUserLink]))
                where link.body["homeTenantId"]?.stringValue == tenant && link.body["issuer"]?.stringValue == nil {
                    outbound.append((other.id, link))
                }
            }
            let relationships = try await tx.query(ObjectQuery(tenant: tenant, kinds: [GovernanceRelationships.relationshipKind]))
            return (inbound, outbound, relationships)
        }
        for link in inbound {
            guard let home = link.body["homeTenantId"]?.stringValue else { continue }
            note(home, "b2bCollaboration", at: link.body["redeemedDateTime"]?.stringValue) { $0.inboundUsers += 1 }
        }
        for (other, link) in outbound {
            note(other, "b2bCollaboration", at: link.body["redeemedDateTime"]?.stringValue) { $0.outboundUsers += 1 }
        }
        for relationship in relationships where ["active", "terminationRequested"].contains(relationship.body["status"]?.stringValue ?? "") {
            let governing = relationship.body["governingTenantId"]?.stringValue ?? "", governed = relationship.body["governedTenantId"]?.stringValue ?? ""
            note(governing == tenant ? governed : governing, "tenantGovernance", at: relationship.body["creationDateTime"]?.stringValue)
        }
        if let members = try? await directory.multiTenantOrganizationMembers(tenant: tenant) {
            for member in members where member.state == .active {
                note(member.tenantID, "multiTenantOrganization", at: member.joinedDateTime ?? member.addedDateTime)
            }
        }
        for partner in try await directory.crossTenantPartners(tenant: tenant) where partner.identitySynchronization?.isSyncAllowed == true {
            note(partner.tenantID, "crossTenantSync", at: nil)
        }
        return found.values.sorted { $0.tenantID < $1.tenantID }
    }
}
