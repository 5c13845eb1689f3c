import ArgumentParser
import Foundation
import TesseraCore
import WebAuthn
import SwiftASN1
import X509

/// `tessera webauthn`: verify a ceremony or explain an authenticator's bytes, for administrators and tests.
///
/// `verify-registration` and `verify-authentication` read one JSON object on stdin and print one on stdout; they
/// exit 0 when the ceremony is verified, 1 when it is rejected and 2 when the input is unusable.
struct WebAuthnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webauthn", abstract: "Verify WebAuthn ceremonies and inspect authenticator data.",
        subcommands: [VerifyRegistration.self, VerifyAuthentication.self, Inspect.self])
}

/// Input that cannot be used: printed as a rejection with code `input.invalid`, exit 2.
struct UnusableInput: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

struct VerifyRegistration: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-registration", abstract: "Verify a registration (create()) read as JSON on stdin.")

    func run() async throws {
        try await CeremonyIO.run { input in
            let party = try await CeremonyIO.relyingParty(input)
            let response = try CeremonyIO.registrationResponse(input)
            let result = try await party.verifyRegistration(
                response, challenge: try CeremonyIO.challenge(input),
                requireUserVerification: input["requireUserVerification"]?.boolValue ?? false,
                requireTrustedAttestation: input["requireTrustedAttestation"]?.boolValue ?? false)
            var out: [String: JSONValue] = [
                "verified": true,
                "credentialId": .string(WebAuthn.Base64URL.encode(result.credentialID)),
                "publicKey": .string(WebAuthn.Base64URL.encode(result.publicKey.cose)),
                "publicKeyAlgorithm": .int(Int64(result.publicKey.algorithm.rawValue)),
                "signCount": .int(Int64(result.signCount)),
                "aaguid": .string(result.aaguid.description),
                "format": .string(result.format),
                "attestationType": .string(result.attestationType.rawValue),
                "attestationTrusted": .bool(result.attestationTrusted),
                "backupEligible": .bool(result.backupEligible),
                "backupState": .bool(result.backupState),
                "userVerified": .bool(result.userVerified),
                "passkeyType": .string(result.passkeyType.rawValue),
                "attestationCertificates": .array(result.attestationCertificates.map { .string((try? $0.serializeAsPEM().pemString) ?? "") }),
            ]
            if let name = result.authenticatorName { out["authenticatorName"] = .string(name) }
            // What the registration does not prove: the AAGUID and the name read from it are claims unless attested.
            out["aaguidVerified"] = .bool(result.aaguidVerified)
            if result.claimsWindowsHello { out["windowsHello"] = result.isWindowsHello ? "verified" : "claimed" }
            if let reason = result.attestationUntrustedReason { out["attestationUntrustedReason"] = .string(reason) }
            if !result.caveats.isEmpty { out["caveats"] = .array(result.caveats.map { .string($0) }) }
            if let entry = party.metadata?.entry(for: result.aaguid) {
                if let description = entry.description { out["metadataDescription"] = .string(description) }
                if let icon = entry.icon { out["metadataIcon"] = .string(icon) }
            }
            return .object(out)
        }
    }
}

struct VerifyAuthentication: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-authentication", abstract: "Verify an authentication (get()) read as JSON on stdin.")

    func run() async throws {
        try await CeremonyIO.run { input in
            let party = try await CeremonyIO.relyingParty(input)
            let credential = try CeremonyIO.storedCredential(input)
            let response = try CeremonyIO.authenticationResponse(input)
            let result = try party.verifyAuthentication(
                response, challenge: try CeremonyIO.challenge(input), credential: credential,
                requireUserVerification: input["requireUserVerification"]?.boolValue ?? false,
                requireUserHandle: input["requireUserHandle"]?.boolValue ?? false)
            return [
                "verified": true,
                "newSignCount": .int(Int64(result.newSignCount)),
                "backupState": .bool(result.backupState),
                "backupEligible": .bool(result.backupEligible),
                "userVerified": .bool(result.userVerified),
            ]
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain an attestation object or authenticator data, field by field.",
        discussion: "Reads a file (or stdin): raw bytes, base64url, base64 or hex text, or a PublicKeyCredential JSON.")

    @Argument(help: "A file; stdin when omitted or '-'.") var file: String?

    func run() throws {
        let data: [UInt8]
        if let file, file != "-" {
            guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            data = Array(contents)
        } else {
            data = Array(FileHandle.standardInput.readDataToEndOfFile())
        }
        let inputs = Self.decode(data)
        guard !inputs.isEmpty else {
            print("not an attestation object, authenticator data, or a PublicKeyCredential")
            throw ExitCode(2)
        }
        for (label, bytes) in inputs {
            if let label { print(label) }
            print(Inspector.explain(bytes))
        }
    }

    /// What to explain in the input, with a heading when there is more than one thing.
    static func decode(_ data: [UInt8]) -> [(String?, [UInt8])] {
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{"), let json = try? JSONParser.parse(text) {
            let inner = json["response"]?["response"] ?? json["response"] ?? json
            var heading = inner["clientDataJSON"]?.stringValue.flatMap(WebAuthn.Base64URL.decode).map {
                "clientDataJSON: " + String(decoding: $0, as: UTF8.self)
            }
            var found: [(String?, [UInt8])] = []
            for key in ["attestationObject", "authenticatorData"] {
                if let bytes = inner[key]?.stringValue.flatMap(WebAuthn.Base64URL.decode) {
                    found.append((heading, bytes))
                    heading = nil
                }
            }
            return found
        }
        if !text.isEmpty, text.allSatisfy({ $0.isHexDigit }), text.count % 2 == 0 {
            var bytes: [UInt8] = []
            var index = text.startIndex
            while index < text.endIndex {
                let next = text.index(index, offsetBy: 2)
                bytes.append(UInt8(text[index..<next], radix: 16)!)
                index = next
            }
            return [(nil, bytes)]
        }
        if !text.isEmpty, let bytes = WebAuthn.Base64URL.decode(text) ?? WebAuthn.Base64URL.decodeStandard(text) { return [(nil, bytes)] }
        return data.isEmpty ? [] : [(nil, data)]
    }
}

/// Reading the JSON contract of the verify commands and writing their answers.
enum CeremonyIO {
    static func run(_ body: (JSONValue) async throws -> JSONValue) async throws {
        let data = Array(FileHandle.standardInput.readDataToEndOfFile())
        let output: JSONValue
        let code: Int32
        do {
            let input: JSONValue
            do { input = try JSONParser.parse(data) } catch { throw UnusableInput("stdin is not JSON: \(error)") }
            guard input.objectValue != nil else { throw UnusableInput("stdin must be one JSON object") }
            output = try await body(input)
            code = 0
        } catch let error as WebAuthnError {
            output = ["verified": false, "error": .string(error.code.name), "message": .string(error.message)]
            code = 1
        } catch let error as UnusableInput {
            output = ["verified": false, "error": "input.invalid", "message": .string(error.message)]
            code = 2
        }
        print(output.serialized)
        if code != 0 { throw ExitCode(code) }
    }

    static func string(_ input: JSONValue, _ key: String) throws -> String {
        guard let value = input[key]?.stringValue, !value.isEmpty else { throw UnusableInput("\"\(key)\" must be a non-empty string") }
        return value
    }

    static func challenge(_ input: JSONValue) throws -> [UInt8] {
        guard let challenge = WebAuthn.Base64URL.decode(try string(input, "challenge")), !challenge.isEmpty else {
            throw UnusableInput("\"challenge\" must be base64url")
        }
        return challenge
    }

    static func certificates(_ value: JSONValue?, _ key: String) throws -> [Certificate] {
        guard let value else { return [] }
        guard let items = value.arrayValue else { throw UnusableInput("\"\(key)\" must be an array of PEM strings") }
        return try items.enumerated().map { index, item in
            guard let pem = item.stringValue, let certificate = try? Certificate(pemEncoded: pem) else {
                throw UnusableInput("\(key)[\(index)] is not a PEM certificate")
            }
            return certificate
        }
    }

    static func relyingParty(_ input: JSONValue) async throws -> RelyingParty {
        let rpID = try string(input, "rpId")
        guard let origins = input["origins"]?.arrayValue?.compactMap(\.stringValue), !origins.isEmpty else {
            throw UnusableInput("\"origins\" must be a non-empty array of strings")
        }
        var time = Date()
        if let text = input["verificationTime"]?.stringValue {
            guard let parsed = ISO8601DateFormatter().date(from: text) else { throw UnusableInput("\"verificationTime\" must be an RFC 3339 time") }
            time = parsed
        }
        var algorithms = COSEAlgorithm.defaultAllowed
        if let list = input["allowedAlgorithms"] {
            guard let items = list.arrayValue, !items.isEmpty, case let ids = items.compactMap(\.intValue), ids.count == items.count else {
                throw UnusableInput("\"allowedAlgorithms\" must be a non-empty array of COSE algorithm numbers")
            }
            algorithms = ids.map { COSEAlgorithm(Int($0)) }
            // An algorithm nothing here can verify would be a silent promise: refuse the configuration instead.
            let unsupported = algorithms.filter { !$0.isSupported }
            guard unsupported.isEmpty else {
                throw UnusableInput("\"allowedAlgorithms\" holds \(unsupported.map { String($0.rawValue) }.joined(separator: ", ")), "
                    + "which Tessera cannot verify; supported: \(COSEAlgorithm.supported.map { "\($0.rawValue) (\($0))" }.joined(separator: ", "))")
            }
        }
        var metadata: MetadataBLOB? = nil
        if let spec = input["metadata"] {
            // Inline, or from files: an MDS3 BLOB as downloaded from FIDO, and the root it must chain to.
            func member(_ name: String) -> String? {
                if let text = spec[name]?.stringValue { return text }
                guard let path = spec[name + "Path"]?.stringValue, let data = FileManager.default.contents(atPath: path) else { return nil }
                return String(decoding: data, as: UTF8.self)
            }
            guard let blob = member("blob"), let rootPEM = member("rootCertificate"),
                  let root = try? Certificate(pemEncoded: rootPEM) else {
                throw UnusableInput("\"metadata\" must be {\"blob\" or \"blobPath\", \"rootCertificate\" or \"rootCertificatePath\"}")
            }
            metadata = try await MetadataBLOB(jwt: blob, root: root, at: time)
        }
        let frozen = time
        return RelyingParty(
            id: rpID, origins: origins, allowedTopOrigins: input["allowedTopOrigins"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            allowedAlgorithms: algorithms, trustAnchors: try certificates(input["trustAnchors"], "trustAnchors"),
            metadata: metadata, clock: { frozen })
    }

    /// The browser's PublicKeyCredential JSON: its faults are the response's (a rejection), its absence the input's.
    static func responseJSON(_ input: JSONValue) throws -> [UInt8] {
        guard let response = input["response"], response.objectValue != nil else {
            throw UnusableInput("\"response\" must be the PublicKeyCredential JSON object")
        }
        return response.serializedBytes
    }

    static func registrationResponse(_ input: JSONValue) throws -> RegistrationResponse {
        try RegistrationResponse(json: try responseJSON(input))
    }

    static func authenticationResponse(_ input: JSONValue) throws -> AuthenticationResponse {
        try AuthenticationResponse(json: try responseJSON(input))
    }

    static func storedCredential(_ input: JSONValue) throws -> StoredCredential {
        guard let credential = input["credential"], credential.objectValue != nil else { throw UnusableInput("\"credential\" must be an object") }
        guard let id = credential["id"]?.stringValue.flatMap(WebAuthn.Base64URL.decode), !id.isEmpty else {
            throw UnusableInput("credential.id must be base64url")
        }
        guard let cose = credential["publicKey"]?.stringValue.flatMap(WebAuthn.Base64URL.decode) else {
            throw UnusableInput("credential.publicKey must be a base64url COSE key")
        }
        let key: CredentialPublicKey
        do throws(WebAuthnError) { key = try CredentialPublicKey(cose: cose) } catch { throw UnusableInput("credential.publicKey: \(error.message)") }
        guard let count = credential["signCount"]?.intValue, count >= 0, count <= Int64(UInt32.max) else {
            throw UnusableInput("credential.signCount must be a 32-bit unsigned integer")
        }
        var userHandle: [UInt8]? = nil
        if let text = credential["userHandle"]?.stringValue {
            guard let bytes = WebAuthn.Base64URL.decode(text) else { throw UnusableInput("credential.userHandle must be base64url") }
            userHandle = bytes
        }
        return StoredCredential(id: id, publicKey: key, signCount: UInt32(count),
                                backupEligible: credential["backupEligible"]?.boolValue ?? false, userHandle: userHandle)
    }
}
