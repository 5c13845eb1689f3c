import Foundation
import TesseraCore

/// `/directory/tenantGovernance/settings` (beta `tenantGovernanceSetting`, a singleton), as Microsoft documents it:
/// `canReceiveInvitations` (false until an administrator sets it) decides whether other tenants may send this tenant
/// governance invitations; `isRelatedTenantsEnabled` is turned on by `enableRelatedTenants`.
///
/// Tessera's related tenants are computed from its own store rather than discovered from activity, so there is nothing
/// to opt in to: `isRelatedTenantsEnabled` always reads true and `enableRelatedTenants` succeeds without changing it.
struct GovernanceSettings {
    let context: RequestContext
    let app: TesseraApp

    static let kind = ObjectKind(rawValue: "tenantGovernanceSetting")
    static let id = "tenantgovernancesetting"
    static let permissions = (read: ["TenantGovernance-Setting.Read.All", "TenantGovernance-Setting.ReadWrite.All"],
                              write: ["TenantGovernance-Setting.ReadWrite.All"])

    func handle(_ rest: [String]) async throws -> APIResponse {
        switch (context.request.method, rest) {
        case ("GET", []):
            try context.caller.require(anyOf: Self.permissions.read)
            return render(try await Self.canReceiveInvitations(app: app, tenant: context.tenant))
        case ("PATCH", []):
            try context.caller.require(anyOf: Self.permissions.write)
            let body = try context.request.jsonObject()
            for key in body.keys where key != "@odata.type" && key != "canReceiveInvitations" {
                if key == "isRelatedTenantsEnabled" {
                    throw DirectoryError.badRequest("'isRelatedTenantsEnabled' is read-only: call enableRelatedTenants.")
                }
                throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.tenantGovernanceServices.tenantGovernanceSetting'.")
            }
            guard let value = body["canReceiveInvitations"]?.boolValue else {
                throw DirectoryError.badRequest("'canReceiveInvitations' is required and must be a boolean.")
            }
            try await write(canReceiveInvitations: value)
            return render(value)
        case ("POST", ["enableRelatedTenants"]), ("POST", ["microsoft.graph.tenantGovernanceServices.enableRelatedTenants"]):
            try context.caller.require(anyOf: Self.permissions.write)
            return .noContent
        case (_, []):
            throw DirectoryError(.methodNotAllowed, "Read the settings with GET and change them with PATCH.")
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.last ?? "settings")'.")
        }
    }

    func render(_ canReceiveInvitations: Bool) -> APIResponse {
        .json(["@odata.context": .string("\(context.base)/$metadata#directory/tenantGovernance/settings/$entity"),
               "@odata.type": "#microsoft.graph.tenantGovernanceServices.tenantGovernanceSetting",
               "isRelatedTenantsEnabled": true, "canReceiveInvitations": .bool(canReceiveInvitations)])
    }

    /// Keeps the setting, audited.
    func write(canReceiveInvitations value: Bool) async throws {
        let tenant = context.tenant, actor = context.caller.actor, now = app.clock.now
        try await app.store.write { tx in
            let body: [String: JSONValue] = ["canReceiveInvitations": .bool(value)]
            if var existing = try await tx.object(tenant: tenant, id: Self.id) {
                let version = existing.version
                existing.body = body
                existing.version = version + 1
                try await tx.update(existing, expectedVersion: version)
            } else {
                try await tx.insert(StoredObject(tenant: tenant, id: Self.id, kind: Self.kind, body: body))
            }
            _ = try await tx.record(ChangeRecord(
                tenant: tenant, objectId: Self.id, kind: Self.kind, operation: "update", activity: "Update tenant governance settings",
                actor: actor.initiatedBy, at: Timestamp.format(now),
                details: ["modifiedProperties": [["displayName": "canReceiveInvitations", "oldValue": nil, "newValue": .string("\(value)")]]]))
        }
    }

    /// Whether `tenant` accepts governance invitations (false until set, as Microsoft's default).
    static func canReceiveInvitations(app: TesseraApp, tenant: String) async throws -> Bool {
        try await app.store.read { tx in try await canReceiveInvitations(tx, tenant: tenant) }
    }

    static func canReceiveInvitations(_ tx: any DirectoryReader, tenant: String) async throws -> Bool {
        guard let found = try await tx.object(tenant: tenant, id: id), found.kind == kind else { return false }
        return found.body["canReceiveInvitations"]?.boolValue ?? false
    }
}
