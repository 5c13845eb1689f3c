import Crypto
import Foundation
import SwiftASN1
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import X509

/// A user's sign-in learns its device from the device's credential (`x-ms-DeviceCredential`, signed by the device's
/// key); a device of an external user's home tenant meets Contoso's device grant controls only as far as Contoso's
/// `inboundTrust` for that tenant accepts its claims, while Contoso's own devices always count for its own users.
@Suite("Inbound trust of partner devices in Conditional Access, and user sign-ins from registered devices")
struct CrossTenantDeviceTrustTests {
    struct Device {
        let key: P256.Signing.PrivateKey
        let der: [UInt8]
        let deviceID: String
        let objectID: String
    }

    /// A device registered in `tenant` as the registration service registers one: a certificate from the tenant's
    /// device CA for the device's key, listed in its `alternativeSecurityIds`.
    static func register(_ h: Harness, tenant: String, trustType: String, isCompliant: Bool) async throws -> Device {
        let key = P256.Signing.PrivateKey(), deviceID = UUID().uuidString.lowercased()
        let authority = try await DeviceCertificateAuthority.loadOrCreate(tenant: tenant, store: h.app.store, sealing: h.app.keySealing, now: h.clock.now)
        let certificate = try authority.issue(for: try DeviceRegistrationTests.csr(key), deviceID: deviceID, now: h.clock.now)
        let der = try certificate.derBytes
        let thumbprint = Insecure.SHA1.hash(data: der).map { String(format: "%02X", $0) }.joined()
        let device = try await h.app.directory.create(tenant: tenant, kind: .device, body: [
            "displayName": .string("WS-\(deviceID.prefix(4))"), "deviceId": .string(deviceID), "operatingSystem": "Windows", "operatingSystemVersion": "10.0.26100",
            "accountEnabled": true,
            "trustType": .string(trustType), "isCompliant": .bool(isCompliant), "profileType": "RegisteredDevice",
            "alternativeSecurityIds": [try DeviceRegistration.alternativeSecurityID(certificate, thumbprint: thumbprint)],
        ], actor: DeviceRegistration.actor, allowReadOnly: true)
        return Device(key: key, der: der, deviceID: deviceID, objectID: device.id)
    }

    /// The device's credential for `endpoint` (`authorize` or `token` of `tenant`), signed by `key` (the device's own
    /// unless given), living `life` seconds.
    static func credential(_ h: Harness, _ device: Device, tenant: String, endpoint: String = "authorize",
                           key: P256.Signing.PrivateKey? = nil, life: Int64 = 300, issuedAgo: Int64 = 0) throws -> String {
        let header: JSONValue = ["alg": "ES256", "typ": "JWT", "x5c": [.string(Data(device.der).base64EncodedString())]]
        let now = Int64(h.clock.now.timeIntervalSince1970) - issuedAgo
        let claims: JSONValue = [
            "iss": .string(device.deviceID), "sub": .string(device.deviceID),
            "aud": .string("\(Harness.base)/\(tenant)/oauth2/v2.0/\(endpoint)"), "iat": .int(now), "exp": .int(now + life),
        ]
        let input = Base64URL.encode(Data(header.serialized.utf8)) + "." + Base64URL.encode(Data(claims.serialized.utf8))
        return input + "." + Base64URL.encode(try (key ?? device.key).signature(for: Data(input.utf8)).rawRepresentation)
    }

    /// Alice's sign-in to Contoso's application, following Tessera's redirects as the browser does, every request
    /// carrying `credential` when given and `headers` (as a proxy on the way would add them).
    static func guestSignIn(_ w: CrossTenantB2BTests.World, credential: String?, headers extra: [String: String] = [:],
                            scope: String = "openid") async throws -> APIResponse {
        let params = [("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", scope),
                      ("code_challenge", CrossTenantB2BTests.World.challenge), ("code_challenge_method", "S256"), ("login_hint", "alice@fabrikam.test")]
        var cookies = [try await w.homeCookie()]
        var path = "/\(w.contoso)/oauth2/v2.0/authorize", query = params.map { (name: $0.0, value: $0.1) }
        for _ in 0..<6 {
            var headers = extra.merging(["cookie": cookies.joined(separator: "; ")]) { $1 }
            if let credential { headers[DeviceCredential.headerName.lowercased()] = credential }
            let response = await w.h.send("GET", path, query: query, headers: headers)
            guard response.status == 302, let location = AuthorizeTests.location(response), location.hasPrefix("/"),
                  let url = URLComponents(string: Harness.base + location) else { return response }
            if let set = response.headers.first(where: { $0.name == "Set-Cookie" })?.value { cookies.append(String(set.split(separator: ";")[0])) }
            (path, query) = (url.path, url.queryItems?.map { (name: $0.name, value: $0.value ?? "") } ?? [])
        }
        Issue.record("too many redirects")
        return APIResponse(status: 500, headers: [], body: [])
    }

    static func requireDevice(_ h: Harness, token: String, control: String, users: JSONValue) async throws {
        let policy = await h.graph("POST", "identity/conditionalAccess/policies", token: token, json: [
            "displayName": "Managed devices only", "state": "enabled",
            "conditions": ["users": users, "applications": ["includeApplications": ["All"]]],
            "grantControls": ["operator": "OR", "builtInControls": [.string(control)]]])
        #expect(policy.status == 201, "\(policy.text)")
    }

    static let guests: JSONValue = ["includeGuestsOrExternalUsers": [
        "guestOrExternalUserTypes": "b2bCollaborationGuest",
        "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"]]]

    static func trust(_ w: CrossTenantB2BTests.World, compliant: Bool, hybrid: Bool) async -> Int {
        let trust: JSONValue = ["isMfaAccepted": false, "isCompliantDeviceAccepted": .bool(compliant), "isHybridAzureADJoinedDeviceAccepted": .bool(hybrid)]
        let path = "policies/crossTenantAccessPolicy/partners"
        let existing = await w.h.graph("GET", "\(path)/\(w.fabrikam.tenantId)", token: w.contosoToken)
        return existing.status == 200
            ? await w.h.graph("PATCH", "\(path)/\(w.fabrikam.tenantId)", token: w.contosoToken, json: ["inboundTrust": trust]).status
            : await w.h.graph("POST", path, token: w.contosoToken, json: ["tenantId": .string(w.fabrikam.tenantId), "inboundTrust": trust]).status
    }

    static func isCode(_ response: APIResponse) -> Bool {
        response.status == 302 && AuthorizeTests.location(response)?.hasPrefix(AuthorizeTests.spa + "?code=") == true
    }

    @Test("a guest's home device meets Contoso's device control exactly when Contoso trusts that claim of Fabrikam's devices", arguments: [
        ("compliantDevice", "AzureAd", true, 53000), ("domainJoinedDevice", "ServerAd", false, 53001),
    ])
    func homeDeviceUnderInboundTrust(_ control: String, _ trustType: String, _ isCompliant: Bool, _ code: Int) async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let redeemed = try await w.redeem(await w.invite())
            #expect(redeemed.status == 302, "\(redeemed.text)")
            try await Self.requireDevice(h, token: w.contosoToken, control: control, users: Self.guests)
            let device = try await Self.register(h, tenant: w.fabrikam.tenantId, trustType: trustType, isCompliant: isCompliant)
            let credential = try Self.credential(h, device, tenant: w.contoso)
            func refused(_ response: APIResponse) -> Bool { response.status == 403 && response.text.contains("AADSTS\(code)") }

            // No device, and Fabrikam's device while Contoso trusts nothing of Fabrikam's: the control fails with Entra's code.
            #expect(refused(try await Self.guestSignIn(w, credential: nil)))
            #expect(refused(try await Self.guestSignIn(w, credential: credential)))
            // Trusting the other claim is not trusting this one.
            #expect(await Self.trust(w, compliant: control != "compliantDevice", hybrid: control == "compliantDevice") == 201)
            #expect(refused(try await Self.guestSignIn(w, credential: credential)))
            // Trusted: the device meets the control; without it Alice is still refused.
            #expect(await Self.trust(w, compliant: control == "compliantDevice", hybrid: control != "compliantDevice") == 204)
            let admitted = try await Self.guestSignIn(w, credential: credential)
            #expect(Self.isCode(admitted), "\(admitted.status) \(admitted.text)")
            #expect(refused(try await Self.guestSignIn(w, credential: nil)))
            let failures = await h.graph("GET", "auditLogs/signIns", token: w.contosoToken,
                                         query: [("$filter", "status/errorCode eq \(code)")]).json["value"]?.arrayValue ?? []
            #expect(failures.count == 4, "\(failures)")
        }
    }

    @Test("a B2B direct connect user's home device meets Contoso's compliant-device control exactly when Contoso trusts Fabrikam's compliance claim")
    func directConnectHomeDevice() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            await DirectConnectTests.connect(w)
            try await Self.requireDevice(h, token: w.contosoToken, control: "compliantDevice", users: ["includeGuestsOrExternalUsers": [
                "guestOrExternalUserTypes": "b2bDirectConnectUser",
                "externalTenants": ["@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"]]])
            let device = try await Self.register(h, tenant: w.fabrikam.tenantId, trustType: "AzureAd", isCompliant: true)
            let credential = try Self.credential(h, device, tenant: w.contoso)
            func refused(_ response: APIResponse) -> Bool { response.status == 403 && response.text.contains("AADSTS53000") }

            #expect(refused(try await Self.guestSignIn(w, credential: credential)))
            // Trusting hybrid join is not trusting compliance.
            #expect(await Self.trust(w, compliant: false, hybrid: true) == 204)
            #expect(refused(try await Self.guestSignIn(w, credential: credential)))
            #expect(await Self.trust(w, compliant: true, hybrid: false) == 204)
            let admitted = try await Self.guestSignIn(w, credential: credential)
            #expect(Self.isCode(admitted), "\(admitted.status) \(admitted.text)")
            #expect(refused(try await Self.guestSignIn(w, credential: nil)))
            // Still no guest: Alice came in by direct connect, and Contoso's log names the device refusals with Entra's code.
            #expect(try await h.app.directory.externalUser(tenant: w.contoso, homeTenant: w.fabrikam.tenantId, homeUser: w.alice) == nil)
            let failures = await DirectConnectTests.signIns(w, in: w.contoso).filter { $0["status"]?["errorCode"] == 53000 }
            #expect(failures.count == 3, "\(failures)")
        }
    }

    @Test("a guest's home device that is not compliant, or a device of a third tenant, is not made compliant by trust")
    func trustDoesNotInventClaims() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            #expect(try await w.redeem(await w.invite()).status == 302)
            try await Self.requireDevice(h, token: w.contosoToken, control: "compliantDevice", users: Self.guests)
            #expect(await Self.trust(w, compliant: true, hybrid: true) == 201)
            let unmanaged = try await Self.register(h, tenant: w.fabrikam.tenantId, trustType: "Workplace", isCompliant: false)
            #expect(try await Self.guestSignIn(w, credential: try Self.credential(h, unmanaged, tenant: w.contoso)).text.contains("AADSTS53000"))
            let woodgrove = try await TenantProvisioner(directory: h.app.directory).create(name: "Woodgrove", domain: "woodgrove.test")
            let foreign = try await Self.register(h, tenant: woodgrove.tenantId, trustType: "AzureAd", isCompliant: true)
            #expect(try await Self.guestSignIn(w, credential: try Self.credential(h, foreign, tenant: w.contoso)).text.contains("AADSTS53000"))
        }
    }

    @Test("Contoso's own device meets its control for its own user, at /authorize and at each refresh; another tenant's never does")
    func ownDevice() async throws {
        try await Harness.run { h in
            let w = try await CrossTenantB2BTests.world(h)
            let member = await h.graph("POST", "users", token: w.contosoToken, json: [
                "accountEnabled": true, "displayName": "Megan", "mailNickname": "megan", "userPrincipalName": "megan@contoso.test",
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let megan = try #require(member.json["id"]?.stringValue)
            try await Self.requireDevice(h, token: w.contosoToken, control: "compliantDevice", users: ["includeUsers": [.string(megan)]])
            let own = try await Self.register(h, tenant: w.contoso, trustType: "AzureAd", isCompliant: true)
            // Contoso trusting Fabrikam's devices is about Fabrikam's users, not Contoso's.
            #expect(await Self.trust(w, compliant: true, hybrid: true) == 201)
            let fabrikams = try await Self.register(h, tenant: w.fabrikam.tenantId, trustType: "AzureAd", isCompliant: true)
            func authorize(_ credential: String?) async throws -> APIResponse {
                let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: w.contoso, userID: megan, amr: ["fido", "mfa"], baseURL: Harness.base)
                var headers = ["cookie": String(setCookie.split(separator: ";")[0])]
                if let credential { headers[DeviceCredential.headerName.lowercased()] = credential }
                let params = [("client_id", w.appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid offline_access"),
                              ("code_challenge", CrossTenantB2BTests.World.challenge), ("code_challenge_method", "S256")]
                return await h.send("GET", "/\(w.contoso)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) }, headers: headers)
            }
            #expect(try await authorize(nil).text.contains("AADSTS53000"))
            #expect(try await authorize(try Self.credential(h, fabrikams, tenant: w.contoso)).text.contains("AADSTS53000"))
            let signedIn = try await authorize(try Self.credential(h, own, tenant: w.contoso))
            #expect(Self.isCode(signedIn), "\(signedIn.status) \(signedIn.text)")
            let tokens = try await w.tokens(signedIn)
            let refresh = try #require(tokens["refresh_token"]?.stringValue)
            func renew(_ credential: String?) async -> APIResponse {
                var headers = ["content-type": "application/x-www-form-urlencoded", "origin": "https://spa.contoso.test"]
                if let credential { headers[DeviceCredential.headerName.lowercased()] = credential }
                let form = AuthorizeEndpoint.encode([("grant_type", "refresh_token"), ("client_id", w.appID), ("refresh_token", refresh)])
                return await h.send("POST", "/\(w.contoso)/oauth2/v2.0/token", headers: headers, body: Array(form.utf8))
            }
            let withoutDevice = await renew(nil)
            #expect(withoutDevice.status == 400 && withoutDevice.json["error"] == "invalid_grant" && withoutDevice.json["error_codes"] == [53000],
                    "\(withoutDevice.text)")
            #expect(await renew(try Self.credential(h, own, tenant: w.contoso, endpoint: "token")).status == 200)
        }
    }

    @Test("a credential counts only when it is the device's, for this endpoint, short-lived and current, from a device that is enabled",
          arguments: ["another key", "another endpoint", "too long", "expired", "disabled device"])
    func credentialChecks(_ flaw: String) async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let tenant = h.tenant.tenantId
            let member = await h.graph("POST", "users", token: token, json: [
                "accountEnabled": true, "displayName": "Megan", "mailNickname": "megan", "userPrincipalName": "megan@contoso.test",
                "passwordProfile": ["password": "Xy!9aaaaaaaa"]])
            let megan = try #require(member.json["id"]?.stringValue)
            let appID = try await AuthorizeTests.application(h, token)
            try await Self.requireDevice(h, token: token, control: "compliantDevice", users: ["includeUsers": [.string(megan)]])
            let device = try await Self.register(h, tenant: tenant, trustType: "AzureAd", isCompliant: true)
            let credential = switch flaw {
            case "another key": try Self.credential(h, device, tenant: tenant, key: .init())
            case "another endpoint": try Self.credential(h, device, tenant: tenant, endpoint: "token")
            case "too long": try Self.credential(h, device, tenant: tenant, life: 3600)
            case "expired": try Self.credential(h, device, tenant: tenant, life: 300, issuedAgo: 1200)
            default: try Self.credential(h, device, tenant: tenant)
            }
            if flaw == "disabled device" {
                #expect(await h.graph("PATCH", "devices/\(device.objectID)", token: token, json: ["accountEnabled": false]).status == 204)
            }
            let (_, setCookie) = try await SignInSessions(app: h.app).start(tenant: tenant, userID: megan, amr: ["fido", "mfa"], baseURL: Harness.base)
            let params = [("client_id", appID), ("redirect_uri", AuthorizeTests.spa), ("response_type", "code"), ("scope", "openid"),
                          ("code_challenge", CrossTenantB2BTests.World.challenge), ("code_challenge_method", "S256")]
            func authorize(_ credential: String) async -> APIResponse {
                await h.send("GET", "/\(tenant)/oauth2/v2.0/authorize", query: params.map { (name: $0.0, value: $0.1) },
                             headers: ["cookie": String(setCookie.split(separator: ";")[0]), DeviceCredential.headerName.lowercased(): credential])
            }
            let refused = await authorize(credential)
            #expect(refused.status == 403 && refused.text.contains("AADSTS53000"), "\(refused.status) \(refused.text)")
            if flaw != "disabled device" {
                #expect(Self.isCode(await authorize(try Self.credential(h, device, tenant: tenant))), "the same device with a sound credential")
            }
        }
    }
}
