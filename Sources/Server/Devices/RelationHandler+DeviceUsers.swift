import Foundation
import TesseraCore

/// The relations between devices and users that Graph v1.0 documents: a device's `registeredOwners` and
/// `registeredUsers`, and, seen from the user, `ownedDevices` and `registeredDevices`.
extension RelationHandler {
    /// A device's users as Graph names the relation, and the link it is stored as (device → user).
    enum DeviceUserRelation: String {
        case registeredOwners, registeredUsers

        /// Registered owners are the device's `owners` links (what `ownedObjects` lists too).
        var stored: String { self == .registeredOwners ? "owners" : "registeredUsers" }
        var noun: String { self == .registeredOwners ? "registered owner" : "registered user" }
    }

    /// `/devices/{id}/registeredOwners` and `/devices/{id}/registeredUsers` (device-list-registeredowners,
    /// device-post-registeredusers, device-delete-registeredusers, …). Listing needs Device.Read.All (or higher);
    /// adding (`POST …/$ref` with a user's `@odata.id`) and removing (`DELETE …/{userId}/$ref`) are delegated only, as
    /// in Entra, by a signed-in user allowed to write devices. Only a user can be either.
    func deviceUsers(_ relation: DeviceUserRelation, tail: [String], kinds: [ObjectKind]?) async throws -> APIResponse {
        let isWrite = (tail == ["$ref"] && (method == "POST" || method == "DELETE")) || (tail.count == 2 && tail[1] == "$ref" && method == "DELETE")
        guard isWrite else {
            try caller.require(anyOf: Caller.permissions(for: .device, write: false))
            return try await list(.targets(of: id, relation: relation.stored), kinds: kinds ?? [.user], tail: tail)
        }
        guard caller.userID != nil else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: a device's \(relation.noun)s are changed by a signed-in user (delegated permission), not by an application.")
        }
        try requireWrite()
        if method == "POST" {
            let target = try Self.referenceTarget(try context.request.jsonObject())
            let tenant = self.tenant
            let object = try await app.store.read { tx in try await tx.object(tenant: tenant, id: target) }
            guard let object, object.deletedAt == nil else { throw DirectoryError.notFound(target) }
            guard object.kind == .user else { throw DirectoryError.badRequest("Only a user can be a \(relation.noun) of a device.") }
        }
        return try await links(relation.stored, tail: tail, kinds: kinds)
    }

    /// `/users/{id}/ownedDevices` and `/users/{id}/registeredDevices` (user-list-owneddevices,
    /// user-list-registereddevices; also under `/me`): the devices whose registered owner or registered user the user
    /// is, as directoryObjects. User.Read.All (or higher), or User.Read for the signed-in user's own.
    func userDevices(_ relation: DeviceUserRelation, tail: [String], kinds: [ObjectKind]?) async throws -> APIResponse {
        if caller.userID == id {
            do {
                try caller.require(anyOf: Caller.permissions(for: .user, write: false))
            } catch {
                try caller.requireDelegated(anyOf: ["User.Read", "User.ReadWrite"])
            }
        } else {
            try caller.require(anyOf: Caller.permissions(for: .user, write: false))
        }
        return try await list(.sources(of: id, relation: relation.stored), kinds: kinds ?? [.device], tail: tail)
    }
}
