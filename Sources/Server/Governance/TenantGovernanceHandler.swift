import TesseraCore

/// `/directory/tenantGovernance`: Microsoft Entra Tenant Governance's collections.
struct TenantGovernanceHandler {
    let context: RequestContext
    let app: TesseraApp

    func handle(_ rest: [String]) async throws -> APIResponse {
        let tail = Array(rest.dropFirst())
        switch rest.first {
        case "governancePolicyTemplates": return try await GovernancePolicyTemplates(context: context, app: app).handle(tail)
        case "governanceRequests": return try await GovernanceRelationships(context: context, app: app).requests(tail)
        case "governanceRelationships": return try await GovernanceRelationships(context: context, app: app).relationships(tail)
        case "relatedTenants": return try await RelatedTenants(context: context, app: app).handle(tail)
        case "governanceInvitations": return try await GovernanceInvitations(context: context, app: app).handle(tail)
        case "settings": return try await GovernanceSettings(context: context, app: app).handle(tail)
        default: throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "tenantGovernance")'.")
        }
    }
}
