import ArgumentParser
import Crypto
import Foundation
import TesseraCore
import WebAuthn
import X509
import SwiftASN1
import _CryptoExtras

/// Assertion verifications per second beside the raw swift-crypto verify rate for the same keys and signatures,
/// and packed-with-x5c registrations per second. Single-threaded: run it under `taskset -c 0` (scripts/bench-webauthn
/// does, beside py_webauthn on the same vectors).
struct WebAuthnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webauthn", abstract: "WebAuthn verifications per second vs raw signature verification.")
    @Option(help: "The vectors folder (Tests/WebAuthnTests/Vectors).") var vectors = "Tests/WebAuthnTests/Vectors"
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Option(help: "Rounds; medians are reported.") var rounds = 5
    @Flag(help: "Print one JSON line per algorithm and round (scripts/bench-webauthn reads them).") var json = false
    @Flag(help: "Also time the verification's parts (client data, authenticator data, hashing) on their own.") var breakdown = false

    struct Assertion {
        let party: RelyingParty
        let challenge: [UInt8]
        let credential: StoredCredential
        let response: AuthenticationResponse
        let json: [UInt8]
        let requireUV: Bool
        let raw: @Sendable () -> Bool
    }

    func run() async throws {
        let folder = vectors + "/fido2"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        var lines: [String] = ["| algorithm | raw swift-crypto verify/s | Tessera verify/s | ratio | Tessera from JSON/s |", "|---|---|---|---|---|"]
        for alg in ["es256", "eddsa", "rs256"] {
            var assertions: [Assertion] = []
            for file in files where file.lowercased().contains(alg) {
                let vector = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))))
                guard vector["ceremony"]?.stringValue == "authentication", vector["expect"]?["verified"]?.boolValue != false else { continue }
                assertions.append(try Self.assertion(vector["input"]!))
            }
            guard !assertions.isEmpty else { throw ValidationError("no \(alg) authentication vectors in \(folder)") }
            var samples: [(raw: Double, verify: Double, json: Double)] = []
            for _ in 0..<rounds {
                // The three are interleaved in small batches, so a change in the machine's speed (these are shared,
                // noisy machines) falls on all three alike and the ratios hold.
                let rates = interleaved([
                    { i in assertions[i % assertions.count].raw() },
                    { i in
                        let a = assertions[i % assertions.count]
                        return (try? a.party.verifyAuthentication(a.response, challenge: a.challenge, credential: a.credential,
                                                                  requireUserVerification: a.requireUV)) != nil
                    },
                    { i in
                        let a = assertions[i % assertions.count]
                        guard let response = try? AuthenticationResponse(json: a.json) else { return false }
                        return (try? a.party.verifyAuthentication(response, challenge: a.challenge, credential: a.credential,
                                                                  requireUserVerification: a.requireUV)) != nil
                    },
                ])
                samples.append((rates[0], rates[1], rates[2]))
                if json {
                    print(String(format: #"{"alg": "%@", "raw": %.1f, "verify": %.1f, "fromJSON": %.1f}"#,
                                 Self.names[alg]!, rates[0], rates[1], rates[2]))
                }
            }
            if breakdown, let a = assertions.first {
                let clientData = measure { _ in (try? CollectedClientData(json: a.response.clientDataJSON)) != nil }
                let authData = measure { _ in (try? AuthenticatorData(a.response.authenticatorData)) != nil }
                let hash = measure { _ in SHA256.hash(data: a.response.clientDataJSON).withUnsafeBytes { $0.count == 32 } }
                let id = measure { _ in WebAuthn.Base64URL.matches(a.response.id, a.response.rawID) }
                let parse = measure { _ in (try? AuthenticationResponse(json: a.json)) != nil }
                say(String(format: "  parts, ns each: credential JSON %.0f, client data %.0f, authenticator data %.0f, SHA-256 of client data %.0f, id check %.0f",
                           1e9 / parse, 1e9 / clientData, 1e9 / authData, 1e9 / hash, 1e9 / id))
            }
            let raw = median(samples.map(\.raw)), verify = median(samples.map(\.verify)), fromJSON = median(samples.map(\.json))
            let ratio = median(samples.map { $0.verify / $0.raw })
            if !json {
                say(String(format: "%@: raw %.0f/s, verify %.0f/s (ratio %.2f, median of %d rounds), from JSON %.0f/s",
                           Self.names[alg]!, raw, verify, ratio, rounds, fromJSON))
            }
            lines.append(String(format: "| %@ | %.0f | %.0f | %.2f | %.0f |", Self.names[alg]!, raw, verify, ratio, fromJSON))
        }
        // Registration: packed with an x5c chain to a trust anchor (signature, §8.2.1 checks, RFC 5280 path).
        let registration = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/es256-packed-x5c-trusted-registration.json"))))
        let input = registration["input"]!
        let anchors = try (input["trustAnchors"]?.arrayValue ?? []).map { try Certificate(pemEncoded: $0.stringValue ?? "") }
        let party = RelyingParty(id: input["rpId"]!.stringValue!, origins: input["origins"]!.arrayValue!.compactMap(\.stringValue), trustAnchors: anchors)
        let response = try RegistrationResponse(json: input["response"]!.serializedBytes)
        let challenge = WebAuthn.Base64URL.decode(input["challenge"]!.stringValue!)!
        var registrations: [Double] = []
        for _ in 0..<rounds {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            let start = ContinuousClock.now
            var n = 0
            while ContinuousClock.now < deadline {
                let result = try await party.verifyRegistration(response, challenge: challenge, requireUserVerification: true)
                guard result.attestationTrusted else { throw ValidationError("the packed x5c registration did not chain") }
                n += 1
            }
            registrations.append(Double(n) / (ContinuousClock.now - start).seconds)
            if json { print(String(format: #"{"alg": "packed-x5c-registration", "perSecond": %.1f}"#, registrations.last!)) }
        }
        guard !json else { return }
        say(String(format: "packed x5c registration: %.0f/s (median of %d rounds)", median(registrations), rounds))
        print("")
        print(lines.joined(separator: "\n"))
        print(String(format: "\npacked (x5c, chained to a trust anchor) registrations/s: %.0f", median(registrations)))
    }

    static let names = ["es256": "ES256", "eddsa": "EdDSA", "rs256": "RS256"]

    /// Runs the bodies in turn, 32 calls at a time, for `seconds` each in all; returns each one's calls per second.
    func interleaved(_ bodies: [(Int) -> Bool]) -> [Double] {
        var spent = [Duration](repeating: .zero, count: bodies.count)
        var counts = [Int](repeating: 0, count: bodies.count)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000) * bodies.count)
        while ContinuousClock.now < deadline {
            for (k, body) in bodies.enumerated() {
                let start = ContinuousClock.now
                for _ in 0..<32 {
                    precondition(body(counts[k]), "a benchmark verification failed")
                    counts[k] += 1
                }
                spent[k] += ContinuousClock.now - start
            }
        }
        return zip(counts, spent).map { Double($0) / $1.seconds }
    }

    func measure(_ body: (Int) -> Bool) -> Double {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        var n = 0
        while ContinuousClock.now < deadline {
            for _ in 0..<64 {
                precondition(body(n), "a benchmark verification failed")
                n += 1
            }
        }
        return Double(n) / (ContinuousClock.now - start).seconds
    }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// One assertion, and a raw check of the same signature with swift-crypto's own key type.
    static func assertion(_ input: JSONValue) throws -> Assertion {
        let stored = input["credential"]!
        let cose = WebAuthn.Base64URL.decode(stored["publicKey"]!.stringValue!)!
        let key = try CredentialPublicKey(cose: cose)
        let credential = StoredCredential(id: WebAuthn.Base64URL.decode(stored["id"]!.stringValue!)!, publicKey: key,
                                          signCount: UInt32(stored["signCount"]!.intValue!), backupEligible: stored["backupEligible"]?.boolValue ?? false)
        let json = input["response"]!.serializedBytes
        let response = try AuthenticationResponse(json: json)
        let signed = response.authenticatorData + Array(SHA256.hash(data: response.clientDataJSON))
        let signature = response.signature
        let map = try CBORDecoder().decode(cose)
        let raw: @Sendable () -> Bool
        switch key.algorithm {
        case .es256:
            let k = try P256.Signing.PublicKey(rawRepresentation: map[intKey: -2]!.bytesValue! + map[intKey: -3]!.bytesValue!)
            raw = { (try? P256.Signing.ECDSASignature(derRepresentation: signature)).map { k.isValidSignature($0, for: signed) } ?? false }
        case .eddsa:
            let k = try Curve25519.Signing.PublicKey(rawRepresentation: map[intKey: -2]!.bytesValue!)
            raw = { k.isValidSignature(signature, for: signed) }
        case .rs256:
            let k = try _RSA.Signing.PublicKey(n: map[intKey: -1]!.bytesValue!, e: map[intKey: -2]!.bytesValue!)
            raw = { k.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signed), padding: .insecurePKCS1v1_5) }
        default:
            throw ValidationError("no raw benchmark for \(key.algorithm)")
        }
        return Assertion(
            party: RelyingParty(id: input["rpId"]!.stringValue!, origins: input["origins"]!.arrayValue!.compactMap(\.stringValue)),
            challenge: WebAuthn.Base64URL.decode(input["challenge"]!.stringValue!)!, credential: credential, response: response,
            json: json, requireUV: input["requireUserVerification"]?.boolValue ?? false, raw: raw)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
