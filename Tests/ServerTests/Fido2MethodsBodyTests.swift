import Crypto
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting
import WebAuthn

/// `POST /users/{id}/authentication/fido2Methods` with the body Microsoft documents (api-reference/v1.0/api/
/// authentication-post-fido2methods.md): `publicKeyCredential` is a `webauthnPublicKeyCredential` with `id`,
/// `response` and `clientExtensionResults`, each with an `@odata.type`, and no `rawId` or `type`.
@Suite("Graph's fido2Methods body")
struct Fido2MethodsBodyTests {
    /// A new passkey for the options `creationOptions` returned: an ES256 key, `none` attestation, UP and UV set.
    struct Credential {
        let id = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let key = P256.Signing.PrivateKey()

        func attestation(options: JSONValue) throws -> (clientDataJSON: [UInt8], attestationObject: [UInt8]) {
            let publicKey = try #require(options["publicKey"])
            let rpID = try #require(publicKey["rp"]?["id"]?.stringValue)
            let challenge = try #require(publicKey["challenge"]?.stringValue)
            let clientDataJSON = Array(#"{"type":"webauthn.create","challenge":"\#(challenge)","origin":"\#(Harness.base)","crossOrigin":false}"#.utf8)
            let raw = Array(key.publicKey.rawRepresentation)
            let cose = CBOREncoder.encode(.map([
                .init(.int(1), .int(2)), .init(.int(3), .int(-7)), .init(.int(-1), .int(1)),
                .init(.int(-2), .bytes(Array(raw[0..<32]))), .init(.int(-3), .bytes(Array(raw[32..<64]))),
            ]))
            let authData = Array(SHA256.hash(data: Array(rpID.utf8))) + [0x45] + [0, 0, 0, 0] // UP, UV, AT; counter 0
                + [UInt8](repeating: 0, count: 16) + [0, UInt8(id.count)] + id + cose
            let object = CBOREncoder.encode(.map([
                .init(.text("fmt"), .text("none")), .init(.text("attStmt"), .map([])), .init(.text("authData"), .bytes(authData)),
            ]))
            return (clientDataJSON, object)
        }

        /// Microsoft's documented request body.
        func graphBody(options: JSONValue, id override: String? = nil) throws -> JSONValue {
            let (clientDataJSON, attestationObject) = try attestation(options: options)
            return [
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                "displayName": "My security key",
                "publicKeyCredential": [
                    "@odata.type": "#microsoft.graph.webauthnPublicKeyCredential",
                    "id": .string(override ?? WebAuthn.Base64URL.encode(id)),
                    "response": [
                        "@odata.type": "#microsoft.graph.webauthnAuthenticatorAttestationResponse",
                        "clientDataJSON": .string(WebAuthn.Base64URL.encode(clientDataJSON)),
                        "attestationObject": .string(WebAuthn.Base64URL.encode(attestationObject)),
                    ],
                    "clientExtensionResults": ["@odata.type": "#microsoft.graph.webauthnAuthenticationExtensionsClientOutputs"],
                ],
            ]
        }
    }

    static func options(_ h: Harness, _ token: String, _ user: String) async throws -> JSONValue {
        let response = await h.graph("GET", "users/\(user)/authentication/fido2Methods/creationOptions", token: token)
        #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
        return response.json
    }

    @Test("Microsoft's documented body registers a passkey: rawId is the id, the type is implied")
    func documentedBody() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await TemporaryAccessPassTests.user(h, token)
            let credential = Credential()
            let body = try credential.graphBody(options: try await Self.options(h, token, user))
            let created = await h.graph("POST", "users/\(user)/authentication/fido2Methods", token: token, json: body)
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
            #expect(created.json["displayName"] == "My security key" && created.json["passkeyType"] == "deviceBound")
            #expect(created.json["attestationLevel"] == "notAttested")
            let stored = try await h.app.directory.fido2Methods(tenant: h.tenant.tenantId, userID: user)
            #expect(stored.map { $0.body["_credentialId"]?.stringValue } == [WebAuthn.Base64URL.encode(credential.id)])
            #expect(stored.first?.body["_aaguidVerified"] == false)
        }
    }

    @Test("creationOptions answers the SDKs' creationOptions() and beta's creationOptions(challengeTimeoutInMinutes=N)")
    func creationOptionsAsTheSDKsCallIt() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await TemporaryAccessPassTests.user(h, token)
            for function in ["creationOptions()", "creationOptions(challengeTimeoutInMinutes=10)"] {
                let response = await h.graph("GET", "users/\(user)/authentication/fido2Methods/\(function)", token: token)
                #expect(response.status == 200 && response.json["publicKey"]?["challenge"]?.stringValue != nil, "\(function)")
            }
            let odd = await h.graph("GET", "users/\(user)/authentication/fido2Methods/creationOptions(timeout=10)", token: token)
            #expect(odd.status == 400 && odd.json["error"]?["code"] != nil)
        }
    }

    @Test("the browser's JSON (rawId, type) is still accepted")
    func browserShape() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await TemporaryAccessPassTests.user(h, token)
            let credential = Credential()
            let (clientDataJSON, attestationObject) = try credential.attestation(options: try await Self.options(h, token, user))
            let id = WebAuthn.Base64URL.encode(credential.id)
            let created = await h.graph("POST", "users/\(user)/authentication/fido2Methods", token: token, json: [
                "publicKeyCredential": [
                    "id": .string(id), "rawId": .string(id), "type": "public-key", "authenticatorAttachment": "cross-platform",
                    "response": ["clientDataJSON": .string(WebAuthn.Base64URL.encode(clientDataJSON)),
                                 "attestationObject": .string(WebAuthn.Base64URL.encode(attestationObject)), "transports": ["usb"]],
                    "clientExtensionResults": [:],
                ],
            ])
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        }
    }

    @Test("an id that is not the credential's, or not base64url, is refused in Graph's error format and nothing is stored")
    func badID() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let user = try await TemporaryAccessPassTests.user(h, token)
            for id in ["not base64url!", WebAuthn.Base64URL.encode(Array(repeating: 7, count: 32))] {
                let body = try Credential().graphBody(options: try await Self.options(h, token, user), id: id)
                let refused = await h.graph("POST", "users/\(user)/authentication/fido2Methods", token: token, json: body)
                #expect(refused.status == 400)
                #expect(refused.json["error"]?["code"]?.stringValue != nil)
                let message = try #require(refused.json["error"]?["message"]?.stringValue)
                #expect(message.contains("response.malformed") || message.contains("credential.idMismatch"), "\(message)")
            }
            #expect(try await h.app.directory.fido2Methods(tenant: h.tenant.tenantId, userID: user).isEmpty)
        }
    }
}
