import Foundation
import TesseraCore

extension RelationHandler {
    /// `/devices/{id}/registeredOwners`: the users who own the device (its `owners` links), as Graph's v1.0 names them.
    /// Listing needs Device.Read.All (or higher); adding (`POST …/$ref` with a user's `@odata.id`) and removing
    /// (`DELETE …/{userId}/$ref`) are delegated only, as in Entra, by a signed-in user allowed to write devices. Only a
    /// user can be a registered owner.
    func registeredOwners(tail: [String], kinds: [ObjectKind]?) async throws -> APIResponse {
        let isWrite = (tail == ["$ref"] && (method == "POST" || method == "DELETE")) || (tail.count == 2 && tail[1] == "$ref" && method == "DELETE")
        guard isWrite else {
            try caller.require(anyOf: Caller.permissions(for: .device, write: false))
            return try await list(.targets(of: id, relation: "owners"), kinds: kinds ?? [.user], tail: tail)
        }
        guard caller.userID != nil else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: a device's registered owners are changed by a signed-in user (delegated permission), not by an application.")
        }
        try requireWrite()
        if method == "POST" {
            let target = try Self.referenceTarget(try context.request.jsonObject())
            let tenant = self.tenant
            let object = try await app.store.read { tx in try await tx.object(tenant: tenant, id: target) }
            guard let object, object.deletedAt == nil else { throw DirectoryError.notFound(target) }
            guard object.kind == .user else { throw DirectoryError.badRequest("Only a user can be a registered owner of a device.") }
        }
        return try await links("owners", tail: tail, kinds: kinds)
    }
}
