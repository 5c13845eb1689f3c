import Foundation
import Kerberos
import Logging
import TesseraCore

/// The device registration service's hybrid join through Kerberos, as Entra's (preview, March 2026): a domain computer
/// proves its membership with a service ticket for `adrs/<host>` from its domain controller
/// (`Authorization: Negotiate`), which is exchanged for a short-lived JWT (`ExchangeForJwt`); with it the computer
/// sends a certificate request for its key, and gets a device certificate from the tenant's device CA while its
/// Graph `device` is created with `trustType: ServerAd`.
///
/// - `POST /EnrollmentServer/{tenant}/ExchangeForJwt` with `Authorization: Negotiate <SPNEGO>` →
///   `{"token_type":"Bearer","access_token","expires_in"}` and the mutual-authentication reply in `WWW-Authenticate`.
/// - `POST /EnrollmentServer/{tenant}/device` with `Authorization: Bearer <that JWT>` (or `Negotiate`, both steps in
///   one) and MS-DVRJ's body `{"CertificateRequest":{"Type":"pkcs10","Data"},"DeviceDisplayName","DeviceType","OSVersion"}`
///   → `{"Certificate":{"Thumbprint","RawBody"},"DeviceId","MembershipChanges":[]}`.
///
/// Every refusal is Graph's error JSON with the Windows error's name as its code, and creates nothing.
struct DeviceRegistration {
    let app: TesseraApp

    /// Entra's Device Registration Service's application id: the audience of the exchanged token.
    static let serviceAppID = "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9"
    static let actor = Actor(kind: .application, id: serviceAppID, displayName: "Device Registration Service", appId: serviceAppID)
    /// The exchanged token lives five minutes and is spent by the registration it authorises.
    static let tokenLifetime: Int64 = 300

    func handle(_ request: APIRequest) async throws -> APIResponse {
        let s = request.segments
        guard s.count == 3, ["ExchangeForJwt", "device"].contains(s[2]) else { throw DirectoryError.notFound("/" + s.joined(separator: "/")) }
        guard let tenant = try await app.tenantRecord(s[1]) else { throw DirectoryError.notFound("No tenant '\(s[1])'.") }
        guard request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST.") }
        let now = app.clock.now
        do {
            if s[2] == "ExchangeForJwt" {
                let (computer, reply) = try await authenticate(request, tenant: tenant, now: now)
                var response = APIResponse.json([
                    "token_type": "Bearer", "access_token": .string(try token(for: computer, tenant: tenant, request: request, now: now)),
                    "expires_in": .int(Self.tokenLifetime),
                ], headers: [("Cache-Control", "no-store")])
                if let reply { response.headers.append(("WWW-Authenticate", "Negotiate " + Data(reply).base64EncodedString())) }
                return response
            }
            return try await register(request, tenant: tenant, now: now)
        } catch let error as DeviceRegistrationError {
            app.logger.info("device registration refused: \(error.message)", metadata: ["request-id": "\(request.requestID)", "tenant": "\(tenant.id)"])
            return error.response(request, now: now)
        }
    }

    /// Validates the Negotiate token against the tenant's service keys and the computer's standing in AD.
    func authenticate(_ request: APIRequest, tenant: TenantRecord, now: Date) async throws -> (ComputerIdentity, [UInt8]?) {
        guard let header = request.header("authorization"), header.lowercased().hasPrefix("negotiate ") else {
            throw DeviceRegistrationError.missingOnPremisesIdentity(
                "no Kerberos ticket: send Authorization: Negotiate with a service ticket for the SPN adrs/<Tessera's host>")
        }
        guard let domain = try await KerberosDomain.load(tenant: tenant.id, store: app.store, sealing: app.keySealing) else { throw DeviceRegistrationError.notEnabled }
        guard let token = Data(base64Encoded: String(header.dropFirst("negotiate ".count)).trimmingCharacters(in: .whitespaces)) else {
            throw DeviceRegistrationError(code: "SEC_E_INVALID_TOKEN", message: "SEC_E_INVALID_TOKEN: the Negotiate token is not base64", status: 401)
        }
        let accepted: AcceptedRequest
        do {
            let validator = APRequestValidator(
                servicePrincipal: PrincipalName(domain.servicePrincipal), realm: domain.realm, keys: try domain.serviceKeys(at: now),
                replayCache: StoreReplayCache(store: app.store, tenant: tenant.id))
            accepted = try await validator.validate(token, now: now)
        } catch let error as KerberosError {
            throw DeviceRegistrationError(error)
        }
        let computer = try await ComputerIdentity.establish(accepted, domain: domain, tenant: tenant.id, store: app.store)
        return (computer, accepted.replyToken)
    }

    /// The exchanged token: the deployment key signs what the ticket proved, for the registration step only.
    func token(for computer: ComputerIdentity, tenant: TenantRecord, request: APIRequest, now: Date) throws -> String {
        let issued = Int64(now.timeIntervalSince1970)
        var claims = computer.claims
        claims["iss"] = .string(Self.issuer(tenant: tenant.id, base: request.baseURL))
        claims["aud"] = .string(Self.serviceAppID)
        claims["tid"] = .string(tenant.id)
        claims["iat"] = .int(issued)
        claims["nbf"] = .int(issued)
        claims["exp"] = .int(issued + Self.tokenLifetime)
        claims["jti"] = .string(Identifier.make())
        return try JWT.sign(claims: claims, header: ["kid": .string(app.signingKey.kid)], key: app.signingKey.privateKey)
    }

    static func issuer(tenant: String, base: String) -> String { "\(base)/\(tenant)/EnrollmentServer" }
}
