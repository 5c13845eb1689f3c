import Testing
import WebAuthn

/// Every committed vector through the library, with the outcome its producer (and py_webauthn, in the interop
/// suite) says it must have.
@Suite struct VectorTests {
    @Test func thereAreVectorsFromEveryProducer() {
        let producers = Set(Vector.all.map { $0.path.split(separator: "/").first.map(String.init) ?? "" })
        #expect(producers.isSuperset(of: ["chromium", "fido2", "published", "w3c"]))
        #expect(Vector.all.count >= 60)
    }

    @Test(arguments: Vector.all.filter { $0.ceremony == "registration" })
    func registrationVector(_ vector: Vector) async throws {
        let party: RelyingParty
        do {
            party = try await vector.relyingParty()
        } catch let error as WebAuthnError {
            // A metadata BLOB that does not verify refuses the ceremony before it starts.
            #expect(error.code.name == vector.expectedError, "\(error)")
            return
        }
        let outcome: Result<VerifiedRegistration, WebAuthnError>
        do throws(WebAuthnError) {
            let response = try RegistrationResponse(json: vector.responseJSON)
            outcome = .success(try await party.verifyRegistration(
                response, challenge: vector.challenge, requireUserVerification: vector.requireUserVerification))
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let result):
            #expect(vector.expectsSuccess, "verified, expected \(vector.expectedError ?? "")")
            let actual: [String: Any] = [
                "format": result.format, "attestationType": result.attestationType.rawValue,
                "attestationTrusted": result.attestationTrusted, "aaguid": result.aaguid.description,
                "signCount": Int(result.signCount), "backupEligible": result.backupEligible, "backupState": result.backupState,
                "userVerified": result.userVerified, "passkeyType": result.passkeyType.rawValue,
                "credentialId": Base64URL.encode(result.credentialID),
                "metadataDescription": party.metadata?.entry(for: result.aaguid)?.description as Any,
            ]
            for (key, value) in vector.expect {
                switch actual[key] {
                case let bool as Bool: #expect(value as? Bool == bool, "\(key)")
                case let int as Int: #expect(value as? Int == int, "\(key)")
                case let string as String: #expect(value as? String == string, "\(key)")
                default: #expect(["verified"].contains(key), "\(key) is not checked")
                }
            }
        case .failure(let error):
            #expect(!vector.expectsSuccess, "refused: \(error)")
            #expect(error.code.name == vector.expectedError, "\(error)")
        }
    }

    @Test(arguments: Vector.all.filter { $0.ceremony == "authentication" })
    func authenticationVector(_ vector: Vector) async throws {
        let party = try await vector.relyingParty()
        let credential = try vector.storedCredential()
        let outcome: Result<VerifiedAuthentication, WebAuthnError>
        do throws(WebAuthnError) {
            let response = try AuthenticationResponse(json: vector.responseJSON)
            outcome = .success(try party.verifyAuthentication(
                response, challenge: vector.challenge, credential: credential,
                requireUserVerification: vector.requireUserVerification))
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let result):
            #expect(vector.expectsSuccess, "verified, expected \(vector.expectedError ?? "")")
            if let count = vector.expect["newSignCount"] as? Int { #expect(Int(result.newSignCount) == count) }
            if let state = vector.expect["backupState"] as? Bool { #expect(result.backupState == state) }
            if let uv = vector.expect["userVerified"] as? Bool { #expect(result.userVerified == uv) }
        case .failure(let error):
            #expect(!vector.expectsSuccess, "refused: \(error)")
            #expect(error.code.name == vector.expectedError, "\(error)")
        }
    }
}
