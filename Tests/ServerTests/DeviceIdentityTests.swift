import Crypto
import Foundation
import SwiftASN1
import Testing
import TesseraCore
import TesseraTesting
import X509

@testable import Server

/// A hybrid joined device signs in as itself: its certificate (from a real registration with a Samba KDC's ticket,
/// as DeviceRegistrationTests makes one) counts only while the device exists, is enabled and lists it; the token it
/// buys carries `deviceid`, and Conditional Access sees a hybrid joined device.
@Suite struct DeviceIdentityTests {
    struct Enrolled {
        let key: P256.Signing.PrivateKey
        let certificate: Certificate
        let der: [UInt8]
        let deviceID: String
        let objectID: String
    }

    /// A device registered through the registration service, with the key it holds.
    static func enroll(_ harness: Harness, _ fixture: DeviceRegistrationTests.Fixture) async throws -> Enrolled {
        let exchanged = await DeviceRegistrationTests.exchange(harness, try fixture.token("ws01-spnego.b64"))
        let jwt = try #require(exchanged.json["access_token"]?.stringValue, "\(exchanged.text)")
        let key = P256.Signing.PrivateKey()
        let registered = try await DeviceRegistrationTests.register(harness, authorization: "Bearer \(jwt)", csr: try DeviceRegistrationTests.csr(key))
        #expect(registered.status == 200, "\(registered.text)")
        let der = try #require(registered.json["Certificate"]?["RawBody"]?.stringValue.flatMap { Data(base64Encoded: $0) })
        let objectID = try #require(try await DeviceRegistrationTests.devices(harness).first?.id)
        return Enrolled(key: key, certificate: try Certificate(derEncoded: Array(der)), der: Array(der),
                        deviceID: try #require(registered.json["DeviceId"]?.stringValue), objectID: objectID)
    }

    /// The device's assertion: ES256 by `key`, the certificate in `x5c`, for `tenant`'s token endpoint.
    static func assertion(_ harness: Harness, key: P256.Signing.PrivateKey, certificate: [UInt8], deviceID: String,
                          tenant: String? = nil) throws -> String {
        let header: JSONValue = ["alg": "ES256", "typ": "JWT", "x5c": [.string(Data(certificate).base64EncodedString())]]
        let now = Int64(harness.clock.now.timeIntervalSince1970)
        let claims: JSONValue = [
            "iss": .string(deviceID), "sub": .string(deviceID), "jti": .string(UUID().uuidString),
            "aud": .string("\(Harness.base)/\(tenant ?? harness.tenant.tenantId)/oauth2/v2.0/token"),
            "iat": .int(now), "nbf": .int(now), "exp": .int(now + 600),
        ]
        let input = Base64URL.encode(Data(header.serialized.utf8)) + "." + Base64URL.encode(Data(claims.serialized.utf8))
        return input + "." + Base64URL.encode(try key.signature(for: Data(input.utf8)).rawRepresentation)
    }

    static func assertion(_ harness: Harness, _ device: Enrolled) throws -> String {
        try assertion(harness, key: device.key, certificate: device.der, deviceID: device.deviceID)
    }

    static func signIn(_ harness: Harness, _ assertion: String, tenant: String? = nil,
                       scope: String = "https://graph.microsoft.com/.default") async -> APIResponse {
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion), ("scope", scope)]
        return await harness.send("POST", "/\(tenant ?? harness.tenant.tenantId)/oauth2/v2.0/token",
                                  headers: ["content-type": "application/x-www-form-urlencoded"], body: Array(AuthorizeEndpoint.encode(form).utf8))
    }

    static func refusal(_ response: APIResponse) -> (String?, Int64?) {
        (response.json["error"]?.stringValue, response.json["error_codes"]?.arrayValue?.first?.intValue)
    }

    @Test func theDeviceSignsInAsItselfAndItsTokenCarriesItsDeviceId() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let device = try await Self.enroll(harness, fixture)
            let assertion = try Self.assertion(harness, device)
            let response = await Self.signIn(harness, assertion)
            #expect(response.status == 200, "\(response.text)")
            let token = try #require(response.json["access_token"]?.stringValue.flatMap(JWT.decode))
            #expect(token.verify(with: harness.app.signingKey.publicKey))
            #expect(token.claims["deviceid"]?.stringValue == device.deviceID)
            #expect(token.claims["oid"]?.stringValue == device.objectID && token.claims["sub"]?.stringValue == device.objectID)
            #expect(token.claims["idtyp"]?.stringValue == "device")
            #expect(token.claims["aud"]?.stringValue == "https://graph.microsoft.com")
            #expect(token.claims["tid"]?.stringValue == harness.tenant.tenantId)
            #expect(token.claims["roles"] == nil, "a device holds no application permissions")

            // The assertion buys one token; a copy of it buys none.
            let replayed = await Self.signIn(harness, assertion)
            #expect(replayed.status == 400 && Self.refusal(replayed) == ("invalid_grant", 50027), "\(replayed.text)")
            // The device's certificate with an assertion signed by another key.
            let forged = try Self.assertion(harness, key: .init(), certificate: device.der, deviceID: device.deviceID)
            let refused = await Self.signIn(harness, forged)
            #expect(refused.status == 400 && Self.refusal(refused) == ("invalid_grant", 50012), "\(refused.text)")
            // An assertion for this tenant's endpoint is not one for another's.
            let elsewhere = try Self.assertion(harness, key: device.key, certificate: device.der, deviceID: device.deviceID, tenant: UUID().uuidString)
            #expect(Self.refusal(await Self.signIn(harness, elsewhere)) == ("invalid_grant", 700212))
        }
    }

    @Test func deletingOrDisablingTheDeviceRevokesItsCertificateAtOnce() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let device = try await Self.enroll(harness, fixture)
            let tenant = harness.tenant.tenantId, store = harness.app.store
            func check() async throws -> StoredObject {
                try await DeviceAuthentication.device(presenting: device.certificate, tenant: tenant, store: store, sealing: harness.app.keySealing,
                                                  now: harness.clock.now)
            }
            #expect(try await check().id == device.objectID)
            let admin = try await harness.accessToken()

            let disabled = await harness.graph("PATCH", "devices/\(device.objectID)", token: admin, json: ["accountEnabled": false])
            #expect(disabled.status == 204, "\(disabled.text)")
            await #expect(throws: DeviceAuthentication.Refusal(.disabled, message: "The device \(device.deviceID) is disabled.")) { try await check() }
            let whileDisabled = await Self.signIn(harness, try Self.assertion(harness, device))
            #expect(whileDisabled.status == 400 && Self.refusal(whileDisabled) == ("invalid_grant", 135011), "\(whileDisabled.text)")

            _ = await harness.graph("PATCH", "devices/\(device.objectID)", token: admin, json: ["accountEnabled": true])
            #expect(await Self.signIn(harness, try Self.assertion(harness, device)).status == 200)

            let deleted = await harness.graph("DELETE", "devices/\(device.objectID)", token: admin)
            #expect(deleted.status == 204, "\(deleted.text)")
            await #expect(throws: DeviceAuthentication.Refusal(.notFound, message: "The device \(device.deviceID) no longer exists.")) { try await check() }
            let afterDelete = await Self.signIn(harness, try Self.assertion(harness, device))
            #expect(afterDelete.status == 400 && Self.refusal(afterDelete) == ("invalid_grant", 700003), "\(afterDelete.text)")
        }
    }

    @Test func theDevicesSignInsAreInTheSignInLogWithItsDeviceDetailAndFilterable() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let device = try await Self.enroll(harness, fixture)
            let admin = try await harness.accessToken()
            #expect(await Self.signIn(harness, try Self.assertion(harness, device)).status == 200)
            // The device's certificate with an assertion signed by another key: a failed sign-in of that device.
            let forged = try Self.assertion(harness, key: .init(), certificate: device.der, deviceID: device.deviceID)
            #expect(Self.refusal(await Self.signIn(harness, forged)) == ("invalid_grant", 50012))
            _ = await harness.graph("PATCH", "devices/\(device.objectID)", token: admin, json: ["accountEnabled": false])
            #expect(Self.refusal(await Self.signIn(harness, try Self.assertion(harness, device))) == ("invalid_grant", 135011))
            _ = await harness.graph("DELETE", "devices/\(device.objectID)", token: admin)
            #expect(Self.refusal(await Self.signIn(harness, try Self.assertion(harness, device))) == ("invalid_grant", 700003))
            // A certificate of no CA of this tenant names no device the log could trust: nothing is recorded for it.
            let stranger = try await DeviceCertificateAuthority.loadOrCreate(tenant: UUID().uuidString.lowercased(), store: harness.app.store, sealing: harness.app.keySealing,
                                                                             now: harness.clock.now)
            let strangerCertificate = try stranger.issue(for: try DeviceRegistrationTests.csr(device.key), deviceID: device.deviceID,
                                                         now: harness.clock.now)
            let foreign = try Self.assertion(harness, key: device.key, certificate: try strangerCertificate.derBytes, deviceID: device.deviceID)
            #expect(Self.refusal(await Self.signIn(harness, foreign)) == ("invalid_grant", 50012))

            func log(_ filter: String) async -> [JSONValue] {
                let response = await harness.graph("GET", "auditLogs/signIns", token: admin, query: [("$filter", filter)])
                #expect(response.status == 200, "\(response.text)")
                return response.json["value"]?.arrayValue ?? []
            }
            let records = await log("deviceDetail/deviceId eq '\(device.deviceID)'")
            // Signed in, forged, disabled, deleted (all at the test clock's one instant: found by their codes).
            #expect(records.compactMap { $0["status"]?["errorCode"]?.intValue }.sorted() == [0, 50012, 135011, 700003], "\(records)")
            func record(_ code: Int64) throws -> JSONValue {
                try #require(records.first { $0["status"]?["errorCode"]?.intValue == code })
            }
            let (succeeded, forgedRecord, disabled, deleted) = (try record(0), try record(50012), try record(135011), try record(700003))
            #expect(forgedRecord["deviceDetail"]?["deviceId"]?.stringValue == device.deviceID)

            #expect(succeeded["status"]?["errorCode"]?.intValue == 0)
            #expect(succeeded["appId"]?.stringValue == DeviceRegistration.serviceAppID)
            #expect(succeeded["resourceId"]?.stringValue == GraphPermissions.graphAppId)
            #expect(succeeded["userId"]?.stringValue == "" && succeeded["isInteractive"] == .bool(false))
            #expect(succeeded["signInEventTypes"] == ["servicePrincipal"])
            #expect(succeeded["conditionalAccessStatus"]?.stringValue == "notApplied")
            let detail = try #require(succeeded["deviceDetail"])
            #expect(detail["deviceId"]?.stringValue == device.deviceID)
            #expect(detail["displayName"]?.stringValue == "WS01")
            #expect(detail["trustType"]?.stringValue == "Hybrid Azure AD joined")
            #expect(detail["isManaged"] == .bool(true) && detail["isCompliant"] == .bool(false))
            #expect(detail["operatingSystem"]?.stringValue != nil)

            #expect(disabled["status"]?["errorCode"]?.intValue == 135011)
            #expect(disabled["status"]?["failureReason"]?.stringValue == "The device \(device.deviceID) is disabled.")
            #expect(disabled["deviceDetail"]?["trustType"]?.stringValue == "Hybrid Azure AD joined")
            #expect(deleted["status"]?["errorCode"]?.intValue == 700003)
            #expect(deleted["deviceDetail"]?["deviceId"]?.stringValue == device.deviceID && deleted["deviceDetail"]?["displayName"] == .null)

            // Filterable as the other records are: by the failure's code, by the device's trust type.
            #expect(await log("status/errorCode eq 135011").map { $0["id"] } == [disabled["id"]])
            #expect(await log("deviceDetail/trustType eq 'Hybrid Azure AD joined'").count == 3)  // the deleted one is unknown
            #expect(await log("appId eq '\(DeviceRegistration.serviceAppID)' and status/errorCode eq 0").count == 1)
        }
    }

    @Test func aCertificateNotFromThisTenantsDeviceCAOrOutOfItsValidityIsRefused() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let device = try await Self.enroll(harness, fixture)
            let now = harness.clock.now
            let csr = try DeviceRegistrationTests.csr(device.key)

            // Another tenant's device CA, for the same device id and key.
            let fabrikam = try await TenantProvisioner(directory: harness.app.directory).create(name: "Fabrikam", domain: "fabrikam.test")
            let theirs = try await DeviceCertificateAuthority.loadOrCreate(tenant: fabrikam.tenantId, store: harness.app.store, sealing: harness.app.keySealing, now: now)
            let foreign = try theirs.issue(for: csr, deviceID: device.deviceID, now: now)
            // A CA made to look like this tenant's: the same name, another key.
            let name = try DistinguishedName {
                CommonName("MS-Organization-Access")
                OrganizationalUnitName(harness.tenant.tenantId)
            }
            let impostorKey = P256.Signing.PrivateKey()
            let impostor = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(device.key.publicKey), notValidBefore: now.addingTimeInterval(-60),
                notValidAfter: now.addingTimeInterval(86_400), issuer: name, subject: try DistinguishedName { CommonName(device.deviceID) },
                signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(), issuerPrivateKey: .init(impostorKey))

            for certificate in [foreign, impostor] {
                let response = await Self.signIn(harness, try Self.assertion(harness, key: device.key, certificate: try certificate.derBytes,
                                                                             deviceID: device.deviceID))
                #expect(response.status == 400 && Self.refusal(response) == ("invalid_grant", 50012), "\(response.text)")
                await #expect(throws: DeviceAuthentication.Refusal(message: "The certificate was not issued by this tenant's device certificate authority.")) {
                    try await DeviceAuthentication.device(presenting: certificate, tenant: harness.tenant.tenantId, store: harness.app.store,
                                                          sealing: harness.app.keySealing, now: now)
                }
            }
            // A certificate this tenant's CA issued for the device but which the device does not list (as one a
            // re-registration replaced): refused.
            let ours = try await DeviceCertificateAuthority.loadOrCreate(tenant: harness.tenant.tenantId, store: harness.app.store, sealing: harness.app.keySealing, now: now)
            let unlisted = try ours.issue(for: csr, deviceID: device.deviceID, now: now)
            let replaced = await Self.signIn(harness, try Self.assertion(harness, key: device.key, certificate: try unlisted.derBytes,
                                                                         deviceID: device.deviceID))
            #expect(replaced.status == 400 && Self.refusal(replaced) == ("invalid_grant", 50012), "\(replaced.text)")
            #expect(replaced.json["error_description"]?.stringValue?.contains("no longer lists this certificate") == true, "\(replaced.text)")

            // The genuine certificate at the other tenant's endpoint.
            let there = await Self.signIn(harness, try Self.assertion(harness, key: device.key, certificate: device.der, deviceID: device.deviceID,
                                                                      tenant: fabrikam.tenantId), tenant: fabrikam.tenantId)
            #expect(there.status == 400 && Self.refusal(there) == ("invalid_grant", 50012), "\(there.text)")

            // Ten years on, the certificate has lapsed though the device is still there.
            harness.clock.advance(DeviceCertificateAuthority.deviceCertificateLifetime + 86_400)
            let lapsed = await Self.signIn(harness, try Self.assertion(harness, device))
            #expect(lapsed.status == 400 && lapsed.json["error_description"]?.stringValue?.contains("validity") == true, "\(lapsed.text)")
        }
    }

    /// Whether `certificate`'s signature is `authority`'s.
    static func issued(_ certificate: Certificate, by authority: Certificate) -> Bool {
        authority.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    @Test func aRotatedDeviceCAKeepsTheDevicesItCertifiedSigningInUntilItIsRetiredAndRegistrationsUseTheNewOne() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let tenant = harness.tenant.tenantId, store = harness.app.store, sealing = harness.app.keySealing
            // Two devices registered before the rotation: the computer through the registration service, and another.
            let before = try await Self.enroll(harness, fixture)
            let legacy = try await CrossTenantDeviceTrustTests.register(harness, tenant: tenant, trustType: "ServerAd", isCompliant: false)
            let old = try #require(try await DeviceCertificateAuthority.load(tenant: tenant, store: store, sealing: sealing)).certificate
            #expect(Self.issued(before.certificate, by: old))

            harness.clock.advance(60)
            let rotatedAt = harness.clock.now
            let issuers = try await DeviceCertificateAuthority.rotate(tenant: tenant, store: store, sealing: sealing, now: rotatedAt)
            let new = try #require(try await DeviceCertificateAuthority.load(tenant: tenant, store: store, sealing: sealing)).certificate
            #expect(new != old && new.subject == old.subject)
            #expect(issuers.map(\.certificate) == [new, old])
            #expect(issuers.map(\.state) == [.current, .previous(acceptedUntil: rotatedAt.addingTimeInterval(DeviceCertificateAuthority.deviceCertificateLifetime + 300))])

            // The devices registered before the rotation still sign in, with their certificates of the previous CA.
            harness.clock.advance(60)
            for (key, der, deviceID) in [(before.key, before.der, before.deviceID), (legacy.key, legacy.der, legacy.deviceID)] {
                let response = await Self.signIn(harness, try Self.assertion(harness, key: key, certificate: der, deviceID: deviceID))
                #expect(response.status == 200, "\(response.text)")
            }
            // A device registering now gets its certificate from the new CA.
            let after = try await CrossTenantDeviceTrustTests.register(harness, tenant: tenant, trustType: "Workplace", isCompliant: false)
            let afterCertificate = try Certificate(derEncoded: after.der)
            #expect(Self.issued(afterCertificate, by: new) && !Self.issued(afterCertificate, by: old))

            // Retired: the previous CA's certificates are refused, saying why; the new CA's still sign in.
            harness.clock.advance(60)
            let retiredAt = harness.clock.now
            let retired = try await DeviceCertificateAuthority.retire(tenant: tenant, store: store, now: retiredAt, thumbprint: nil)
            #expect(retired.map(\.state) == [.retired(retiredAt)])
            let message = "The device certificate was issued by this tenant's previous device certificate authority, retired on "
                + "\(Timestamp.format(retiredAt)): the device must register again for a certificate from the current one."
            let refused = await Self.signIn(harness, try Self.assertion(harness, key: legacy.key, certificate: legacy.der, deviceID: legacy.deviceID))
            #expect(refused.status == 400 && Self.refusal(refused) == ("invalid_grant", 50012), "\(refused.text)")
            #expect(refused.json["error_description"]?.stringValue?.contains(message) == true, "\(refused.text)")
            await #expect(throws: DeviceAuthentication.Refusal(message: message)) {
                try await DeviceAuthentication.device(presenting: before.certificate, tenant: tenant, store: store, sealing: sealing, now: harness.clock.now)
            }
            // The refusal is the device's failed sign-in in the log.
            let log = await harness.graph("GET", "auditLogs/signIns", token: try await harness.accessToken(),
                                          query: [("$filter", "deviceDetail/deviceId eq '\(legacy.deviceID)'")])
            #expect(log.json["value"]?.arrayValue?.contains { $0["status"]?["errorCode"]?.intValue == 50012
                && $0["status"]?["failureReason"]?.stringValue?.contains("retired") == true } == true, "\(log.text)")
            let afterSignIn = await Self.signIn(harness, try Self.assertion(harness, key: after.key, certificate: after.der, deviceID: after.deviceID))
            #expect(afterSignIn.status == 200, "\(afterSignIn.text)")

            // The computer registers again (another authenticator of it): its certificate is the new CA's, and signs in.
            let again = try await DeviceRegistrationTests.register(harness, authorization: "Negotiate \(try fixture.token("ws01-krb5.b64"))",
                                                                   csr: try DeviceRegistrationTests.csr(before.key))
            #expect(again.status == 200, "\(again.text)")
            let renewed = try Certificate(derEncoded: Array(try #require(again.json["Certificate"]?["RawBody"]?.stringValue.flatMap { Data(base64Encoded: $0) })))
            #expect(Self.issued(renewed, by: new) && !Self.issued(renewed, by: old))
            let renewedSignIn = await Self.signIn(harness, try Self.assertion(harness, key: before.key, certificate: try renewed.derBytes, deviceID: before.deviceID))
            #expect(renewedSignIn.status == 200, "\(renewedSignIn.text)")
        }
    }

    @Test func aPolicyRequiringAHybridJoinedDeviceIsMetByTheDeviceAndNotByAnApp() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let device = try await Self.enroll(harness, fixture)
            let admin = try await harness.accessToken()
            let created = await harness.graph("POST", ConditionalAccessTests.policies, token: admin, json: [
                "displayName": "Workloads only from hybrid joined devices", "state": "enabled",
                "conditions": [
                    "users": ["includeUsers": ["None"]],
                    "clientApplications": ["includeServicePrincipals": ["ServicePrincipalsInMyTenant"]],
                    "applications": ["includeApplications": ["All"]],
                ],
                "grantControls": ["operator": "OR", "builtInControls": ["domainJoinedDevice"]]])
            #expect(created.status == 201, "\(created.text)")

            let app = await harness.clientCredentials(from: "198.51.100.7")
            #expect(app.status == 400 && Self.refusal(app) == ("invalid_grant", 53003), "\(app.text)")
            let signedIn = await Self.signIn(harness, try Self.assertion(harness, device))
            #expect(signedIn.status == 200, "\(signedIn.text)")

            // The same device were it Entra joined rather than hybrid joined: the control is not met.
            _ = try await harness.app.directory.update(tenant: harness.tenant.tenantId, id: device.objectID, kind: .device,
                                                       patch: ["trustType": "AzureAd"], actor: DeviceRegistration.actor, allowReadOnly: true)
            let entraJoined = await Self.signIn(harness, try Self.assertion(harness, device))
            #expect(entraJoined.status == 400 && Self.refusal(entraJoined) == ("invalid_grant", 53003), "\(entraJoined.text)")
        }
    }
}
