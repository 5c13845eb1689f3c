import Foundation
import TesseraCore

/// `/policies/authenticationMethodsPolicy` and its FIDO2 configuration with passkey profiles.
struct PolicyHandler {
    let api: GraphAPI
    let context: RequestContext

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    static let readPermissions = ["Policy.Read.All", "Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod"]
    static let writePermissions = ["Policy.ReadWrite.AuthenticationMethod"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        if rest == ["authorizationPolicy"] { return try await authorizationPolicy() }
        guard rest.first == "authenticationMethodsPolicy" else {
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "policies")'.")
        }
        let tail = Array(rest.dropFirst())
        switch tail.count {
        case 0:
            guard method == "GET" else {
                throw DirectoryError(.methodNotAllowed, "Update the methods through /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}.")
            }
            try context.caller.require(anyOf: Self.readPermissions)
            let (fido2, modified) = try await api.app.directory.fido2Configuration(tenant: tenant)
            return .json([
                "@odata.context": .string("\(context.base)/$metadata#policies/authenticationMethodsPolicy"),
                "id": "authenticationMethodsPolicy", "displayName": "Authentication Methods Policy",
                "description": "The tenant-wide policy that controls the authentication methods allowed in the tenant, authentication method registration requirements, and self-service password reset settings",
                "lastModifiedDateTime": .optional(modified), "policyVersion": "1.5", "policyMigrationState": "migrationComplete",
                "authenticationMethodConfigurations": [fido2.json],
            ])
        default:
            guard tail[0] == "authenticationMethodConfigurations" else {
                throw DirectoryError(.badRequest, "Resource not found for the segment '\(tail[0])'.")
            }
            if tail.count == 1 {
                guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Methods cannot be added or removed, only configured.") }
                try context.caller.require(anyOf: Self.readPermissions)
                let (fido2, _) = try await api.app.directory.fido2Configuration(tenant: tenant)
                return .json(["@odata.context": .string("\(context.base)/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations"),
                              "value": [fido2.json]])
            }
            guard tail.count == 2, tail[1].lowercased() == "fido2" else { throw DirectoryError.notFound(tail.dropFirst().joined(separator: "/")) }
            return try await fido2()
        }
    }

    /// `/policies/authorizationPolicy` (a singleton in v1.0): GET and PATCH.
    func authorizationPolicy() async throws -> APIResponse {
        let directory = api.app.directory
        switch method {
        case "GET":
            try context.caller.require(anyOf: ["Policy.Read.All", "Policy.ReadWrite.Authorization"])
            var body = try await directory.authorizationPolicy(tenant: tenant)
            body["@odata.context"] = .string("\(context.base)/$metadata#policies/authorizationPolicy/$entity")
            return .json(.object(body))
        case "PATCH":
            try context.caller.require(anyOf: ["Policy.ReadWrite.Authorization"])
            try await directory.updateAuthorizationPolicy(tenant: tenant, patch: try context.request.jsonObject(), actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The authorization policy supports GET and PATCH.")
        }
    }

    func fido2() async throws -> APIResponse {
        let directory = api.app.directory
        switch method {
        case "GET":
            try context.caller.require(anyOf: Self.readPermissions)
            let (fido2, _) = try await directory.fido2Configuration(tenant: tenant)
            var json = fido2.json
            if case .object(var object) = json {
                object["@odata.context"] = .string("\(context.base)/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity")
                json = .object(object)
            }
            return .json(json)
        case "PATCH":
            try context.caller.require(anyOf: Self.writePermissions)
            let patch = try context.request.jsonObject()
            let (current, _) = try await directory.fido2Configuration(tenant: tenant)
            try await directory.replaceFido2Configuration(tenant: tenant, with: try current.patched(with: patch), actor: context.caller.actor)
            return .noContent
        case "DELETE":
            // Graph: reverts the configuration to its defaults.
            try context.caller.require(anyOf: Self.writePermissions)
            try await directory.resetFido2Configuration(tenant: tenant, actor: context.caller.actor)
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "The FIDO2 configuration supports GET, PATCH and DELETE.")
        }
    }
}
