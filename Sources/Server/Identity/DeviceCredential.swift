import Crypto
import Foundation
import Logging
import SwiftASN1
import TesseraCore
import X509

/// How a user's sign-in learns the device it comes from: the device proves itself on the request with an
/// `x-ms-DeviceCredential` header (the name Windows' browser single sign-on gives its device proof), a JWT signed by
/// the device's key with its certificate in `x5c` — the same proof the device's own sign-in uses (``TokenEndpoint``'s
/// JWT bearer grant): ES256, `iss` and `sub` the device's `deviceId`, `aud` the URL of the endpoint it is presented to
/// (this tenant's `/authorize` or `/token`), at most ten minutes of life. It is not spent on use (a browser sends it
/// with each request of a sign-in), so the audience and the short life are what bound a copy.
///
/// What Tessera can know about the device, and where that counts:
/// - a device registered in the tenant signed in to: all its properties (`trustType`, `isCompliant`, the rest for
///   device filters), for the tenant's own users and its guests alike;
/// - a device registered in an external user's home tenant of this deployment (the certificate chains to that
///   tenant's device CA and the device is alive there): only the claims the tenant's `inboundTrust` for that home
///   tenant accepts — compliance under `isCompliantDeviceAccepted`, hybrid join under
///   `isHybridAzureADJoinedDeviceAccepted` — and nothing else (``CrossTenantAccess/partnerDevice(isCompliant:trustType:)``);
/// - anything else (another tenant's device for a member, a user of another deployment, a proof that does not verify):
///   no device, as Entra treats an unregistered one.
struct DeviceCredential {
    /// The header's name (compared case-insensitively).
    static let headerName = "x-ms-DeviceCredential"
    /// The longest life a credential may claim.
    static let lifetime: TimeInterval = 600
    /// The clock skew allowed either way.
    static let skew: TimeInterval = 300

    let jwt: JWT
    let certificate: Certificate
    let key: P256.Signing.PublicKey
    /// Where it was presented: the endpoint's URL, its audience must be exactly that.
    let endpoint: String

    /// The request's credential, nil without one or when it is not an ES256 JWT carrying a P-256 certificate.
    init?(request: APIRequest) {
        guard let raw = request.header(Self.headerName), let jwt = JWT.decode(raw.trimmingCharacters(in: .whitespaces)),
              jwt.header["alg"]?.stringValue == "ES256",
              let first = jwt.header["x5c"]?.arrayValue?.first?.stringValue, let der = Data(base64Encoded: first),
              let certificate = try? Certificate(derEncoded: Array(der)), let key = P256.Signing.PublicKey(certificate.publicKey)
        else { return nil }
        self.jwt = jwt
        self.certificate = certificate
        self.key = key
        endpoint = request.baseURL + "/" + request.segments.joined(separator: "/")
    }

    /// The device of `tenant` this credential proves, nil when it proves none there (the reason is logged, no token).
    func device(tenant: String, app: TesseraApp) async throws -> StoredObject? {
        let now = app.clock.now
        let device: StoredObject
        do {
            device = try await DeviceAuthentication.device(presenting: certificate, tenant: tenant, store: app.store, sealing: app.keySealing, now: now)
        } catch let refusal as DeviceAuthentication.Refusal {
            app.logger.debug("device credential not accepted", metadata: ["tenant": .string(tenant), "reason": .string(refusal.message)])
            return nil
        }
        guard let reason = problem(device: device, now: now) else { return device }
        app.logger.notice("device credential refused", metadata: ["tenant": .string(tenant), "reason": .string(reason)])
        return nil
    }

    /// What is wrong with the proof itself, nil when nothing is.
    func problem(device: StoredObject, now: Date) -> String? {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: jwt.signature),
              key.isValidSignature(signature, for: SHA256.hash(data: Data(jwt.signingInput.utf8)))
        else { return "its signature does not verify with the device certificate's key" }
        let deviceID = device.body["deviceId"]?.stringValue?.lowercased()
        guard jwt.claims["iss"]?.stringValue?.lowercased() == deviceID, jwt.claims["sub"]?.stringValue?.lowercased() == deviceID else {
            return "its iss and sub are not the device's id"
        }
        guard jwt.claims["aud"]?.stringValue == endpoint else { return "its audience is not \(endpoint)" }
        let seconds = now.timeIntervalSince1970
        guard let exp = jwt.claims["exp"]?.doubleValue, exp > seconds - Self.skew else { return "it is expired" }
        let issuedAt = jwt.claims["iat"]?.doubleValue ?? seconds
        guard exp - issuedAt <= Self.lifetime, exp - seconds <= Self.lifetime + Self.skew else { return "it lives longer than ten minutes" }
        if let nbf = jwt.claims["nbf"]?.doubleValue, nbf > seconds + Self.skew { return "it is not yet valid" }
        return nil
    }

    /// What Conditional Access sees of the device for a user of `tenantID` whose home, when external, is `home`.
    func facts(app: TesseraApp, tenantID: String, home: CrossTenantSignIn.Home?) async throws -> DeviceFacts? {
        if let device = try await device(tenant: tenantID, app: app) { return Self.facts(of: device) }
        // A device of the home tenant, trusted as far as this tenant's inbound trust for that tenant goes.
        guard let home, !home.isRemote, home.tenantID != tenantID, let device = try await device(tenant: home.tenantID, app: app) else { return nil }
        return home.access.partnerDevice(isCompliant: device.body["isCompliant"] == .bool(true), trustType: device.body["trustType"]?.stringValue)
    }

    /// A registered device's facts, as Conditional Access reads them.
    static func facts(of device: StoredObject) -> DeviceFacts {
        DeviceFacts(deviceId: device.body["deviceId"]?.stringValue ?? "", displayName: device.body["displayName"]?.stringValue,
                    trustType: device.body["trustType"]?.stringValue, isCompliant: device.body["isCompliant"] == .bool(true),
                    operatingSystem: device.body["operatingSystem"]?.stringValue)
    }
}
