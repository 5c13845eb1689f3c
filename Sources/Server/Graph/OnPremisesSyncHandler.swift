import Sync
import TesseraCore

/// `/directory/onPremisesSynchronization`: the tenant's sync switches (`features`) and accidental-deletion
/// prevention (`configuration`), one object per tenant whose id is the tenant id, as in Entra.
struct OnPremisesSyncHandler {
    let context: RequestContext
    let app: TesseraApp

    static let readPermissions = ["OnPremDirectorySynchronization.Read.All", "OnPremDirectorySynchronization.ReadWrite.All"]
    static let writePermissions = ["OnPremDirectorySynchronization.ReadWrite.All"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        let tenant = context.tenant, method = context.request.method
        let base = "\(context.base)/$metadata#directory/onPremisesSynchronization"
        if rest.isEmpty {
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Use GET; change the settings with PATCH on /directory/onPremisesSynchronization/{id}.") }
            try context.caller.require(anyOf: Self.readPermissions)
            return .json(["@odata.context": .string(base), "value": [try await render()]])
        }
        guard rest.count == 1, rest[0].lowercased() == tenant.lowercased() else { throw DirectoryError.notFound(rest.joined(separator: "/")) }
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            guard case .object(var body) = try await render() else { throw DirectoryError(.internalError, "render") }
            body["@odata.context"] = .string(base + "/$entity")
            return .json(.object(body))
        case "PATCH":
            // Entra: the permission, and for a signed-in user the Global Administrator role.
            try context.caller.require(anyOf: Self.writePermissions)
            if context.caller.userID != nil, !context.caller.directoryRoles.contains(BuiltInRoles.globalAdministrator) {
                throw DirectoryError(.accessDenied, "Only a Global Administrator may change directory synchronization settings.")
            }
            let patch = try context.request.jsonObject()
            try GraphValidator.validate(patch, entity: "onPremisesDirectorySynchronization")
            for key in patch.keys where key != "features" && key != "configuration" && !key.hasPrefix("@odata") {
                throw DirectoryError.badRequest("Property '\(key)' is read-only and cannot be set.")
            }
            // One read-modify-write, the setting locked from the read to the commit: a change another node makes at once
            // (a run's record, a connector added or removed) is kept, and the threshold's bound is checked against the
            // prevention type as stored then.
            try await SyncSettings.update(tenant: tenant, store: app.store) { settings in
                for (name, value) in patch["features"]?.objectValue ?? [:] {
                    guard let flag = value.boolValue else { throw DirectoryError.badRequest("Property 'features.\(name)' cannot be null.") }
                    switch name {
                    case "blockSoftMatchEnabled": settings.features.blockSoftMatchEnabled = flag
                    case "blockCloudObjectTakeoverThroughHardMatchEnabled": settings.features.blockCloudObjectTakeoverThroughHardMatchEnabled = flag
                    case "softMatchOnUpnEnabled": settings.features.softMatchOnUpnEnabled = flag
                    case "allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled": settings.features.allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled = flag
                    default: settings.otherFeatures[name] = .bool(flag)
                    }
                }
                if let prevention = patch["configuration"]?["accidentalDeletionPrevention"], prevention != .null {
                    if let type = prevention["synchronizationPreventionType"]?.stringValue {
                        guard ["disabled", "enabledForCount", "enabledForPercentage"].contains(type) else {
                            throw DirectoryError.badRequest("Invalid value '\(type)' for synchronizationPreventionType.")
                        }
                        settings.deletionPreventionType = type
                    }
                    if let threshold = prevention["alertThreshold"]?.intValue {
                        let limit = settings.deletionPreventionType == "enabledForPercentage" ? 100 : Int64(Int32.max)
                        guard (1...limit).contains(threshold) else {
                            throw DirectoryError.badRequest("alertThreshold must be between 1 and \(limit).")
                        }
                        settings.deletionThreshold = Int(threshold)
                    }
                }
            }
            try await app.directory.recordEvent(tenant: tenant, objectId: tenant, kind: .organization,
                                                activity: "Update directory synchronization settings", actor: context.caller.actor,
                                                details: ["modified": .object(patch)])
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "Use GET or PATCH.")
        }
    }

    func render() async throws -> JSONValue {
        let settings = try await SyncSettings.load(tenant: context.tenant, store: app.store)
        var features: [String: JSONValue] = [:]
        for name in GraphSchema.complexType("onPremisesDirectorySynchronizationFeature")?.properties.keys.sorted() ?? [] { features[name] = false }
        for (name, value) in settings.otherFeatures { features[name] = value }
        let f = settings.features
        features["blockSoftMatchEnabled"] = .bool(f.blockSoftMatchEnabled)
        features["blockCloudObjectTakeoverThroughHardMatchEnabled"] = .bool(f.blockCloudObjectTakeoverThroughHardMatchEnabled)
        features["softMatchOnUpnEnabled"] = .bool(f.softMatchOnUpnEnabled)
        features["allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled"] = .bool(f.allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled)
        return ["id": .string(context.tenant), "features": .object(features),
                "configuration": ["accidentalDeletionPrevention": [
                    "synchronizationPreventionType": .string(settings.deletionPreventionType),
                    "alertThreshold": .int(Int64(settings.deletionThreshold))]]]
    }
}
