import Foundation
import TesseraCore

/// Why a sign-in through an OpenID Connect provider stopped: shown to the user with its AADSTS code, logged for us.
struct FederationFailure: Error, CustomStringConvertible {
    let code: Int
    let description: String
    init(_ code: Int, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// This tenant as the client of one OpenID Connect provider: its discovery document, its keys, and the token
/// endpoint that turns an authorization code into the ID token. Nothing is cached: a B2B sign-in is rare next to
/// the rest, and a provider's keys and endpoints are then always its current ones.
struct OpenIDProviderClient {
    let provider: OpenIDIdentityProvider
    let http: any OutboundHTTP

    /// The members of the discovery document this client uses.
    struct Metadata: Sendable {
        var authorizationEndpoint: URL
        var tokenEndpoint: URL
        var jwksURI: URL
    }

    func metadata() async throws -> Metadata {
        let document = try await json(OutboundRequest(method: "GET", url: try url(provider.wellKnownEndpoint, "wellKnownEndpoint")), "discovery document")
        // OpenID Connect Discovery 4.3: the issuer in the document must be exactly the one configured.
        guard document["issuer"]?.stringValue == provider.issuer else {
            throw FederationFailure(50107, "The identity provider's discovery document names another issuer than '\(provider.issuer)'.")
        }
        return Metadata(authorizationEndpoint: try url(document["authorization_endpoint"]?.stringValue, "authorization_endpoint"),
                        tokenEndpoint: try url(document["token_endpoint"]?.stringValue, "token_endpoint"),
                        jwksURI: try url(document["jwks_uri"]?.stringValue, "jwks_uri"))
    }

    /// The provider's signing keys (its JWKS's `keys`).
    func keys(_ metadata: Metadata) async throws -> [JSONValue] {
        guard let keys = try await json(OutboundRequest(method: "GET", url: metadata.jwksURI), "keys")["keys"]?.arrayValue else {
            throw FederationFailure(50107, "The identity provider's key set has no 'keys'.")
        }
        return keys
    }

    /// Redeems `code` at the token endpoint (`client_secret_post`, with the PKCE verifier and the provider's client
    /// secret, as ``IdentityProviderSecrets`` keeps it) for the ID token.
    func idToken(code: String, redirectURI: String, verifier: String, clientSecret: String, _ metadata: Metadata) async throws -> String {
        let form = AuthorizeEndpoint.encode([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                                             ("client_id", provider.clientID), ("client_secret", clientSecret),
                                             ("code_verifier", verifier)])
        let request = OutboundRequest(method: "POST", url: metadata.tokenEndpoint,
                                      headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8))
        let answer = try await http.send(request)
        let body = try? JSONParser.parse(answer.body)
        guard answer.status == 200, let token = body?["id_token"]?.stringValue else {
            // The provider's own error code, never the secret we sent.
            let error = body?["error"]?.stringValue ?? "HTTP \(answer.status)"
            throw FederationFailure(50107, "The identity provider refused to redeem the authorization code (\(error)).")
        }
        return token
    }

    func json(_ request: OutboundRequest, _ what: String) async throws -> JSONValue {
        let answer: OutboundResponse
        do {
            answer = try await http.send(request)
        } catch let failure as FederationFailure {
            throw failure
        } catch {
            throw FederationFailure(50107, "The identity provider's \(what) could not be fetched from \(request.url.host ?? "its server"): \(error).")
        }
        guard answer.status == 200, let body = try? JSONParser.parse(answer.body), body.objectValue != nil else {
            throw FederationFailure(50107, "The identity provider's \(what) is not a JSON object (HTTP \(answer.status)).")
        }
        return body
    }

    func url(_ text: String?, _ name: String) throws -> URL {
        guard let text, let url = URL(string: text), url.scheme == "https", url.host != nil else {
            throw FederationFailure(50107, "The identity provider's '\(name)' is not an https URL.")
        }
        return url
    }
}
