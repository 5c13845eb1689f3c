import Crypto
import CryptoExtras
import Foundation
import Logging
import SwiftASN1
import TesseraCore
import X509

/// `POST /{tenant}/oauth2/v2.0/token` for the client credentials grant, with client secrets (post or
/// basic) or a signed client assertion (`private_key_jwt`).
struct TokenEndpoint {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    func respond() async throws -> APIResponse {
        guard request.body.count <= 64 * 1024 else { throw OAuthError.invalidRequest(90014, "The request body is too large.") }
        let contentType = request.header("content-type") ?? ""
        guard contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'grant_type'.")
        }
        var form: [String: String] = [:]
        for (name, value) in APIRequest.parseForm(String(decoding: request.body, as: UTF8.self)) {
            if form[name] != nil { throw OAuthError.invalidRequest(90015, "Parameter '\(name)' is duplicated.") }
            form[name] = value
        }
        guard let grant = form["grant_type"], !grant.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'grant_type'.")
        }
        // A tenant restrictions header that is not Microsoft's format is refused whatever the grant.
        try await TenantRestrictionsGate(app: app, tenant: tenant, request: request).requireReadableHeader()
        if grant == "authorization_code" { return try await redeemAuthorizationCode(form) }
        if grant == "refresh_token" { return try await redeemRefreshToken(form) }
        if grant == "urn:ietf:params:oauth:grant-type:device_code" { return try await redeemDeviceCode(form) }
        if grant == Self.jwtBearerGrant, form["requested_token_use"] == nil { return try await signInDevice(form) }
        guard grant == "client_credentials" else {
            throw OAuthError(error: "unsupported_grant_type", code: 70003, description: "The app requested an unsupported grant type '\(grant)'.")
        }
        let client = try await authenticateClient(form)
        guard let scope = form["scope"], !scope.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'scope'.")
        }
        let scopes = scope.split(separator: " ").map(String.init)
        guard scopes.count == 1, let resourceName = scopes[0].hasSuffix("/.default") ? String(scopes[0].dropLast("/.default".count)) : nil else {
            throw OAuthError(error: "invalid_scope", code: 1002012,
                             description: "The provided value for scope \(scope) is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        }
        return try await issue(client: client, resourceName: resourceName)
    }

    struct Client {
        let application: StoredObject
        let servicePrincipal: StoredObject
        /// "1" for a secret, "2" for a certificate (Entra's `appidacr`).
        let authenticationClass: String
    }

    /// Authenticates the confidential client presenting a grant issued to `holder` (an authorization code or a refresh
    /// token): as the request names itself (the form's `client_id`, the Basic header's id, a client assertion's `sub`),
    /// or as `holder` when it names no client. A client that proves itself but is not `holder` holds another client's
    /// grant: `invalid_grant` with `code` (RFC 6749 §5.2, as the OpenID Foundation's oidcc-refresh-token expects), not a
    /// failed client authentication; nothing is spent either way.
    func authenticateHolder(_ form: [String: String], holder: String, code: Int, grant: String) async throws {
        var presented = form
        let namesItself = form["client_id"] != nil || form["client_assertion"] != nil
            || request.header("authorization")?.lowercased().hasPrefix("basic ") == true
        if !namesItself { presented["client_id"] = holder }
        let client = try await authenticateClient(presented)
        guard client.application.body["appId"]?.stringValue?.lowercased() == holder.lowercased() else {
            throw OAuthError(error: "invalid_grant", code: code, description: "The \(grant) was issued to another client.")
        }
    }

    /// Authenticates the client (``verifyClient(_:)``) under smart lockout: a source that keeps failing is slowed,
    /// then refused before any credential is checked; a client id guessed at from one address stays usable from others.
    func authenticateClient(_ form: [String: String]) async throws -> Client {
        let now = app.clock.now
        let account = form["client_id"].map { "client:\(tenant.id):\($0)" }
        if let refusal = app.throttle.check(account: account, source: request.clientAddress, now: now) {
            app.telemetry.throttled(kind: "client")
            throw OAuthError.refused(refusal, now: now)
        }
        do {
            let client = try await verifyClient(form)
            if let account { app.throttle.succeeded(account: account, source: request.clientAddress) }
            return client
        } catch let error as OAuthError where error.error == "invalid_client" {
            if app.throttle.failed(account: account, source: request.clientAddress, now: now) != nil {
                app.telemetry.lockout(kind: "client")
                app.logger.warning("Client locked out after repeated failed authentication",
                                   metadata: ["tenant": .string(tenant.id), "client": .string(form["client_id"] ?? ""),
                                              "source": .string(request.clientAddress ?? "-")])
            }
            throw error
        }
    }

    func verifyClient(_ form: [String: String]) async throws -> Client {
        var clientId = form["client_id"]
        // What the secret may be: as posted, or as the Authorization header's password read both ways (below).
        var secrets = form["client_secret"].map { [$0] } ?? []
        if let authorization = request.header("authorization"), authorization.lowercased().hasPrefix("basic ") {
            guard let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                  let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else { throw OAuthError.invalidClient(7000216, "The client credentials in the Authorization header are malformed.") }
            // RFC 6749 §2.3.1: the id and the secret are form-urlencoded before base64 (pyoidc and Go's
            // oauth2 do so: `+` is a space, `%2B` a plus), but many clients (Authlib, requests' HTTPBasicAuth) send them
            // as they are. The id is a GUID either way; the secret counts read either way, as only its holder can
            // produce one that matches.
            let rawID = String(text[..<colon]), rawSecret = String(text[text.index(after: colon)...])
            let id = Self.formDecoded(rawID) ?? rawID
            if let clientId, clientId != id { throw OAuthError.invalidClient(7000216, "client_id does not match the Authorization header.") }
            clientId = id
            secrets = [Self.formDecoded(rawSecret), rawSecret].compactMap { $0 }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        }
        let assertion = form["client_assertion"]
        if assertion != nil, form["client_assertion_type"] != Self.assertionType {
            throw OAuthError.invalidRequest(50027, "client_assertion_type must be '\(Self.assertionType)'.")
        }
        if clientId == nil, let assertion, let jwt = JWT.decode(assertion) { clientId = jwt.claims["sub"]?.stringValue }
        guard let clientId, !clientId.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'client_id'.")
        }
        let tenantId = tenant.id
        var found: TokenCache.Client?
        if let cached = app.tokenCache.client(tenant: tenant, clientId: clientId) {
            found = cached
        } else {
            let sequence = tenant.changeSequence
            found = try await app.store.read { tx -> TokenCache.Client? in
                guard let application = try await tx.object(tenant: tenantId, holding: UniqueKey("appId", clientId)),
                      application.deletedAt == nil
                else { return nil }
                let servicePrincipal = try await tx.object(tenant: tenantId, holding: UniqueKey("servicePrincipal:appId", clientId))
                var secrets = try await tx.credentials(ClientSecretRecord.self, tenant: tenantId, family: application.id)
                if let servicePrincipal {
                    secrets += try await tx.credentials(ClientSecretRecord.self, tenant: tenantId, family: servicePrincipal.id)
                }
                return TokenCache.Client(sequence: sequence, application: application, servicePrincipal: servicePrincipal, secrets: secrets)
            }
            if let found { app.tokenCache.store(found, tenant: tenantId, clientId: clientId) }
        }
        guard let found, let servicePrincipal = found.servicePrincipal, servicePrincipal.deletedAt == nil else {
            throw OAuthError(error: "unauthorized_client", code: 700016,
                             description: "Application with identifier '\(clientId)' was not found in the directory '\(tenant.domain)'. This can happen if the application has not been installed by the administrator of the tenant.")
        }
        let application = found.application
        guard servicePrincipal.body["accountEnabled"] != .bool(false) else {
            throw OAuthError(error: "unauthorized_client", code: 7000112, description: "Application '\(clientId)' is disabled.")
        }
        if let assertion {
            try await verifyAssertion(assertion, clientId: clientId, application: application)
            return Client(application: application, servicePrincipal: servicePrincipal, authenticationClass: "2")
        }
        guard secrets.contains(where: { !$0.isEmpty }) else {
            throw OAuthError.invalidClient(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        }
        // A secret counts while the application or the service principal it was added to lists it (a recovered older
        // copy may not) and its record holds its digest (removePassword deletes it); every one is compared, in constant
        // time. A service principal's secrets authenticate as the application in its tenant, as Entra's do.
        let now = app.clock.now
        let listed = Set([application, servicePrincipal].flatMap { object in
            (object.body["passwordCredentials"]?.arrayValue ?? []).compactMap { $0["keyId"]?.stringValue.map { "\(object.id)/\($0.lowercased())" } }
        })
        var matches = false
        for record in found.secrets where listed.contains("\(record.objectID)/\(record.id)") && record.expires >= now {
            for secret in secrets where !secret.isEmpty { matches = Secrets.matches(secret, digest: record.digest) || matches }
        }
        guard matches else {
            throw OAuthError.invalidClient(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '\(clientId)'.")
        }
        return Client(application: application, servicePrincipal: servicePrincipal, authenticationClass: "1")
    }

    /// `application/x-www-form-urlencoded` decoding of one value (`+` is a space, then percent-escapes); nil when an
    /// escape is malformed.
    static func formDecoded(_ value: String) -> String? {
        value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// Verifies a `private_key_jwt` client assertion (RFC 7523) against the app's certificates.
    func verifyAssertion(_ assertion: String, clientId: String, application: StoredObject) async throws {
        guard let jwt = JWT.decode(assertion) else { throw OAuthError.invalidClient(50027, "The client assertion is not a valid JWT.") }
        let now = app.clock.now.timeIntervalSince1970
        guard jwt.claims["iss"]?.stringValue == clientId, jwt.claims["sub"]?.stringValue == clientId else {
            throw OAuthError.invalidClient(700021, "The client assertion's iss and sub must both be the client id.")
        }
        // The audience names this server's token endpoint for this tenant (RFC 7523 §3): an assertion minted for another
        // host's endpoint (or a look-alike) is not for us, whatever its path says.
        guard isOwnTokenEndpoint(jwt.claims["aud"]?.stringValue) else {
            throw OAuthError.invalidClient(700212, "The client assertion's audience must be this tenant's token endpoint.")
        }
        guard let exp = jwt.claims["exp"]?.doubleValue, exp > now - 300 else {
            throw OAuthError.invalidClient(700024, "The client assertion is expired.")
        }
        // A client assertion is a bearer credential for as long as it lives: keep that short.
        let issuedAt = jwt.claims["iat"]?.doubleValue ?? jwt.claims["nbf"]?.doubleValue ?? now
        guard exp - now <= 3600, exp - issuedAt <= 3600 else {
            throw OAuthError.invalidClient(700024, "The client assertion lives longer than one hour.")
        }
        if let nbf = jwt.claims["nbf"]?.doubleValue, nbf > now + 300 {
            throw OAuthError.invalidClient(700024, "The client assertion is not yet valid.")
        }
        let sha1 = jwt.header["x5t"]?.stringValue.flatMap(Base64URL.decode)
        let sha256 = jwt.header["x5t#S256"]?.stringValue.flatMap(Base64URL.decode)
        guard sha1 != nil || sha256 != nil else { throw OAuthError.invalidClient(700027, "The client assertion has no x5t or x5t#S256 header.") }
        var verified = false
        for credential in application.body["keyCredentials"]?.arrayValue ?? [] {
            guard let certificate = credential["_certificate"]?.stringValue, let der = Data(base64Encoded: certificate) else { continue }
            if let end = credential["endDateTime"]?.stringValue.flatMap(Timestamp.parse), end.timeIntervalSince1970 < now { continue }
            let matchesThumbprint = (sha1.map { Secrets.constantTimeEquals(Array($0), Array(Insecure.SHA1.hash(data: der))) } ?? false)
                || (sha256.map { Secrets.constantTimeEquals(Array($0), Array(SHA256.hash(data: der))) } ?? false)
            guard matchesThumbprint,
                  let parsed = try? Certificate(derEncoded: Array(der)), let key = _RSA.Signing.PublicKey(parsed.publicKey)
            else { continue }
            verified = jwt.verify(with: key)
            if verified { break }
        }
        guard verified else {
            throw OAuthError.invalidClient(700027, "The client assertion's signature does not match a certificate registered on app '\(clientId)'.")
        }
        // As Entra does, the same assertion may be presented again while it lives (MSAL and azure-identity
        // cache theirs for about nine minutes); its lifetime is capped at an hour above.
        guard let jti = jwt.claims["jti"]?.stringValue, !jti.isEmpty, jti.count <= 256 else {
            throw OAuthError.invalidClient(700027, "The client assertion must carry a jti.")
        }
    }

    /// Whether `audience` names this server's token endpoint for this tenant (by id or domain).
    func isOwnTokenEndpoint(_ audience: String?) -> Bool {
        guard let audience, let audienceURL = URL(string: audience), app.network.isOwn(audience, base: request.baseURL) else { return false }
        let path = audienceURL.path.split(separator: "/").map(String.init)
        guard path.count == 4, path.suffix(3) == ["oauth2", "v2.0", "token"] else { return false }
        return path[0].lowercased() == tenant.id || path[0].lowercased() == tenant.domain
    }

    func issue(client: Client, resourceName: String) async throws -> APIResponse {
        let tenantId = tenant.id
        let isGraph = resourceName.lowercased() == "https://graph.microsoft.com" || resourceName.lowercased() == GraphPermissions.graphAppId
        let principal = client.servicePrincipal.id
        var resolved: (StoredObject, [String])?
        if let cached = app.tokenCache.grant(tenant: tenant, principal: principal, resource: resourceName) {
            resolved = (cached.resource, cached.roles)
        } else {
            resolved = try await resolveGrant(resourceName: resourceName, isGraph: isGraph, client: client)
            if let (resource, roles) = resolved {
                app.tokenCache.store(.init(sequence: tenant.changeSequence, resource: resource, roles: roles),
                                     tenant: tenantId, principal: principal, resource: resourceName)
            }
        }
        guard let (resource, roles) = resolved else {
            throw OAuthError(error: "invalid_resource", code: 500011,
                             description: "The resource principal named \(resourceName) was not found in the tenant named \(tenant.name).")
        }
        let resourceAppID = isGraph ? GraphPermissions.graphAppId : resource.body["appId"]?.stringValue ?? resource.id
        let decision = try await requireConditionalAccess(client: client, resourceAppID: resourceAppID)
        let response = try sign(client: client, resource: resource, roles: roles, isGraph: isGraph, resourceName: resourceName)
        await SignInLog(app: app, tenant: tenantId).record(
            SignInEvent(kind: .servicePrincipal, principal: client.servicePrincipal, appID: client.application.body["appId"]?.stringValue ?? "",
                        appDisplayName: client.application.body["displayName"]?.stringValue, resourceID: resourceAppID,
                        resourceDisplayName: resource.body["displayName"]?.stringValue, decision: decision),
            request: request)
        return response
    }

    /// The resource's service principal and the values of the app roles the client holds on it.
    func resolveGrant(resourceName: String, isGraph: Bool, client: Client) async throws -> (StoredObject, [String])? {
        let tenantId = tenant.id
        return try await app.store.read { tx -> (StoredObject, [String])? in
            let resourceAppId: String?
            if isGraph {
                resourceAppId = GraphPermissions.graphAppId
            } else if let resourceApp = try await tx.object(tenant: tenantId, holding: UniqueKey("identifierUris", resourceName)) {
                resourceAppId = resourceApp.body["appId"]?.stringValue
            } else {
                resourceAppId = Identifier.isGUID(resourceName) ? resourceName.lowercased() : nil
            }
            guard let resourceAppId,
                  let resource = try await tx.object(tenant: tenantId, holding: UniqueKey("servicePrincipal:appId", resourceAppId)),
                  resource.deletedAt == nil
            else { return nil }
            let assignments = try await tx.query(ObjectQuery(
                tenant: tenantId, kinds: [.appRoleAssignment],
                filter: .and(.compare(PropertyPath(["principalId"]), .eq, .string(client.servicePrincipal.id)),
                             .compare(PropertyPath(["resourceId"]), .eq, .string(resource.id)))))
            let roleIds = Set(assignments.compactMap { $0.body["appRoleId"]?.stringValue })
            let values = (resource.body["appRoles"]?.arrayValue ?? []).compactMap { role -> String? in
                guard let id = role["id"]?.stringValue?.lowercased(), roleIds.contains(id), role["isEnabled"] != .bool(false) else { return nil }
                return role["value"]?.stringValue
            }
            return (resource, values.sorted())
        }
    }

    func sign(client: Client, resource: StoredObject, roles: [String], isGraph: Bool, resourceName: String) throws -> APIResponse {
        let tenantId = tenant.id
        let now = Int64(app.clock.now.timeIntervalSince1970)
        let issuer = IdentityPlatform(app: app).issuer(tenant: tenantId, base: request.baseURL)
        let appId = client.application.body["appId"]?.stringValue ?? ""
        var claims: [String: JSONValue] = [
            "aud": .string(isGraph ? "https://graph.microsoft.com" : (resource.body["appId"]?.stringValue ?? resourceName)),
            "iss": .string(issuer), "iat": .int(now), "nbf": .int(now), "exp": .int(now + Int64(IdentityPlatform.accessTokenLifetime)),
            "tid": .string(tenantId), "oid": .string(client.servicePrincipal.id), "sub": .string(client.servicePrincipal.id),
            "appid": .string(appId), "azp": .string(appId), "appidacr": .string(client.authenticationClass),
            "azpacr": .string(client.authenticationClass), "idtyp": "app", "ver": "2.0", "idp": .string(issuer),
            "app_displayname": .optional(client.application.body["displayName"]?.stringValue), "uti": .string(Secrets.randomToken(bytes: 16)),
        ]
        if !roles.isEmpty { claims["roles"] = .strings(roles) }
        app.telemetry.token(grant: "client_credentials")
        let token = try JWT.sign(claims: claims, header: ["kid": .string(app.signingKey.kid), "x5t": .string(app.signingKey.kid)],
                                 key: app.signingKey.privateKey)
        return .json(["token_type": "Bearer", "expires_in": .int(Int64(IdentityPlatform.accessTokenLifetime)),
                      "ext_expires_in": .int(Int64(IdentityPlatform.accessTokenLifetime)), "access_token": .string(token)],
                     headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }
}

extension Optional {
    func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
