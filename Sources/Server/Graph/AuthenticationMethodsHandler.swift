import Foundation
import TesseraCore

/// `/users/{id}/authentication/…`: a user's authentication methods (passkeys so far).
struct AuthenticationMethodsHandler {
    let context: RequestContext
    let app: TesseraApp
    let user: StoredObject

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    static let readPermissions = ["UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"]
    static let writePermissions = ["UserAuthenticationMethod.ReadWrite.All"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        let base = "\(context.base)/$metadata#users('\(user.id)')/authentication"
        switch (rest.first, rest.count) {
        case ("methods"?, 1):
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Methods are added through their own collections.") }
            try context.caller.require(anyOf: Self.readPermissions)
            let methods = try await app.directory.fido2Methods(tenant: tenant, userID: user.id)
            return .json(["@odata.context": .string(base + "/methods"), "value": .array(methods.map(PasskeyRegistration.render))])
        case ("fido2Methods"?, 1):
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                let methods = try await app.directory.fido2Methods(tenant: tenant, userID: user.id)
                return .json(["@odata.context": .string(base + "/fido2Methods"), "value": .array(methods.map(PasskeyRegistration.render))])
            case "POST":
                try context.caller.require(anyOf: Self.writePermissions)
                let created = try await PasskeyRegistration(app: app, tenant: tenant).register(
                    user: user, body: try context.request.jsonObject(), baseURL: context.request.baseURL, actor: context.caller.actor)
                guard case .object(var body) = PasskeyRegistration.render(created) else { throw DirectoryError(.internalError, "render") }
                body["@odata.context"] = .string(base + "/fido2Methods/$entity")
                return .json(.object(body), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "fido2Methods supports GET and POST.")
            }
        case ("fido2Methods"?, 2) where rest[1] == "creationOptions" || rest[1].hasPrefix("creationOptions("):
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "creationOptions is a function: use GET.") }
            try context.caller.require(anyOf: Self.writePermissions)
            var options = try await PasskeyRegistration(app: app, tenant: tenant).creationOptions(user: user, baseURL: context.request.baseURL)
            if case .object(var object) = options {
                object["@odata.context"] = .string("\(context.base)/$metadata#microsoft.graph.webauthnCredentialCreationOptions")
                options = .object(object)
            }
            return .json(options)
        case ("fido2Methods"?, 2):
            let id = rest[1].lowercased()
            guard let found = try await app.directory.fido2Methods(tenant: tenant, userID: user.id).first(where: { $0.id == id }) else {
                throw DirectoryError.notFound(rest[1])
            }
            switch method {
            case "GET":
                try context.caller.require(anyOf: Self.readPermissions)
                return .json(PasskeyRegistration.render(found))
            case "DELETE":
                try context.caller.require(anyOf: Self.writePermissions)
                try await app.directory.deleteFido2Method(tenant: tenant, userID: user.id, methodID: found.id, actor: context.caller.actor)
                return .noContent
            default:
                throw DirectoryError(.methodNotAllowed, "A passkey supports GET and DELETE.")
            }
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "authentication")'.")
        }
    }
}
