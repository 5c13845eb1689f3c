import Foundation
import TesseraCore
import WebAuthn

/// Delegated access comes from consent, as in Entra: an app acts for a signed-in user only with the Microsoft Graph
/// scopes granted to it in `oauth2PermissionGrants`, for everyone (admin consent, `AllPrincipals`) or for that user
/// (`Principal`). A user may consent for themselves to the scopes that need no administrator, while the tenant's
/// authorization policy allows user consent; an administrator may also consent for the organisation.
struct Consent {
    let app: TesseraApp
    let tenant: TenantRecord

    /// OpenID Connect's own scopes: they shape the ID token and need no grant. `address` and `phone` (Core §5.4) are
    /// ignored, as Core §3.1.2.1 says of scopes not understood: Tessera keeps neither claim, and they are not Graph's.
    static let openIDScopes: Set<String> = ["openid", "profile", "email", "offline_access", "address", "phone"]
    /// Microsoft Graph delegated scopes a user may consent to without an administrator (Microsoft's permissions
    /// reference marks these "Admin consent required: No").
    static let userConsentable: Set<String> = ["User.Read", "User.ReadWrite", "User.ReadBasic.All", "People.Read", "Calendars.Read",
                                               "Mail.Read", "Files.Read", "Contacts.Read", "Tasks.Read"]
    /// Directory roles that may consent for the organisation (Entra: Global, Privileged Role, Cloud Application and
    /// Application Administrators).
    static let consentAdministrators: Set<String> = [
        BuiltInRoles.globalAdministrator, BuiltInRoles.privilegedRoleAdministrator,
        BuiltInRoles.cloudApplicationAdministrator, BuiltInRoles.applicationAdministrator,
    ]

    /// The Graph scopes a request names: `https://graph.microsoft.com/X` is `X`; `.default` is "whatever is granted".
    static func graphScopes(_ scope: String) -> (scopes: Set<String>, wantsDefault: Bool) {
        var scopes = Set<String>(), wantsDefault = false
        for item in scope.split(separator: " ").map(String.init) where !openIDScopes.contains(item) {
            let name = item.hasPrefix("https://graph.microsoft.com/") ? String(item.dropFirst("https://graph.microsoft.com/".count)) : item
            if name == ".default" { wantsDefault = true } else if !name.isEmpty { scopes.insert(name) }
        }
        return (scopes, wantsDefault)
    }

    /// The client's service principal id and Microsoft Graph's, when both exist.
    func principals(clientID: String) async throws -> (client: String?, graph: String?) {
        let tenantID = tenant.id
        return try await app.store.read { tx in
            (try await tx.holder(tenant: tenantID, key: UniqueKey("servicePrincipal:appId", clientID)),
             try await tx.holder(tenant: tenantID, key: UniqueKey("servicePrincipal:appId", GraphPermissions.graphAppId)))
        }
    }

    /// The Graph scopes granted to `clientID` for `userID`: its admin consent and the user's own. Asked at authorize
    /// and again for the tokens, so kept as applications are (`SignInCache`: a revoked grant written here is seen at
    /// once, one written on another node within `TenantCache.maxAge`).
    func granted(clientID: String, userID: String) async throws -> Set<String> {
        let tenantID = tenant.id
        return try await app.consentCache.value("\(tenantID)|\(clientID)|\(userID)", tenant: tenantID, generations: app.directory.generations) {
            let (client, graph) = try await principals(clientID: clientID)
            guard let client, let graph else { return nil }
            var scopes = Set<String>()
            for grant in try await grants(client: client, resource: graph) {
                let forEveryone = grant.body["consentType"]?.stringValue == "AllPrincipals"
                guard forEveryone || grant.body["principalId"]?.stringValue == userID else { continue }
                scopes.formUnion((grant.body["scope"]?.stringValue ?? "").split(separator: " ").map(String.init))
            }
            return scopes
        } ?? []
    }

    /// The requested Graph scopes that are not granted yet.
    func missing(scope: String, clientID: String, userID: String) async throws -> Set<String> {
        let (wanted, _) = Self.graphScopes(scope)
        guard !wanted.isEmpty else { return [] }
        return wanted.subtracting(try await granted(clientID: clientID, userID: userID))
    }

    /// The scopes an access token carries: those requested that are granted (`.default`: all granted); at least
    /// nothing the user did not consent to.
    func effective(scope: String, clientID: String, userID: String) async throws -> [String] {
        let (wanted, wantsDefault) = Self.graphScopes(scope)
        let granted = try await granted(clientID: clientID, userID: userID)
        return (wantsDefault ? granted : wanted.intersection(granted)).sorted()
    }

    /// Whether `userID` may grant `scopes` to the app for themselves, and whether for the organisation.
    func authority(userID: String, scopes: Set<String>) async throws -> (forSelf: Bool, forOrganisation: Bool) {
        let roles = try await app.directory.directoryRoles(tenant: tenant.id, principal: userID)
        let admin = !roles.isDisjoint(with: Self.consentAdministrators)
        let policy = try await app.directory.authorizationPolicy(tenant: tenant.id)
        let assigned = policy["defaultUserRolePermissions"]?["permissionGrantPoliciesAssigned"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let userConsentAllowed = assigned.contains { $0.hasPrefix("ManagePermissionGrantsForSelf.") }
        let consentable = scopes.isSubset(of: Self.userConsentable)
        return (admin || (userConsentAllowed && consentable), admin)
    }

    /// The live delegated permission grants from one service principal to another.
    func grants(client: String, resource: String) async throws -> [StoredObject] {
        let tenantID = tenant.id
        return try await app.store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.oauth2PermissionGrant],
                                           filter: .and(.compare(PropertyPath(["clientId"]), .eq, .string(client)),
                                                        .compare(PropertyPath(["resourceId"]), .eq, .string(resource)))))
        }.filter { $0.deletedAt == nil }
    }

    /// Records consent: the user's own grant (`Principal`), or the organisation's (`AllPrincipals`), adding `scopes`
    /// to any grant already there. Creates the client's service principal first if the tenant has none (as Entra does
    /// on first consent).
    func grant(clientID: String, userID: String, scopes: Set<String>, forOrganisation: Bool, actor: Actor) async throws {
        var (client, graph) = try await principals(clientID: clientID)
        guard let graph else { throw DirectoryError(.internalError, "The tenant has no Microsoft Graph service principal.") }
        if client == nil {
            client = try await app.directory.create(tenant: tenant.id, kind: .servicePrincipal, body: ["appId": .string(clientID)], actor: actor).id
        }
        guard let client else { return }
        let consentType = forOrganisation ? "AllPrincipals" : "Principal"
        let existing = try await grants(client: client, resource: graph).first { grant in
            grant.body["consentType"]?.stringValue == consentType && (forOrganisation || grant.body["principalId"]?.stringValue == userID)
        }
        if let existing {
            let had = Set((existing.body["scope"]?.stringValue ?? "").split(separator: " ").map(String.init))
            _ = try await app.directory.update(tenant: tenant.id, id: existing.id, kind: .oauth2PermissionGrant,
                                               patch: ["scope": .string(had.union(scopes).sorted().joined(separator: " "))], actor: actor)
        } else {
            _ = try await app.directory.create(tenant: tenant.id, kind: .oauth2PermissionGrant, body: [
                "clientId": .string(client), "resourceId": .string(graph), "consentType": .string(consentType),
                "principalId": forOrganisation ? .null : .string(userID), "scope": .string(scopes.sorted().joined(separator: " ")),
            ], actor: actor)
        }
    }

    /// The consent form's token: a MAC over the session, the client and the scopes, so that only the page Tessera
    /// showed this session can grant exactly what it showed.
    func formToken(sessionID: String, clientID: String, scopes: Set<String>) -> String {
        WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("consent:\(tenant.id)",
                                                            Array("\(sessionID)|\(clientID)|\(scopes.sorted().joined(separator: " "))".utf8)))
    }
}
