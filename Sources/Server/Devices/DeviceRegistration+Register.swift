import Crypto
import Foundation
import Logging
import SwiftASN1
import TesseraCore
import X509

extension DeviceRegistration {
    /// What the device sends (MS-DVRJ's join request, the members Tessera reads).
    struct JoinRequest {
        var certificateRequest: CertificateSigningRequest
        var displayName: String?
        var deviceType: String?
        var osVersion: String?

        init(_ body: [UInt8]) throws {
            guard case .object(let json)? = try? JSONParser.parse(body) else {
                throw DeviceRegistrationError.badRequest("The body must be a JSON object with CertificateRequest.")
            }
            guard let request = json["CertificateRequest"], request["Type"]?.stringValue?.lowercased() == "pkcs10",
                  let data = request["Data"]?.stringValue, let der = Data(base64Encoded: data)
            else {
                throw DeviceRegistrationError.badRequest(
                    "CertificateRequest must be {\"Type\":\"pkcs10\",\"Data\":\"<base64 DER of a PKCS #10 request>\"}.")
            }
            do {
                certificateRequest = try CertificateSigningRequest(derEncoded: Array(der))
            } catch {
                throw DeviceRegistrationError.badRequest("CertificateRequest.Data is not a DER PKCS #10 certificate request.")
            }
            func text(_ name: String, limit: Int) throws -> String? {
                guard let value = json[name], value != .null else { return nil }
                guard let string = value.stringValue, !string.isEmpty, string.count <= limit, !string.contains("\0") else {
                    throw DeviceRegistrationError.badRequest("\(name) must be a string of 1 to \(limit) characters.")
                }
                return string
            }
            displayName = try text("DeviceDisplayName", limit: 256)
            deviceType = try text("DeviceType", limit: 64)
            osVersion = try text("OSVersion", limit: 64)
        }
    }

    /// The registration: the caller proved by the exchanged token or by a ticket, then the certificate and the device.
    func register(_ request: APIRequest, tenant: TenantRecord, now: Date) async throws -> APIResponse {
        var reply: [UInt8]? = nil
        let computer: ComputerIdentity
        let header = request.header("authorization") ?? ""
        if header.lowercased().hasPrefix("bearer ") {
            computer = try await redeem(String(header.dropFirst("bearer ".count)), tenant: tenant, request: request, now: now)
        } else {
            (computer, reply) = try await authenticate(request, tenant: tenant, now: now)
        }
        let join = try JoinRequest(request.body)

        let existing = try await app.store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant.id, kinds: [.device],
                                           filter: .compare(PropertyPath(["onPremisesSecurityIdentifier"]), .eq, .string(computer.sid)),
                                           limit: 1)).first
        }
        let deviceID = existing?.body["deviceId"]?.stringValue ?? computer.deviceID ?? UUID().uuidString.lowercased()
        let authority = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant.id, store: app.store, sealing: app.keySealing, now: now)
        let certificate = try authority.issue(for: join.certificateRequest, deviceID: deviceID, now: now)
        let der = try certificate.derBytes
        let thumbprint = Insecure.SHA1.hash(data: der).map { String(format: "%02X", $0) }.joined()

        var body: [String: JSONValue] = [
            "displayName": .string(join.displayName ?? computer.computerName), "deviceId": .string(deviceID),
            "operatingSystem": .string(join.deviceType ?? computer.operatingSystem ?? "Windows"),
            "operatingSystemVersion": .string(join.osVersion ?? computer.operatingSystemVersion ?? ""),
            "trustType": "ServerAd", "profileType": "RegisteredDevice",
            "onPremisesSecurityIdentifier": .string(computer.sid),
            "alternativeSecurityIds": [try Self.alternativeSecurityID(certificate, thumbprint: thumbprint)],
        ]
        if let existing {
            // Re-registering renews the certificate; it never enables a device an administrator disabled.
            body["registrationDateTime"] = .string(Timestamp.format(now))
            _ = try await app.directory.update(tenant: tenant.id, id: existing.id, kind: .device, patch: body, actor: Self.actor,
                                               allowReadOnly: true)
        } else {
            body["accountEnabled"] = true
            _ = try await app.directory.create(tenant: tenant.id, kind: .device, body: body, actor: Self.actor, allowReadOnly: true)
        }
        app.logger.info("device registered", metadata: ["tenant": "\(tenant.id)", "deviceId": "\(deviceID)", "computer": "\(computer.accountName)"])
        var response = APIResponse.json([
            "Certificate": ["Thumbprint": .string(thumbprint), "RawBody": .string(Data(der).base64EncodedString())],
            "DeviceId": .string(deviceID), "MembershipChanges": [],
        ], headers: [("Cache-Control", "no-store")])
        if let reply { response.headers.append(("WWW-Authenticate", "Negotiate " + Data(reply).base64EncodedString())) }
        return response
    }

    /// Checks the exchanged token (this deployment's signature, this tenant, for the registration service, alive) and
    /// spends it, so it registers once.
    func redeem(_ token: String, tenant: TenantRecord, request: APIRequest, now: Date) async throws -> ComputerIdentity {
        guard let jwt = JWT.decode(token.trimmingCharacters(in: .whitespaces)), jwt.verify(with: app.signingKeys),
              jwt.claims["iss"]?.stringValue == Self.issuer(tenant: tenant.id, base: request.baseURL),
              jwt.claims["aud"]?.stringValue == Self.serviceAppID, jwt.claims["tid"]?.stringValue == tenant.id,
              let expires = jwt.claims["exp"]?.intValue, let jti = jwt.claims["jti"]?.stringValue
        else {
            throw DeviceRegistrationError.invalidToken("The token is not one this service's ExchangeForJwt issued for this tenant.")
        }
        guard Int64(now.timeIntervalSince1970) < expires else {
            throw DeviceRegistrationError.invalidToken("The token expired: exchange a new Kerberos ticket at ExchangeForJwt.")
        }
        guard let computer = ComputerIdentity(claims: jwt.claims) else {
            throw DeviceRegistrationError.missingOnPremisesIdentity("the token carries no on-premises SID (onprem_sid)")
        }
        let tenantID = tenant.id
        let spent = try await app.store.write { tx in
            try await tx.consumeOnce(tenant: tenantID, key: "drs-jwt:" + jti,
                                     expiresAt: Timestamp.format(Date(timeIntervalSince1970: TimeInterval(expires))), now: Timestamp.format(now))
        }
        guard spent else { throw DeviceRegistrationError.invalidToken("The token was already used to register a device.") }
        return computer
    }

    /// Entra's alternative security id of a device certificate: type 2, the key the UTF-16LE text
    /// `X509:<SHA1-TP-PUBKEY>` followed by the certificate's SHA-1 thumbprint and the base64 SHA-256 of its public key.
    static func alternativeSecurityID(_ certificate: Certificate, thumbprint: String) throws -> JSONValue {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        let keyHash = Data(SHA256.hash(data: serializer.serializedBytes)).base64EncodedString()
        let text = "X509:<SHA1-TP-PUBKEY>" + thumbprint + keyHash
        let utf16 = text.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        return ["type": 2, "identityProvider": .null, "key": .string(Data(utf16).base64EncodedString())]
    }
}
