import Foundation
import TesseraCore

/// The authenticated caller of a Graph request: its tenant and what its token grants.
struct Caller: Sendable {
    let tenant: String
    let actor: Actor
    /// The Graph permissions this call may use: an application's `roles` claim, or for a user (a delegated token or
    /// the admin center) what both the token's scopes and the user's directory roles allow, as in Entra.
    let roles: Set<String>
    /// For a user: the user, and the scopes the user consented to (`scp`), which `/me` checks.
    var userID: String? = nil
    var scopes: Set<String> = []
    /// For a user: the directory roles (template ids) they hold.
    var directoryRoles: Set<String> = []

    /// Who may change an account that holds a privileged role (Entra: only these, not, say, a User or
    /// Authentication Administrator).
    static let privilegedAccountManagers: Set<String> = [
        BuiltInRoles.globalAdministrator, BuiltInRoles.privilegedAuthenticationAdministrator, BuiltInRoles.privilegedRoleAdministrator,
    ]

    /// Throws `Authorization_RequestDenied` when a signed-in user without a privileged-account role acts on another
    /// user who holds a privileged role (properties, deletion, sessions, authentication methods). Applications are
    /// bound by their permissions alone, as in Entra.
    func requireMayManage(user target: String, app: TesseraApp) async throws {
        guard let me = userID, me != target, directoryRoles.isDisjoint(with: Self.privilegedAccountManagers) else { return }
        let roles = try await app.directory.directoryRoles(tenant: tenant, principal: target)
        if roles.contains(where: { BuiltInRoles.byTemplateId($0)?.isPrivileged == true }) {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation: the user holds a privileged role, which only a Global Administrator, Privileged Authentication Administrator or Privileged Role Administrator may change.")
        }
    }

    /// A signed-in user acting with `scopes` (nil: every scope, as the admin center, a first-party client, has):
    /// the permissions are those scopes narrowed to what the user's directory roles allow.
    static func user(tenant: String, user: StoredObject, scopes: Set<String>?, app: TesseraApp) async throws -> Caller {
        var roles = try await app.directory.directoryRoles(tenant: tenant, principal: user.id)
        var actor = Actor(kind: .user, id: user.id, displayName: user.body["displayName"]?.stringValue ?? "",
                          userPrincipalName: user.body["userPrincipalName"]?.stringValue)
        // An invited user may be its home tenant's administrator here (a governance relationship), asked every time.
        if user.body["creationType"] == "Invitation",
           let grant = try await GovernedAccess(app: app).grant(tenant: tenant, user: user.id) {
            roles.formUnion(grant.roles)
            actor = GovernedAccess.actor(grant, appId: nil)
        }
        let allowed = RolePermissions.graphPermissions(roles: roles)
        return Caller(tenant: tenant, actor: actor, roles: scopes.map { allowed.intersection($0) } ?? allowed, userID: user.id,
                      scopes: scopes ?? allowed.union(["User.Read", "User.ReadWrite", "UserAuthenticationMethod.Read", "UserAuthenticationMethod.ReadWrite"]),
                      directoryRoles: roles)
    }

    /// Throws `Authorization_RequestDenied` unless this is a user's token holding one of `scopes`.
    func requireDelegated(anyOf wanted: [String]) throws(DirectoryError) {
        guard userID != nil, wanted.contains(where: scopes.contains) else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation.")
        }
    }

    /// Checks a bearer token from the `Authorization` header alone: signature with our key, lifetime, audience, and an
    /// issuer this deployment issues (one of its own URLs, for the token's tenant). Cheap enough to run before a
    /// request body is read; a token seen before is not decoded or its signature checked again (``VerifiedTokens``).
    static func verifiedToken(_ header: String?, app: TesseraApp, base: String) throws(DirectoryError) -> JWT {
        guard let header, header.utf8.count > 7, header.utf8.prefix(7).lazy.map({ $0 | 0x20 }).elementsEqual("bearer ".utf8) else {
            throw DirectoryError(.invalidToken, "Access token is empty.")
        }
        // Spaces and tabs around the token trimmed over its bytes: Foundation's trimmingCharacters bridged every token to
        // UTF-16 and back, a tenth of the time of a `POST /users` (found by scripts/bench-post-users' profile).
        var bytes = header.utf8.dropFirst(7)
        while bytes.first == UInt8(ascii: " ") || bytes.first == UInt8(ascii: "\t") { bytes.removeFirst() }
        while bytes.last == UInt8(ascii: " ") || bytes.last == UInt8(ascii: "\t") { bytes.removeLast() }
        let token = String(Substring(bytes))
        guard token.utf8.count <= 16 * 1024, let jwt = app.verifiedTokens.signed(token, keys: app.signingKeys) else { throw DirectoryError(.invalidToken, "IDX14100: JWT is not well formed or its signature is invalid.") }
        let now = app.clock.now.timeIntervalSince1970
        guard let exp = jwt.claims["exp"]?.doubleValue, exp > now - 300 else {
            throw DirectoryError(.invalidToken, "Lifetime validation failed, the token is expired.")
        }
        if let nbf = jwt.claims["nbf"]?.doubleValue, nbf > now + 300 {
            throw DirectoryError(.invalidToken, "Lifetime validation failed, the token is not yet valid.")
        }
        guard jwt.claims["aud"]?.stringValue == "https://graph.microsoft.com" || jwt.claims["aud"]?.stringValue == GraphPermissions.graphAppId else {
            throw DirectoryError(.invalidToken, "Invalid audience.")
        }
        guard let tenant = jwt.claims["tid"]?.stringValue, let issuer = jwt.claims["iss"]?.stringValue,
              app.network.isOwnIssuer(issuer, tenant: tenant, base: base), jwt.claims["oid"]?.stringValue != nil
        else { throw DirectoryError(.invalidToken, "Invalid issuer or tenant.") }
        return jwt
    }

    /// Validates the bearer token (``verifiedToken(_:app:base:)``) and resolves what it grants.
    static func authenticate(_ request: APIRequest, app: TesseraApp) async throws -> Caller {
        let jwt = try request.verifiedToken ?? verifiedToken(request.header("authorization"), app: app, base: request.baseURL)
        let tenant = jwt.claims["tid"]?.stringValue ?? "", oid = jwt.claims["oid"]?.stringValue ?? ""
        if jwt.claims["idtyp"]?.stringValue == "user" {
            // A token of a grant whose authorization code was replayed is revoked (RFC 6749 §4.1.2).
            if let refusal = try await app.revokedGrants.refusal(jwt, app: app) { throw DirectoryError(.invalidToken, refusal) }
            let scopes = Set((jwt.claims["scp"]?.stringValue ?? "").split(separator: " ").map(String.init))
            var roles = try await app.directory.directoryRoles(tenant: tenant, principal: oid)
            var actor = Actor(kind: .user, id: oid, displayName: jwt.claims["name"]?.stringValue ?? "",
                              userPrincipalName: jwt.claims["upn"]?.stringValue, appId: jwt.claims["appid"]?.stringValue)
            // An external user (`idp`) may be its home tenant's administrator here through a governance relationship,
            // asked again at every request as roles are: terminating it takes the roles away from tokens already issued.
            if jwt.claims["idp"] != nil, let grant = try await GovernedAccess(app: app).grant(tenant: tenant, user: oid) {
                roles.formUnion(grant.roles)
                actor = GovernedAccess.actor(grant, appId: actor.appId)
            }
            return Caller(tenant: tenant, actor: actor, roles: RolePermissions.graphPermissions(roles: roles).intersection(scopes),
                          userID: oid, scopes: scopes, directoryRoles: roles)
        }
        let roles = Set(jwt.claims["roles"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let actor = Actor(kind: .application, id: oid, displayName: jwt.claims["app_displayname"]?.stringValue ?? "",
                          appId: jwt.claims["appid"]?.stringValue)
        return Caller(tenant: tenant, actor: actor, roles: roles)
    }

    /// Throws `Authorization_RequestDenied` unless the token holds one of `permissions`.
    func require(anyOf permissions: [String]) throws(DirectoryError) {
        guard permissions.contains(where: roles.contains) else {
            throw DirectoryError(.accessDenied, "Insufficient privileges to complete the operation.")
        }
    }

    /// Read and write permissions per kind of object.
    static func permissions(for kind: ObjectKind, write: Bool) -> [String] {
        let directory = write ? ["Directory.ReadWrite.All"] : ["Directory.Read.All", "Directory.ReadWrite.All"]
        switch kind {
        case .user: return directory + (write ? ["User.ReadWrite.All"] : ["User.Read.All", "User.ReadWrite.All"])
        case .group: return directory + (write ? ["Group.ReadWrite.All"] : ["Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All"])
        case .application, .servicePrincipal:
            return directory + (write ? ["Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"] : ["Application.Read.All", "Application.ReadWrite.All"])
        case .device: return directory + (write ? ["Device.ReadWrite.All"] : ["Device.Read.All", "Device.ReadWrite.All"])
        case .organization: return directory + (write ? ["Organization.ReadWrite.All"] : ["Organization.Read.All", "Organization.ReadWrite.All"])
        case .domain: return directory + (write ? ["Domain.ReadWrite.All"] : ["Domain.Read.All", "Domain.ReadWrite.All"])
        case .appRoleAssignment:
            return write ? ["AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All", "Directory.ReadWrite.All"]
                : directory + ["Application.Read.All", "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "User.Read.All", "User.ReadWrite.All"]
        case .roleAssignment:
            return write ? ["RoleManagement.ReadWrite.Directory"]
                : directory + ["RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory"]
        case .conditionalAccessPolicy, .namedLocation:
            return write ? ["Policy.ReadWrite.ConditionalAccess"] : ["Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"]
        case .oauth2PermissionGrant:
            return write ? ["DelegatedPermissionGrant.ReadWrite.All"] : directory + ["DelegatedPermissionGrant.ReadWrite.All"]
        default: return directory
        }
    }
}
