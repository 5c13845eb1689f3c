import Foundation
import TesseraCore

/// `/users/{id}/authentication/…`: a user's authentication methods (passkeys so far).
struct AuthenticationMethodsHandler {
    let context: RequestContext
    let app: TesseraApp
    let user: StoredObject
    /// `/me/authentication`: the signed-in user's own methods, allowed by delegated scopes.
    var isSelf = false

    var tenant: String { context.tenant }
    var method: String { context.request.method }
    static let readPermissions = ["UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"]
    static let writePermissions = ["UserAuthenticationMethod.ReadWrite.All"]
    static let selfReadScopes = ["UserAuthenticationMethod.Read", "UserAuthenticationMethod.ReadWrite"]
    static let selfWriteScopes = ["UserAuthenticationMethod.ReadWrite"]

    func requireRead() throws(DirectoryError) {
        if isSelf { try context.caller.requireDelegated(anyOf: Self.selfReadScopes) } else { try context.caller.require(anyOf: Self.readPermissions) }
    }

    func requireWrite() async throws {
        if isSelf { try context.caller.requireDelegated(anyOf: Self.selfWriteScopes); return }
        try context.caller.require(anyOf: Self.writePermissions)
        try await context.caller.requireMayManage(user: user.id, app: app)
    }

    func handle(_ rest: [String]) async throws -> APIResponse {
        let base = "\(context.base)/$metadata#users('\(user.id)')/authentication"
        switch (rest.first, rest.count) {
        case ("methods"?, 1):
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "Methods are added through their own collections.") }
            try requireRead()
            let methods = try await app.directory.fido2Methods(tenant: tenant, userID: user.id)
            var value = methods.map(PasskeyRegistration.render)
            if let pass = try await app.directory.temporaryAccessPass(tenant: tenant, userID: user.id) { value.append(renderPass(pass)) }
            return .json(["@odata.context": .string(base + "/methods"), "value": .array(value)])
        case ("temporaryAccessPassMethods"?, _) where isSelf && method != "GET":
            throw DirectoryError(.accessDenied, "Users cannot create or delete their own Temporary Access Pass; an administrator does.")
        case ("temporaryAccessPassMethods"?, 1):
            switch method {
            case "GET":
                try requireRead()
                let pass = try await app.directory.temporaryAccessPass(tenant: tenant, userID: user.id)
                return .json(["@odata.context": .string(base + "/temporaryAccessPassMethods"), "value": .array(pass.map { [renderPass($0)] } ?? [])])
            case "POST":
                try await requireWrite()
                let body = try context.request.jsonObject()
                var start: Date?
                var lifetime = DirectoryService.defaultTemporaryAccessPassLifetime
                var once = false
                for (key, value) in body where !key.hasPrefix("@odata") {
                    switch key {
                    case "startDateTime":
                        guard let text = value.stringValue, let date = Timestamp.parse(text) else {
                            throw DirectoryError.badRequest("'startDateTime' must be an ISO 8601 date and time.")
                        }
                        start = date
                    case "lifetimeInMinutes":
                        guard let minutes = value.intValue else { throw DirectoryError.badRequest("'lifetimeInMinutes' must be a whole number.") }
                        lifetime = Int(minutes)
                    case "isUsableOnce":
                        guard let flag = value.boolValue else { throw DirectoryError.badRequest("'isUsableOnce' must be true or false.") }
                        once = flag
                    default:
                        throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'microsoft.graph.temporaryAccessPassAuthenticationMethod'.")
                    }
                }
                let (created, passcode) = try await app.directory.createTemporaryAccessPass(
                    tenant: tenant, userID: user.id, startDateTime: start, lifetimeInMinutes: lifetime, isUsableOnce: once,
                    actor: context.caller.actor)
                guard case .object(var out) = renderPass((created, false)) else { throw DirectoryError(.internalError, "render") }
                out["temporaryAccessPass"] = .string(passcode) // shown this once
                out["@odata.context"] = .string(base + "/temporaryAccessPassMethods/$entity")
                return .json(.object(out), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "temporaryAccessPassMethods supports GET and POST.")
            }
        case ("temporaryAccessPassMethods"?, 2):
            guard let pass = try await app.directory.temporaryAccessPass(tenant: tenant, userID: user.id),
                  pass.method.id == rest[1].lowercased() else {
                throw DirectoryError.notFound(rest[1])
            }
            switch method {
            case "GET":
                try requireRead()
                return .json(renderPass(pass))
            case "DELETE":
                try await requireWrite()
                try await app.directory.deleteTemporaryAccessPass(tenant: tenant, userID: user.id, methodID: pass.method.id,
                                                                  actor: context.caller.actor)
                return .noContent
            default:
                throw DirectoryError(.methodNotAllowed, "A Temporary Access Pass supports GET and DELETE.")
            }
        case ("fido2Methods"?, 1):
            switch method {
            case "GET":
                try requireRead()
                let methods = try await app.directory.fido2Methods(tenant: tenant, userID: user.id)
                return .json(["@odata.context": .string(base + "/fido2Methods"), "value": .array(methods.map(PasskeyRegistration.render))])
            case "POST":
                try await requireWrite()
                let created = try await PasskeyRegistration(app: app, tenant: tenant).register(
                    user: user, body: try context.request.jsonObject(), baseURL: context.request.baseURL, actor: context.caller.actor)
                guard case .object(var body) = PasskeyRegistration.render(created) else { throw DirectoryError(.internalError, "render") }
                body["@odata.context"] = .string(base + "/fido2Methods/$entity")
                return .json(.object(body), status: 201)
            default:
                throw DirectoryError(.methodNotAllowed, "fido2Methods supports GET and POST.")
            }
        case ("fido2Methods"?, 2...3) where rest[1] == "creationOptions":
            // `creationOptions`, the SDKs' `creationOptions()`, or beta's `creationOptions(challengeTimeoutInMinutes=N)`
            // (its key normalised into a third segment). The challenge lives five minutes whatever is asked, as v1.0's.
            if rest.count == 3, !rest[2].isEmpty, !rest[2].hasPrefix("challengeTimeoutInMinutes=") {
                throw DirectoryError.badRequest("creationOptions takes no parameter but 'challengeTimeoutInMinutes'.")
            }
            guard method == "GET" else { throw DirectoryError(.methodNotAllowed, "creationOptions is a function: use GET.") }
            try await requireWrite()
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
                try requireRead()
                return .json(PasskeyRegistration.render(found))
            case "DELETE":
                try await requireWrite()
                try await app.directory.deleteFido2Method(tenant: tenant, userID: user.id, methodID: found.id, actor: context.caller.actor)
                return .noContent
            default:
                throw DirectoryError(.methodNotAllowed, "A passkey supports GET and DELETE.")
            }
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "authentication")'.")
        }
    }

    /// Graph's `temporaryAccessPassAuthenticationMethod` (the passcode itself is never stored, so never shown again).
    func renderPass(_ pass: (method: StoredObject, used: Bool)) -> JSONValue {
        var out = pass.method.body.filter { !$0.key.hasPrefix("_") }
        let usability = app.directory.temporaryAccessPassUsability(pass.method, used: pass.used)
        out["@odata.type"] = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
        out["isUsable"] = .bool(usability.isUsable)
        out["methodUsabilityReason"] = .string(usability.reason)
        out["temporaryAccessPass"] = .null
        return .object(out)
    }
}
