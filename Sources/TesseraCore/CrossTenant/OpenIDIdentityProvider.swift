import Foundation

extension ObjectKind {
    /// An OpenID Connect provider the tenant trusts for B2B collaboration (beta `oidcIdentityProvider`).
    public static let oidcIdentityProvider = ObjectKind(rawValue: "oidcIdentityProvider")
}

/// An OpenID Connect provider whose users this tenant invites and lets sign in (B2B with another deployment): Graph
/// beta's `oidcIdentityProvider` under `/identity/identityProviders`, as Microsoft documents it for External ID,
/// plus Tessera's `domains`, the email domains whose users it signs in (Entra routes B2B invitations by domain only
/// for SAML/WS-Fed federation; Microsoft documents no domain list for OpenID Connect providers).
///
/// This tenant is the provider's client: it sends the browser to the provider's `authorization_endpoint` with the
/// authorization code flow (PKCE, `nonce`), redeems the code at its `token_endpoint` with `client_secret_post`, and
/// accepts only an ID token signed by a key of its `jwks_uri` with `iss` = `issuer` and `aud` = `clientId`.
public struct OpenIDIdentityProvider: Sendable, Hashable {
    public var id: String
    public var displayName: String
    public var clientID: String
    /// The client secret (`clientAuthentication` of type `oidcClientSecretAuthentication`) a create or a PATCH gave;
    /// nil for a PATCH that gave none and for a provider read from the store, whose object holds no secret: it is kept,
    /// sealed, in the tenant's ``IdentityProviderSecrets`` and read from there only to redeem a code. Never shown again.
    public var clientSecret: String?
    /// The issuer, compared exactly (case-sensitive) with the discovery document's and the ID token's `iss`.
    public var issuer: String
    public var wellKnownEndpoint: String
    public var scope: String
    /// Email domains (lowercased) whose users this provider signs in.
    public var domains: [String]

    static let members: Set<String> = [
        "id", "displayName", "clientId", "issuer", "wellKnownEndpoint", "responseType", "scope", "clientAuthentication",
        "inboundClaimMapping", "supportedTenantTypes", "domains",
    ]

    /// Reads Graph's body for a create (`patching` nil) or a PATCH over `patching`, strictly.
    public init(body: [String: JSONValue], patching current: OpenIDIdentityProvider? = nil, id: String) throws(DirectoryError) {
        _ = try CrossTenantJSON.object(.object(body), "oidcIdentityProvider", members: Self.members)
        if let type = body["@odata.type"]?.stringValue,
           type.lowercased().trimmingCharacters(in: ["#"]) != "microsoft.graph.oidcidentityprovider" {
            throw DirectoryError.badRequest("Only '#microsoft.graph.oidcIdentityProvider' can be created here; '\(type)' is not supported.")
        }
        func text(_ name: String, _ existing: String?) throws(DirectoryError) -> String {
            guard let value = try CrossTenantJSON.string(body[name], name) ?? existing, !value.trimmed.isEmpty else {
                throw DirectoryError.badRequest("Property '\(name)' is required.")
            }
            return value.trimmed
        }
        self.id = id
        displayName = try text("displayName", current?.displayName)
        clientID = try text("clientId", current?.clientID)
        issuer = try text("issuer", current?.issuer)
        wellKnownEndpoint = try text("wellKnownEndpoint", current?.wellKnownEndpoint)
        scope = try text("scope", current?.scope)
        let responseType = try CrossTenantJSON.string(body["responseType"], "responseType") ?? "code"
        guard responseType == "code" else {
            throw DirectoryError.badRequest("Property 'responseType' must be 'code' (the other values are not supported, as in Entra).")
        }
        guard scope.split(separator: " ").contains("openid") else { throw DirectoryError.badRequest("Property 'scope' must include 'openid'.") }
        for (name, url) in [("issuer", issuer), ("wellKnownEndpoint", wellKnownEndpoint)] {
            guard let parsed = URL(string: url), parsed.scheme == "https", parsed.host?.isEmpty == false, parsed.fragment == nil else {
                throw DirectoryError.badRequest("Property '\(name)' must be an absolute https URL.")
            }
        }
        guard URL(string: issuer)?.query == nil else { throw DirectoryError.badRequest("Property 'issuer' must have no query or fragment.") }
        guard wellKnownEndpoint.split(separator: "?")[0].hasSuffix("/.well-known/openid-configuration") else {
            throw DirectoryError.badRequest("Property 'wellKnownEndpoint' must end with '.well-known/openid-configuration'.")
        }
        if let authentication = body["clientAuthentication"], authentication != .null {
            let object = try CrossTenantJSON.object(authentication, "clientAuthentication", members: ["clientSecret"])
            let type = object["@odata.type"]?.stringValue?.lowercased().trimmingCharacters(in: ["#"])
            guard type == nil || type == "microsoft.graph.oidcclientsecretauthentication" else {
                throw DirectoryError.badRequest("Property 'clientAuthentication' must be an 'oidcClientSecretAuthentication' (client_secret_post).")
            }
            guard let secret = try CrossTenantJSON.string(object["clientSecret"], "clientAuthentication.clientSecret"), !secret.isEmpty,
                  secret != Self.mask else {
                throw DirectoryError.badRequest("Property 'clientAuthentication.clientSecret' is required.")
            }
            clientSecret = secret
        } else if current != nil {
            clientSecret = nil
        } else {
            throw DirectoryError.badRequest("Property 'clientAuthentication' is required (an oidcClientSecretAuthentication with the client secret).")
        }
        if let list = body["domains"], list != .null {
            guard let items = list.arrayValue, !items.isEmpty else { throw DirectoryError.badRequest("Property 'domains' must list at least one domain.") }
            var domains: [String] = []
            for item in items {
                guard let domain = item.stringValue?.lowercased().trimmed, domain.contains("."), !domain.contains("@"),
                      !domain.contains(where: { $0.isWhitespace || $0 == "/" }) else {
                    throw DirectoryError.badRequest("Property 'domains' must hold domain names such as 'contoso.com'.")
                }
                if !domains.contains(domain) { domains.append(domain) }
            }
            self.domains = domains
        } else {
            domains = current?.domains ?? []
        }
        guard !domains.isEmpty else { throw DirectoryError.badRequest("Property 'domains' is required: the email domains this provider signs in.") }
    }

    /// The provider its object stores (Graph's properties; no secret, see ``clientSecret``).
    init(stored body: [String: JSONValue]) throws {
        guard let id = body["id"]?.stringValue, let issuer = body["issuer"]?.stringValue, let client = body["clientId"]?.stringValue,
              let wellKnown = body["wellKnownEndpoint"]?.stringValue else {
            throw DirectoryError(.internalError, "A stored identity provider is incomplete.")
        }
        self.id = id
        displayName = body["displayName"]?.stringValue ?? issuer
        clientID = client
        clientSecret = nil
        self.issuer = issuer
        wellKnownEndpoint = wellKnown
        scope = body["scope"]?.stringValue ?? "openid"
        domains = body["domains"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static let mask = "*****"

    /// Graph's `oidcIdentityProvider`, its secret masked as Microsoft's example shows it.
    public var graph: [String: JSONValue] {
        ["@odata.type": "#microsoft.graph.oidcIdentityProvider", "id": .string(id), "displayName": .string(displayName),
         "clientId": .string(clientID), "issuer": .string(issuer), "wellKnownEndpoint": .string(wellKnownEndpoint), "responseType": "code",
         "scope": .string(scope), "supportedTenantTypes": nil,
         "clientAuthentication": ["@odata.type": "#microsoft.graph.oidcClientSecretAuthentication", "clientSecret": .string(Self.mask)],
         "inboundClaimMapping": ["sub": "sub", "name": "name", "email": "email"], "domains": .strings(domains)]
    }

    /// What its object stores: Graph's properties without `clientAuthentication` (the secret is not among them).
    var stored: [String: JSONValue] {
        var body = graph
        body["clientAuthentication"] = nil
        return body
    }

    /// The member in which releases before ``IdentityProviderSecrets`` kept the secret, in plain text, in the object's
    /// body (beside Graph's properties, unsealed): moved out by a migration step.
    public static let legacySecretMember = "_clientSecret"

    /// The unique keys the provider holds: its issuer and each of its domains, so one address has one way home.
    var keys: [UniqueKey] {
        [UniqueKey("oidcProviderIssuer", issuer)] + domains.map { UniqueKey("oidcProviderDomain", $0) }
    }
}
