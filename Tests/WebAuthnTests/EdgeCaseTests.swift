import Foundation
import Testing
import WebAuthn
import Crypto
import _CryptoExtras
import SwiftASN1

/// What other verifiers' real ceremonies exposed: attestation chains with certificates that cannot be parsed,
/// credential algorithms beyond the first six, and an AAGUID taken for more than the claim it is.
@Suite struct AttestationChainTests {
    static let surface = "published/tpm-rs256-surface-pro-4-py-webauthn.json"

    /// `der` with its serial number made negative (the top bit of its first content byte set), as some Windows Hello
    /// TPMs' intermediates have it.
    static func withNegativeSerial(_ der: [UInt8]) throws -> [UInt8] {
        let root = try DER.parse(der)
        guard case .constructed(let outer) = root.content, let tbs = outer.first(where: { _ in true }),
              case .constructed(let fields) = tbs.content,
              let serial = fields.first(where: { $0.identifier == .integer }),
              case .primitive(let content) = serial.content else { throw ASN1Error.invalidASN1Object(reason: "no serial") }
        var changed = der
        changed[content.startIndex] |= 0x80
        return changed
    }

    static func changeX5C(_ index: Int, in response: inout RegistrationResponse, _ change: ([UInt8]) throws -> [UInt8]) {
        AttestationTests.editStatement(&response) { statement in
            let at = statement.firstIndex { $0.key == .text("x5c") }!
            var items = statement[at].value.arrayValue!
            items[index] = .bytes(try! change(items[index].bytesValue!))
            statement[at].value = .array(items)
        }
    }

    @Test func anIntermediateWithANegativeSerialMakesTheAttestationUntrustedNotMalformed() async throws {
        // As published, the chain reaches Microsoft's TPM root.
        #expect(try await AttestationTests.verify(Self.surface).attestationTrusted)
        let result = try await AttestationTests.verify(Self.surface) { Self.changeX5C(1, in: &$0, Self.withNegativeSerial) }
        #expect(result.format == "tpm" && result.attestationType == .attCA)
        #expect(!result.attestationTrusted)
        let reason = try #require(result.attestationUntrustedReason)
        #expect(reason.contains("x5c[1]") && reason.contains("negative"), "\(reason)")
        // Trust required: refused for trust, with the reason, not for a malformed registration.
        do {
            _ = try await AttestationTests.verify(Self.surface, requireTrust: true) { Self.changeX5C(1, in: &$0, Self.withNegativeSerial) }
            Issue.record("an unreadable intermediate was trusted")
        } catch let error as WebAuthnError {
            #expect(error.code == .attestationUntrusted && error.message.contains("negative"), "\(error)")
        }
    }

    @Test func anIntermediateThatIsNotACertificateAtAllIsUntrustedToo() async throws {
        let result = try await AttestationTests.verify(Self.surface) { Self.changeX5C(1, in: &$0) { _ in [0x30, 0x03, 0x02, 0x01, 0x01] } }
        #expect(!result.attestationTrusted)
        #expect(result.attestationUntrustedReason?.contains("not a valid X.509 certificate") == true)
    }

    @Test func theAttestationCertificateItselfMustBeReadable() async {
        // The statement's checks (AIK requirements, its signature) are about x5c[0]: that one cannot be left out.
        #expect(await AttestationTests.code(Self.surface) { Self.changeX5C(0, in: &$0, Self.withNegativeSerial) } == .attestationCertificateMalformed)
    }

    @Test func thePublishedNegativeSerialCeremonyIsVerifiedAndSaysWhyItIsUntrusted() async throws {
        let result = try await AttestationTests.verify("published/tpm-rs256-negative-serial-intermediate-fido2-net-lib.json")
        #expect(!result.attestationTrusted)
        // No anchor configured: that is the reason given, whatever else is wrong with the chain.
        #expect(result.attestationUntrustedReason == "no trust anchor is configured for this authenticator")
        #expect(result.attestationCertificates.count == 1) // the intermediate could not be read
    }

    @Test func theInspectorSaysWhyAChainCertificateCannotBeRead() throws {
        let vector = Vector.named("published/tpm-rs256-negative-serial-intermediate-fido2-net-lib.json")
        let response = vector.input["response"] as! [String: Any]
        let object = Base64URL.decode((response["response"] as! [String: Any])["attestationObject"] as! String)!
        let text = Inspector.explain(object)
        #expect(text.contains("[1] cannot be read: its serial number is negative"), "\(text)")
    }

    @Test func untrustedAttestationSaysWhy() async throws {
        let none = try await AttestationTests.verify("fido2/es256-none-registration.json")
        #expect(none.attestationUntrustedReason == "none attestation carries no certificate")
        let trusted = try await AttestationTests.verify(Self.surface)
        #expect(trusted.attestationUntrustedReason == nil)
    }
}

@Suite struct AlgorithmTests {
    static let rsaAlgorithms: [COSEAlgorithm] = [.rs1, .rs256, .rs384, .rs512, .ps256, .ps384, .ps512]

    static func coseKey(_ key: _RSA.Signing.PublicKey, _ algorithm: COSEAlgorithm) throws -> [UInt8] {
        let primitives = try key.getKeyPrimitives()
        return CBOREncoder.encode(.map([
            .init(.int(1), .int(3)), .init(.int(3), .int(algorithm.rawValue)),
            .init(.int(-1), .bytes(Array(primitives.modulus))), .init(.int(-2), .bytes(Array(primitives.publicExponent))),
        ]))
    }

    static func sign(_ data: [UInt8], _ key: _RSA.Signing.PrivateKey, _ algorithm: COSEAlgorithm) throws -> [UInt8] {
        let padding: _RSA.Signing.Padding = [.ps256, .ps384, .ps512].contains(algorithm) ? .PSS : .insecurePKCS1v1_5
        let signature: _RSA.Signing.RSASignature
        switch algorithm {
        case .rs1: signature = try key.signature(for: Insecure.SHA1.hash(data: data), padding: padding)
        case .rs384, .ps384: signature = try key.signature(for: SHA384.hash(data: data), padding: padding)
        case .rs512, .ps512: signature = try key.signature(for: SHA512.hash(data: data), padding: padding)
        default: signature = try key.signature(for: SHA256.hash(data: data), padding: padding)
        }
        return Array(signature.rawRepresentation)
    }

    @Test func everyRSAAlgorithmVerifiesItsOwnSignaturesAndNoOther() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let authenticatorData = Array("authenticator data".utf8), clientDataJSON = Array("{\"type\":\"webauthn.get\"}".utf8)
        let signed = authenticatorData + clientDataJSON.sha256Bytes
        for made in Self.rsaAlgorithms {
            let signature = try Self.sign(signed, key, made)
            for checked in Self.rsaAlgorithms {
                let credential = try CredentialPublicKey(cose: Self.coseKey(key.publicKey, checked))
                #expect(credential.algorithm == checked)
                let valid = credential.isValidAssertionSignature(signature, authenticatorData: authenticatorData, clientDataJSON: clientDataJSON)
                #expect(valid == (made == checked), "\(made) signature checked as \(checked)")
                #expect(credential.isValidSignature(signature, for: signed) == (made == checked), "\(made) as \(checked)")
            }
        }
    }

    @Test func rs1IsVerifiedOnlyWhenTheRelyingPartyAllowsIt() async throws {
        #expect(!COSEAlgorithm.defaultAllowed.contains(.rs1))
        #expect(Set(COSEAlgorithm.supported).isSuperset(of: COSEAlgorithm.defaultAllowed))
        for path in ["published/tpm-rs1-negative-serial-intermediate-fido2-net-lib.json", "fido2/rs1-none-registration.json"] {
            let vector = Vector.named(path)
            let time = vector.verificationTime
            let rpID = vector.input["rpId"] as! String, origins = vector.input["origins"] as! [String]
            let byDefault = RelyingParty(id: rpID, origins: origins, clock: { time })
            #expect(await AttestationTests.code(path, party: byDefault) == .credentialAlgorithmNotAllowed, "\(path)")
            let allowing = RelyingParty(id: rpID, origins: origins, allowedAlgorithms: [.es256, .rs1], clock: { time })
            let result = try await AttestationTests.verify(path, party: allowing)
            #expect(result.publicKey.algorithm == .rs1)
        }
    }

    @Test func anAlgorithmThisVerifierCannotUseIsUnsupportedNotMalformed() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        func code(_ cose: [UInt8]) -> WebAuthnError.Code? {
            do throws(WebAuthnError) { _ = try CredentialPublicKey(cose: cose); return nil } catch { return error.code }
        }
        // RSAES-OAEP with SHA-512 (-42) is an encryption algorithm: nothing here signs with it.
        #expect(code(try Self.coseKey(key.publicKey, COSEAlgorithm(-42))) == .credentialPublicKeyUnsupported)
        let p256 = Array(P256.Signing.PrivateKey().publicKey.rawRepresentation)
        func ec2(_ alg: Int, curve: Int) -> [UInt8] {
            CBOREncoder.encode(.map([
                .init(.int(1), .int(2)), .init(.int(3), .int(alg)), .init(.int(-1), .int(curve)),
                .init(.int(-2), .bytes(Array(p256[0..<32]))), .init(.int(-3), .bytes(Array(p256[32..<64]))),
            ]))
        }
        #expect(code(ec2(-47, curve: 1)) == .credentialPublicKeyUnsupported) // ES256K
        #expect(code(ec2(-65535, curve: 1)) == .credentialPublicKeyMalformed) // a supported algorithm on the wrong key type
        #expect(code(ec2(-35, curve: 1)) == .credentialPublicKeyMalformed) // ES384 on P-256
        #expect(code(ec2(-7, curve: 1)) == nil)
    }
}

@Suite struct AuthenticatorClaimTests {
    static let lenovo = "published/tpm-rs256-lenovo-carbon-x1-py-webauthn.json"

    @Test func aTrustedWindowsHelloAttestationProvesWindowsHello() async throws {
        let result = try await AttestationTests.verify(Self.lenovo)
        #expect(result.attestationTrusted && result.aaguidVerified)
        #expect(result.claimsWindowsHello && result.isWindowsHello)
        #expect(result.caveats.isEmpty)
    }

    @Test func withoutTrustTheWindowsHelloAAGUIDIsOnlyAClaim() async throws {
        let vector = Vector.named(Self.lenovo)
        let time = vector.verificationTime
        let party = RelyingParty(id: vector.input["rpId"] as! String, origins: vector.input["origins"] as! [String], clock: { time })
        let result = try await AttestationTests.verify(Self.lenovo, party: party)
        #expect(!result.attestationTrusted && !result.aaguidVerified)
        // Named from its AAGUID, but not taken for Windows Hello.
        #expect(result.authenticatorName == "Windows Hello VBS Hardware Authenticator")
        #expect(result.claimsWindowsHello && !result.isWindowsHello)
        #expect(result.caveats.contains { $0.contains("claims Windows Hello") })
        #expect(result.caveats.contains { $0.contains("Device-bound is the authenticator's claim") })
    }

    @Test func theInspectorCallsANameFromTheAAGUIDAClaim() throws {
        let vector = Vector.named(Self.lenovo)
        let response = vector.input["response"] as! [String: Any]
        let object = Base64URL.decode((response["response"] as! [String: Any])["attestationObject"] as! String)!
        let text = Inspector.explain(object)
        #expect(text.contains("(Windows Hello VBS Hardware Authenticator, as the authenticator claims"), "\(text)")
    }
}

@Suite struct GraphCredentialJSONTests {
    /// Graph's `webauthnPublicKeyCredential` as Microsoft documents it: `id`, `response`, `clientExtensionResults`,
    /// each with an `@odata.type`; no `rawId`, no `type`.
    static func graphBody(from path: String) throws -> [UInt8] {
        let response = Vector.named(path).input["response"] as! [String: Any]
        let inner = response["response"] as! [String: Any]
        let body: [String: Any] = [
            "@odata.type": "#microsoft.graph.webauthnPublicKeyCredential",
            "id": response["id"]!,
            "response": [
                "@odata.type": "#microsoft.graph.webauthnAuthenticatorAttestationResponse",
                "clientDataJSON": inner["clientDataJSON"]!, "attestationObject": inner["attestationObject"]!,
            ],
            "clientExtensionResults": ["@odata.type": "#microsoft.graph.webauthnAuthenticationExtensionsClientOutputs"],
        ]
        return Array(try JSONSerialization.data(withJSONObject: body))
    }

    @Test func graphsShapeIsReadWithRawIDFromIDAndTypeImplied() async throws {
        let path = "chromium/chromium-ctap2-packed-devicebound-registration.json"
        let body = try Self.graphBody(from: path)
        // The browser's shape needs rawId; Graph's does not have it.
        #expect(throws: WebAuthnError.self) { try RegistrationResponse(json: body) }
        let response = try RegistrationResponse(graphJSON: body)
        #expect(response.type == "public-key")
        #expect(Base64URL.encode(response.rawID) == response.id)
        let vector = Vector.named(path)
        let result = try await vector.relyingParty().verifyRegistration(response, challenge: vector.challenge,
                                                                         requireUserVerification: vector.requireUserVerification)
        #expect(Base64URL.encode(result.credentialID) == response.id)
    }

    @Test func theBrowsersShapeIsReadTooAndItsMembersStillChecked() async throws {
        let vector = Vector.named("chromium/chromium-ctap2-packed-devicebound-registration.json")
        let response = try RegistrationResponse(graphJSON: vector.responseJSON)
        #expect(response.rawID == (try RegistrationResponse(json: vector.responseJSON)).rawID)
        var object = vector.input["response"] as! [String: Any]
        object["type"] = "password"
        let wrongType = try RegistrationResponse(graphJSON: Array(JSONSerialization.data(withJSONObject: object)))
        await #expect(throws: WebAuthnError(.responseType, "credential type is \"password\", not \"public-key\"")) {
            _ = try await vector.relyingParty().verifyRegistration(wrongType, challenge: vector.challenge, requireUserVerification: false)
        }
    }

    @Test func anIDThatIsNotBase64URLIsMalformed() throws {
        let body = Array(#"{"id":"not base64!","response":{"clientDataJSON":"e30","attestationObject":"oA"}}"#.utf8)
        do {
            _ = try RegistrationResponse(graphJSON: body)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .responseMalformed && error.message.contains("\"id\""), "\(error)")
        }
    }
}

private extension Array where Element == UInt8 {
    var sha256Bytes: [UInt8] { Array(SHA256.hash(data: self)) }
}
