import Crypto
import Foundation
import Logging
import SwiftASN1
import TesseraCore
import X509

/// A registered device signs in as itself (RFC 7523's JWT bearer grant, the assertion signed by the device's key):
///
///     POST /{tenant}/oauth2/v2.0/token
///     grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&scope=<resource>/.default&assertion=<JWT>
///
/// The assertion's header is `{"alg":"ES256","x5c":["<base64 DER of the device certificate>"]}`, its claims `iss` and
/// `sub` the device's `deviceId`, `aud` this tenant's token endpoint, `exp` (at most an hour after `iat`) and a `jti`
/// used once. The certificate must pass ``DeviceAuthentication`` (so a deleted, disabled or re-keyed device is refused
/// at once) and the assertion must verify with its key. The access token's subject is the device object, with
/// `deviceid` (its `deviceId`) and `idtyp: device`; it carries no roles. Conditional Access decides the request as a
/// workload identity's, with the device's facts: a hybrid joined device (`trustType: ServerAd`) meets `domainJoinedDevice`
/// and device filters see its properties.
extension TokenEndpoint {
    static let jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    func signInDevice(_ form: [String: String]) async throws -> APIResponse {
        guard let assertion = form["assertion"], !assertion.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'assertion'.")
        }
        guard let scope = form["scope"], scope.hasSuffix("/.default"), !scope.contains(" ") else {
            throw OAuthError(error: "invalid_scope", code: 1002012,
                             description: "A device's sign-in must have one scope: the resource's identifier followed by /.default.")
        }
        let now = app.clock.now
        let device = try await verifyDeviceAssertion(assertion, now: now)
        let resourceName = String(scope.dropLast("/.default".count))
        guard let (resource, resourceAppID) = try await deviceResource(resourceName) else {
            throw OAuthError(error: "invalid_resource", code: 500011,
                             description: "The resource principal named \(resourceName) was not found in the tenant named \(tenant.name).")
        }
        let deviceID = device.body["deviceId"]?.stringValue ?? ""

        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        let facts = SignInFacts(tenantID: tenant.id, subject: .servicePrincipal(id: device.id), target: .application(appID: resourceAppID),
                                clientAppType: .other, clientIP: request.clientAddress.flatMap(IPAddress.init),
                                country: app.countries.country(for: request.clientAddress),
                                device: DeviceFacts(deviceId: deviceID, displayName: device.body["displayName"]?.stringValue,
                                                    trustType: device.body["trustType"]?.stringValue,
                                                    isCompliant: device.body["isCompliant"] == .bool(true),
                                                    operatingSystem: device.body["operatingSystem"]?.stringValue),
                                now: now)
        let decision = engine.decide(facts)
        let detail = SignInEvent.DeviceDetail(device: device)
        let resourceDisplayName = resource.body["displayName"]?.stringValue
        guard case .allow = decision.outcome else {
            app.logger.notice("Conditional Access refused a device's token", metadata: [
                "tenant": .string(tenant.id), "deviceId": .string(deviceID), "source": .string(request.clientAddress ?? "-")])
            let refusal = OAuthError(error: "invalid_grant", code: 53003,
                                     description: "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
            await recordDeviceSignIn(detail, resourceID: resourceAppID, resourceDisplayName: resourceDisplayName, decision: decision,
                                     failure: (refusal.code, refusal.description))
            throw refusal
        }

        let issued = Int64(now.timeIntervalSince1970)
        let issuer = IdentityPlatform(app: app).issuer(tenant: tenant.id, base: request.baseURL)
        let isGraph = resourceAppID == GraphPermissions.graphAppId
        let claims: [String: JSONValue] = [
            "aud": .string(isGraph ? "https://graph.microsoft.com" : resourceAppID), "iss": .string(issuer), "idp": .string(issuer),
            "iat": .int(issued), "nbf": .int(issued), "exp": .int(issued + Int64(IdentityPlatform.accessTokenLifetime)),
            "tid": .string(tenant.id), "oid": .string(device.id), "sub": .string(device.id), "deviceid": .string(deviceID),
            "idtyp": "device", "ver": "2.0", "uti": .string(Secrets.randomToken(bytes: 16)),
        ]
        app.telemetry.token(grant: "device")
        app.logger.info("device signed in", metadata: ["tenant": .string(tenant.id), "deviceId": .string(deviceID),
                                                       "resource": .string(resource.id)])
        let token = try JWT.sign(claims: claims, header: ["kid": .string(app.signingKey.kid), "x5t": .string(app.signingKey.kid)],
                                 key: app.signingKey.privateKey)
        await recordDeviceSignIn(detail, resourceID: resourceAppID, resourceDisplayName: resourceDisplayName, decision: decision, failure: nil)
        return .json(["token_type": "Bearer", "expires_in": .int(Int64(IdentityPlatform.accessTokenLifetime)),
                      "ext_expires_in": .int(Int64(IdentityPlatform.accessTokenLifetime)), "access_token": .string(token)],
                     headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }

    /// The device whose certificate (`x5c`) signed the assertion, for this tenant's token endpoint, alive, used once.
    func verifyDeviceAssertion(_ assertion: String, now: Date) async throws -> StoredObject {
        guard let jwt = JWT.decode(assertion), jwt.header["alg"]?.stringValue == "ES256",
              let chain = jwt.header["x5c"]?.arrayValue, let first = chain.first?.stringValue, let der = Data(base64Encoded: first),
              let certificate = try? Certificate(derEncoded: Array(der)), let key = P256.Signing.PublicKey(certificate.publicKey)
        else {
            throw OAuthError(error: "invalid_grant", code: 50027,
                             description: "The assertion must be an ES256 JWT whose x5c header holds the device certificate.")
        }
        let device: StoredObject
        do {
            device = try await DeviceAuthentication.device(presenting: certificate, tenant: tenant.id, store: app.store, sealing: app.keySealing, now: now)
        } catch let refusal as DeviceAuthentication.Refusal {
            let code = switch refusal.reason {
            case .notFound: 700003
            case .disabled: 135011
            case .invalid: 50012
            }
            let error = OAuthError(error: "invalid_grant", code: code, description: refusal.message)
            // A certificate of this tenant's device CA names a device: its refusal is that device's failed sign-in.
            if let detail = refusal.device {
                await recordDeviceSignIn(detail, resourceID: nil, resourceDisplayName: nil, decision: nil, failure: (code, refusal.message))
            }
            throw error
        }
        do {
            try await checkDeviceAssertion(jwt, key: key, device: device, now: now)
        } catch let error as OAuthError {
            // The certificate is the device's, so the refusal is that device's failed sign-in (a forged or replayed
            // assertion included).
            await recordDeviceSignIn(.init(device: device), resourceID: nil, resourceDisplayName: nil, decision: nil,
                                     failure: (error.code, error.description))
            throw error
        }
        return device
    }

    /// The assertion's signature (by the certificate's key), its claims (the device as iss and sub, this token endpoint
    /// as audience, at most an hour of life) and its `jti`, spent here.
    private func checkDeviceAssertion(_ jwt: JWT, key: P256.Signing.PublicKey, device: StoredObject, now: Date) async throws {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: jwt.signature),
              key.isValidSignature(signature, for: SHA256.hash(data: Data(jwt.signingInput.utf8)))
        else { throw OAuthError(error: "invalid_grant", code: 50012, description: "The assertion's signature does not verify with the device certificate's key.") }
        let deviceID = device.body["deviceId"]?.stringValue
        guard jwt.claims["iss"]?.stringValue?.lowercased() == deviceID, jwt.claims["sub"]?.stringValue?.lowercased() == deviceID else {
            throw OAuthError(error: "invalid_grant", code: 50027, description: "The assertion's iss and sub must both be the device's id.")
        }
        guard isOwnTokenEndpoint(jwt.claims["aud"]?.stringValue) else {
            throw OAuthError(error: "invalid_grant", code: 700212, description: "The assertion's audience must be this tenant's token endpoint.")
        }
        let seconds = now.timeIntervalSince1970
        guard let exp = jwt.claims["exp"]?.doubleValue, exp > seconds - 300 else {
            throw OAuthError(error: "invalid_grant", code: 700024, description: "The assertion is expired.")
        }
        let issuedAt = jwt.claims["iat"]?.doubleValue ?? jwt.claims["nbf"]?.doubleValue ?? seconds
        guard exp - seconds <= 3600, exp - issuedAt <= 3600 else {
            throw OAuthError(error: "invalid_grant", code: 700024, description: "The assertion lives longer than one hour.")
        }
        if let nbf = jwt.claims["nbf"]?.doubleValue, nbf > seconds + 300 {
            throw OAuthError(error: "invalid_grant", code: 700024, description: "The assertion is not yet valid.")
        }
        guard let jti = jwt.claims["jti"]?.stringValue, !jti.isEmpty, jti.count <= 256 else {
            throw OAuthError(error: "invalid_grant", code: 50027, description: "The assertion must carry a jti.")
        }
        // Unlike an app's client assertion, a device's is spent by the token it buys: the device makes a new one each time.
        let tenantID = tenant.id
        let spent = try await app.store.write { tx in
            try await tx.consumeOnce(tenant: tenantID, key: "device-assertion:\(device.id):\(jti)",
                                     expiresAt: Timestamp.format(Date(timeIntervalSince1970: exp + 300)), now: Timestamp.format(now))
        }
        guard spent else { throw OAuthError(error: "invalid_grant", code: 50027, description: "The assertion was already used.") }
    }

    /// Records a device's own sign-in as the sign-in log records others: Graph's `signIn` with `deviceDetail` naming the
    /// device, no user (`userId` empty) and no client service principal. The device has no client application of its
    /// own: the application named is the Device Registration Service, whose certificate the device presents.
    func recordDeviceSignIn(_ device: SignInEvent.DeviceDetail, resourceID: String?, resourceDisplayName: String?,
                            decision: ConditionalAccessDecision?, failure: (code: Int, reason: String)?) async {
        await SignInLog(app: app, tenant: tenant.id).record(
            SignInEvent(kind: .servicePrincipal, principal: nil, appID: DeviceRegistration.serviceAppID,
                        appDisplayName: DeviceRegistration.actor.displayName, resourceID: resourceID,
                        resourceDisplayName: resourceDisplayName, decision: decision, failure: failure, device: device),
            request: request)
    }

    /// The resource's service principal and application id (Graph by its URL or id, another by identifier URI or appId).
    func deviceResource(_ name: String) async throws -> (StoredObject, String)? {
        let tenantID = tenant.id
        let isGraph = name.lowercased() == "https://graph.microsoft.com" || name.lowercased() == GraphPermissions.graphAppId
        return try await app.store.read { tx -> (StoredObject, String)? in
            var appID = isGraph ? GraphPermissions.graphAppId : (Identifier.isGUID(name) ? name.lowercased() : nil)
            if !isGraph, let object = try await tx.holder(tenant: tenantID, key: UniqueKey("identifierUris", name)),
               let application = try await tx.object(tenant: tenantID, id: object) {
                appID = application.body["appId"]?.stringValue
            }
            guard let appID, let id = try await tx.holder(tenant: tenantID, key: UniqueKey("servicePrincipal:appId", appID)),
                  let resource = try await tx.object(tenant: tenantID, id: id), resource.deletedAt == nil
            else { return nil }
            return (resource, appID)
        }
    }
}
