import Crypto
import Foundation
import Kerberos
import SwiftASN1
import Testing
import TesseraCore
import TesseraTesting
import X509

@testable import Server

/// The device registration service through the whole app, with real tickets from a Samba KDC (the Kerberos library's
/// committed fixtures: a computer WS01$ asked for adrs/tessera.corp.example.test), validated at the instant they were
/// taken. Hybrid join against the running DC is proved by DeviceKerberosSetupLiveTests and interop/test_hybrid_join.py.
@Suite struct DeviceRegistrationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KerberosTests/Fixtures")

    struct Fixture {
        let metadata: [String: Any]
        let keys: ServiceKeys
        func token(_ name: String) throws -> String {
            try String(contentsOf: DeviceRegistrationTests.fixtures.appendingPathComponent(name), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var capturedAt: Date { Date(timeIntervalSince1970: TimeInterval(metadata["capturedAt"] as? Int ?? 0)) }
        var realm: String { metadata["realm"] as? String ?? "" }
        var host: String { String((metadata["servicePrincipal"] as? String ?? "").dropFirst("adrs/".count)) }
        var domainSid: String {
            let bytes = Data(base64Encoded: metadata["domainSidBase64"] as? String ?? "") ?? Data()
            return (try? SecurityIdentifier(bytes: bytes).description) ?? ""
        }

        static func load() throws -> Fixture {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("fixtures.json")))
            return Fixture(metadata: try #require(json as? [String: Any]),
                           keys: try ServiceKeys(keytab: Data(contentsOf: fixtures.appendingPathComponent("service.keytab"))))
        }

        /// The tenant's record as `hybrid kerberos enable` would leave it, with the fixture account's keys.
        func domain(realm: String? = nil, host: String? = nil, version: UInt32? = nil, created: Date) throws -> KerberosDomain {
            let keys = self.keys.keys
            let aes256 = try #require(keys.first { $0.encryptionType == .aes256CtsHmacSha196 })
            let aes128 = try #require(keys.first { $0.encryptionType == .aes128CtsHmacSha196 })
            let key = KerberosDomain.KeyVersion(version: version ?? aes256.version, created: created, aes256: aes256.keyBytes,
                                                aes128: aes128.keyBytes)
            return KerberosDomain(realm: realm ?? self.realm, domainDN: "DC=corp,DC=example,DC=test", host: host ?? self.host,
                                  accountName: "tessera-drs", accountDN: "CN=tessera-drs,CN=Users,DC=corp,DC=example,DC=test",
                                  scpDN: "CN=\(HybridKerberosSetup.scpName),CN=Device Registration Configuration,CN=Services,CN=Configuration,DC=corp,DC=example,DC=test",
                                  connector: nil, created: created, keys: [key])
        }
    }

    /// A harness whose clock stands at the fixtures' capture and whose tenant has `domain` (the fixture's by default).
    static func run(domain: ((Fixture, Date) throws -> KerberosDomain?)? = nil, keyEncryption: KeyEncryptionKey? = nil,
                    _ body: (Harness, Fixture) async throws -> Void) async throws {
        let fixture = try Fixture.load()
        try await Harness.run(keyEncryption: keyEncryption) { harness in
            harness.clock.advance(fixture.capturedAt.timeIntervalSince(harness.clock.now))
            let record = try domain.map { try $0(fixture, harness.clock.now) } ?? fixture.domain(created: harness.clock.now)
            if let record { try await record.save(tenant: harness.tenant.tenantId, store: harness.app.store, sealing: harness.app.keySealing) }
            try await body(harness, fixture)
        }
    }

    static func exchange(_ harness: Harness, _ token: String?) async -> APIResponse {
        await harness.send("POST", "/EnrollmentServer/\(harness.tenant.tenantId)/ExchangeForJwt",
                           headers: token.map { ["authorization": "Negotiate \($0)"] } ?? [:])
    }

    static func csr(_ key: P256.Signing.PrivateKey = .init()) throws -> CertificateSigningRequest {
        try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("WS01") },
                                      privateKey: .init(key), attributes: .init())
    }

    static func register(_ harness: Harness, authorization: String, csr: CertificateSigningRequest) async throws -> APIResponse {
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        let body: JSONValue = [
            "CertificateRequest": ["Type": "pkcs10", "Data": .string(Data(serializer.serializedBytes).base64EncodedString())],
            "DeviceDisplayName": "WS01", "DeviceType": "Windows", "OSVersion": "10.0.26100.6584", "JoinType": 4,
        ]
        return await harness.send("POST", "/EnrollmentServer/\(harness.tenant.tenantId)/device",
                                  headers: ["authorization": authorization, "content-type": "application/json"], body: body.serializedBytes)
    }

    static func devices(_ harness: Harness) async throws -> [StoredObject] {
        let tenant = harness.tenant.tenantId
        return try await harness.app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.device])) }
    }

    @Test func aComputersTicketIsExchangedAndRegistersAHybridJoinedDevice() async throws {
        try await Self.run { harness, fixture in
            let exchanged = await Self.exchange(harness, try fixture.token("ws01-spnego.b64"))
            #expect(exchanged.status == 200, "\(exchanged.text)")
            let reply = try #require(exchanged.headers.first { $0.name == "WWW-Authenticate" }?.value)
            #expect(reply.hasPrefix("Negotiate ") && reply.count > 40, "the mutual-authentication reply")
            let jwt = try #require(exchanged.json["access_token"]?.stringValue)
            #expect(exchanged.json["expires_in"]?.intValue == 300)

            let key = P256.Signing.PrivateKey()
            let registered = try await Self.register(harness, authorization: "Bearer \(jwt)", csr: try Self.csr(key))
            #expect(registered.status == 200, "\(registered.text)")
            let deviceID = try #require(registered.json["DeviceId"]?.stringValue)
            let der = try #require(registered.json["Certificate"]?["RawBody"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            let certificate = try Certificate(derEncoded: Array(der))
            #expect(certificate.publicKey == Certificate.PublicKey(key.publicKey))
            #expect(certificate.subject.description == "CN=\(deviceID)")
            let thumbprint = Insecure.SHA1.hash(data: der).map { String(format: "%02X", $0) }.joined()
            #expect(registered.json["Certificate"]?["Thumbprint"]?.stringValue == thumbprint)

            // The Graph device, at once, as Entra's hybrid join leaves it.
            let token = try await harness.accessToken()
            let listed = await harness.graph("GET", "devices", token: token, query: [("$filter", "trustType eq 'ServerAd'")])
            #expect(listed.status == 200, "\(listed.text)")
            let device = try #require(listed.json["value"]?.arrayValue?.first)
            #expect(device["deviceId"]?.stringValue == deviceID)
            #expect(device["displayName"]?.stringValue == "WS01")
            #expect(device["profileType"]?.stringValue == "RegisteredDevice")
            #expect(device["accountEnabled"]?.boolValue == true)
            #expect(device["operatingSystemVersion"]?.stringValue == "10.0.26100.6584")
            #expect(device["registrationDateTime"]?.stringValue == Timestamp.format(harness.clock.now))
            let sid = try #require(device["onPremisesSecurityIdentifier"]?.stringValue)
            #expect(sid.hasPrefix(fixture.domainSid + "-"), "the computer's SID from the PAC: \(sid)")
            let alternative = try #require(device["alternativeSecurityIds"]?.arrayValue?.first)
            #expect(alternative["type"]?.intValue == 2)
            let keyText = try #require(alternative["key"]?.stringValue.flatMap { Data(base64Encoded: $0) }
                .flatMap { String(data: $0, encoding: .utf16LittleEndian) })
            var spki = DER.Serializer()
            try spki.serialize(certificate.publicKey)
            #expect(keyText == "X509:<SHA1-TP-PUBKEY>" + thumbprint + Data(SHA256.hash(data: spki.serializedBytes)).base64EncodedString())

            // The certificate chains to the tenant's device CA.
            let authority = try await DeviceCertificateAuthority.loadOrCreate(tenant: harness.tenant.tenantId, store: harness.app.store, sealing: harness.app.keySealing,
                                                                             now: harness.clock.now)
            #expect(certificate.issuer == authority.certificate.subject)
            #expect(authority.certificate.publicKey.isValidSignature(certificate.signature, for: certificate))

            // The exchanged token registers once, and is no Graph token.
            let again = try await Self.register(harness, authorization: "Bearer \(jwt)", csr: try Self.csr())
            #expect(again.status == 401 && again.errorCode == "InvalidAuthenticationToken", "\(again.text)")
            #expect(await harness.graph("GET", "devices", token: jwt).status == 401)
            #expect(try await Self.devices(harness).count == 1)
        }
    }

    @Test func aTicketPresentedAgainIsAReplayOnEveryNodeOfTheCluster() async throws {
        try await Self.run { harness, fixture in
            let token = try fixture.token("ws01-spnego.b64")
            #expect(await Self.exchange(harness, token).status == 200)
            let replayed = await Self.exchange(harness, token)
            #expect(replayed.status == 401 && replayed.errorCode == "KRB_AP_ERR_REPEAT", "\(replayed.text)")
            #expect(replayed.headers.contains { $0.name == "WWW-Authenticate" && $0.value == "Negotiate" })
            // A second node over the same store: the cache is the store's, not a process's.
            let other = try await TesseraApp.make(store: harness.app.store, clock: harness.clock)
            let elsewhere = await other.handle(APIRequest(method: "POST", path: "/EnrollmentServer/\(harness.tenant.tenantId)/ExchangeForJwt",
                                                          query: [], headers: ["authorization": "Negotiate \(token)"], body: [],
                                                          baseURL: Harness.base))
            #expect(elsewhere.status == 401 && elsewhere.errorCode == "KRB_AP_ERR_REPEAT", "\(elsewhere.text)")
        }
    }

    /// Each refusal names the Windows error and creates nothing.
    @Test(arguments: [
        ("no ticket", "DSREG_TOKEN_MISSING_ON_PREM_ID"),
        ("wrong SPN", "SEC_E_TARGET_UNKNOWN"),
        ("other realm", "SEC_E_WRONG_PRINCIPAL"),
        ("unknown key version", "SEC_E_LOGON_DENIED"),
        ("expired", "SEC_E_CONTEXT_EXPIRED"),
        ("not enabled", "SEC_E_NO_AUTHENTICATING_AUTHORITY"),
        ("RC4", "SEC_E_ETYPE_NOT_SUPP"),
    ])
    func aRefusedTicketCreatesNothing(_ situation: String, _ code: String) async throws {
        try await Self.run(domain: { fixture, now in
            switch situation {
            case "wrong SPN": try fixture.domain(host: "other.corp.example.test", created: now)
            case "other realm": try fixture.domain(realm: "FABRIKAM.TEST", created: now)
            case "unknown key version": try fixture.domain(version: 9, created: now)
            case "not enabled": nil
            case "RC4": try fixture.domain(host: "rc4.corp.example.test", created: now)
            default: try fixture.domain(created: now)
            }
        }) { harness, fixture in
            if situation == "expired" { harness.clock.advance(11 * 3600) }
            let token = situation == "no ticket" ? nil : try fixture.token(situation == "RC4" ? "ws01-rc4.b64" : "ws01-spnego.b64")
            for response in [await Self.exchange(harness, token),
                             try await Self.register(harness, authorization: token.map { "Negotiate \($0)" } ?? "", csr: try Self.csr())] {
                #expect(response.status == 401, "\(response.text)")
                #expect(response.errorCode == code, "\(response.text)")
                #expect(response.json["error"]?["message"]?.stringValue?.hasPrefix(code) == true, "\(response.text)")
            }
            #expect(try await Self.devices(harness).isEmpty)
        }
    }

    @Test func thePreviousKeyIsAcceptedOnlyUntilItRetires() async throws {
        try await Self.run(domain: { fixture, now in
            var domain = try fixture.domain(created: now)
            domain.keys[0].retiresAt = now.addingTimeInterval(3600)
            let rotated = KerberosDomain.KeyVersion(version: domain.keyVersion + 1, created: now,
                                                    aes256: Array(repeating: 7, count: 32), aes128: Array(repeating: 7, count: 16))
            domain.keys.insert(rotated, at: 0)
            return domain
        }) { harness, fixture in
            let token = try fixture.token("ws01-spnego.b64")
            let tenant = harness.tenant.tenantId
            let domain = try #require(try await KerberosDomain.load(tenant: tenant, store: harness.app.store, sealing: harness.app.keySealing))
            #expect(try domain.serviceKeys(at: harness.clock.now).keys.map(\.version).sorted() == [2, 2, 3, 3])
            #expect(try domain.serviceKeys(at: harness.clock.now.addingTimeInterval(3600)).keys.map(\.version) == [3, 3])
            // Within the grace period the ticket for the previous key registers.
            let registered = try await Self.register(harness, authorization: "Negotiate \(token)", csr: try Self.csr())
            #expect(registered.status == 200, "\(registered.text)")
            #expect(registered.headers.contains { $0.name == "WWW-Authenticate" && $0.value.count > 20 })
            // Once it retires, another authenticator of the same ticket finds no key for its version.
            harness.clock.advance(3600)
            let late = await Self.exchange(harness, try fixture.token("ws01-krb5.b64"))
            #expect(late.status == 401 && late.errorCode == "SEC_E_LOGON_DENIED", "\(late.text)")
        }
    }

    @Test func aCertificateRequestWhoseSignatureFailsCreatesNothing() async throws {
        try await Self.run { harness, fixture in
            let signed = try Self.csr()
            let forged = try CertificateSigningRequest(
                version: .v1, subject: signed.subject, publicKey: .init(P256.Signing.PrivateKey().publicKey),
                attributes: .init(), signatureAlgorithm: signed.signatureAlgorithm, signature: signed.signature)
            let response = try await Self.register(harness, authorization: "Negotiate \(try fixture.token("ws01-spnego.b64"))", csr: forged)
            #expect(response.status == 400 && response.errorCode == "Request_BadRequest", "\(response.text)")
            #expect(try await Self.devices(harness).isEmpty)
            let garbage = await harness.send("POST", "/EnrollmentServer/\(harness.tenant.tenantId)/device",
                                             headers: ["authorization": "Bearer not-a-token"], body: Array("{}".utf8))
            #expect(garbage.status == 401 && garbage.errorCode == "InvalidAuthenticationToken", "\(garbage.text)")
        }
    }

    @Test func registeringTheSameComputerAgainKeepsOneDeviceAndDoesNotEnableIt() async throws {
        try await Self.run { harness, fixture in
            let first = try await Self.register(harness, authorization: "Negotiate \(try fixture.token("ws01-spnego.b64"))", csr: try Self.csr())
            #expect(first.status == 200, "\(first.text)")
            // An administrator disables the device; registering again renews its certificate but does not enable it.
            let device = try #require(try await Self.devices(harness).first)
            let token = try await harness.accessToken()
            let disabled = await harness.graph("PATCH", "devices/\(device.id)", token: token, json: ["accountEnabled": false])
            #expect(disabled.status == 204, "\(disabled.text)")
            // The krb5 token is another authenticator of the same computer.
            let second = try await Self.register(harness, authorization: "Negotiate \(try fixture.token("ws01-krb5.b64"))", csr: try Self.csr())
            #expect(second.status == 200, "\(second.text)")
            #expect(first.json["DeviceId"] == second.json["DeviceId"])
            #expect(first.json["Certificate"]?["Thumbprint"] != second.json["Certificate"]?["Thumbprint"])
            let devices = try await Self.devices(harness)
            #expect(devices.count == 1)
            #expect(devices.first?.body["accountEnabled"] == false)
        }
    }
}
