import Crypto
import CryptoExtras
import Foundation
import SwiftASN1
import TesseraCore
import X509

/// Request objects at `/authorize` (`request`, RFC 9101 and OpenID Connect Core §6.1): the authorization request's
/// parameters as a JWT the client signed (RS256 or PS256) with the key of a certificate registered on its application
/// (`keyCredentials`, as for `private_key_jwt`). Its claims supersede the query's parameters of the same name, and the
/// query's others still count (Core §6.3.3). Unsigned (`alg=none`) and encrypted request objects are refused
/// (`invalid_request_object`), and so is `request_uri` (`request_uri_not_supported`).
struct RequestObject {
    let jwt: JWT

    /// The request object a query carries, decoded but not verified; nil when there is none. Throws
    /// `invalid_request_object` for one that is not a compact JWS (an encrypted one has five parts).
    init?(query: [String: String]) throws {
        guard let text = query["request"] else { return nil }
        guard let jwt = JWT.decode(text) else {
            throw OAuthError(error: "invalid_request_object", code: 90100, description: "The request object is not a signed JWT (encrypted request objects are not supported).")
        }
        self.jwt = jwt
    }

    /// The query with the request object's claims over it (not `client_id`, which must be the query's, and is checked in
    /// `verify`); `request` itself stays so that a continuation brings it back.
    /// Non-string claims are written as their JSON (`max_age` as a number, `claims` as an object).
    func merged(into query: [String: String]) -> [String: String] {
        var merged = query
        for (name, value) in jwt.claims where !["request", "request_uri", "client_id", "iss", "aud", "exp", "nbf", "iat", "jti"].contains(name) {
            switch value {
            case .string(let text): merged[name] = text
            case .null: continue
            default: merged[name] = value.serialized
            }
        }
        return merged
    }

    /// Checks that `clientID` made and signed this request object for this tenant's issuer now; throws
    /// `invalid_request_object` otherwise.
    func verify(clientID: String, application: StoredObject, app: TesseraApp, tenant: String, base: String) throws {
        func invalid(_ description: String) -> OAuthError { OAuthError(error: "invalid_request_object", code: 90100, description: description) }
        guard let alg = jwt.header["alg"]?.stringValue, alg == "RS256" || alg == "PS256" else {
            throw invalid("The request object must be signed with RS256 or PS256; unsigned (alg=none) request objects are not accepted.")
        }
        if let claimed = jwt.claims["client_id"], claimed.stringValue != clientID {
            throw invalid("The request object's client_id does not match the request's client_id.")
        }
        if let issuer = jwt.claims["iss"], issuer.stringValue != clientID {
            throw invalid("The request object's iss must be the client_id.")
        }
        if let audience = jwt.claims["aud"] {
            let audiences = audience.arrayValue?.compactMap(\.stringValue) ?? audience.stringValue.map { [$0] } ?? []
            guard audiences.contains(where: { app.network.isOwnIssuer($0, tenant: tenant, base: base) }) else {
                throw invalid("The request object's aud must be this tenant's issuer.")
            }
        }
        let now = app.clock.now.timeIntervalSince1970
        if let exp = jwt.claims["exp"] {
            guard let seconds = exp.doubleValue, seconds > now - 60 else { throw invalid("The request object has expired.") }
        }
        if let nbf = jwt.claims["nbf"] {
            guard let seconds = nbf.doubleValue, seconds <= now + 300 else { throw invalid("The request object is not valid yet.") }
        }
        guard Self.signer(of: jwt, application: application, now: now) else {
            throw invalid("The request object's signature does not match a certificate registered on app '\(clientID)'.")
        }
    }

    /// Whether a current certificate of the application's `keyCredentials` verifies the JWT (every one is tried: a
    /// request object names its key by `kid`, if at all, and Entra's key ids are not in it).
    static func signer(of jwt: JWT, application: StoredObject, now: TimeInterval) -> Bool {
        for credential in application.body["keyCredentials"]?.arrayValue ?? [] {
            guard let certificate = credential["_certificate"]?.stringValue, let der = Data(base64Encoded: certificate) else { continue }
            if let end = credential["endDateTime"]?.stringValue.flatMap(Timestamp.parse), end.timeIntervalSince1970 < now { continue }
            if let start = credential["startDateTime"]?.stringValue.flatMap(Timestamp.parse), start.timeIntervalSince1970 > now { continue }
            guard let parsed = try? Certificate(derEncoded: Array(der)), let key = _RSA.Signing.PublicKey(parsed.publicKey) else { continue }
            if jwt.verify(with: key) { return true }
        }
        return false
    }
}
