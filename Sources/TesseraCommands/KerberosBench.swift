import ArgumentParser
import Foundation
import Kerberos

/// Kerberos AP-REQ validations per second on one core (ticket and authenticator decryption, PAC parsing and its
/// server checksum, the replay cache, the AP-REP) next to the decryption of the same ticket's encrypted part, in the
/// same run, interleaved. The floor is the enctype's decryption as RFC 3961 defines it (for aes-cts-hmac-sha1-96:
/// AES-CTS and the HMAC-SHA1-96 check, which a validation cannot skip); AES-CTS alone is printed beside it.
/// Single-threaded: run it under `taskset -c 0`.
struct KerberosBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kerberos", abstract: "Kerberos AP-REQ validations per second vs the decryption of the same ticket.")
    @Option(help: "The captured tickets (Tests/KerberosTests/Fixtures).") var fixtures = "Tests/KerberosTests/Fixtures"
    @Option(help: "The token to validate, in the fixtures folder.") var token = "ws01-spnego.b64"
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Option(help: "Rounds; medians are reported.") var rounds = 5

    func run() async throws {
        let folder = URL(fileURLWithPath: fixtures)
        let keys = try ServiceKeys(keytab: try Data(contentsOf: folder.appendingPathComponent("service.keytab")))
        struct Metadata: Decodable { let capturedAt: Int64, realm: String, servicePrincipal: String }
        let metadata = try JSONDecoder().decode(
            Metadata.self, from: Data(contentsOf: folder.appendingPathComponent("fixtures.json")))
        let text = try String(contentsOf: folder.appendingPathComponent(token), encoding: .utf8)
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("\(token) is not base64")
        }
        let tokenBytes = [UInt8](bytes)
        let now = Date(timeIntervalSince1970: TimeInterval(metadata.capturedAt))
        // The cache is real and is emptied before each validation, so the one captured token is never a replay.
        let cache = InMemoryReplayCache()
        let validator = APRequestValidator(
            servicePrincipal: PrincipalName(metadata.servicePrincipal), realm: metadata.realm, keys: keys,
            replayCache: cache)
        let raw = try RawTicketDecryption(token: tokenBytes, keys: keys)
        let accepted = try await validator.validate(tokenBytes, now: now)
        say("validating \(token): \(tokenBytes.count) bytes, client \(accepted.client), \(accepted.pac.logonInfo.groupSids.count) group SIDs")

        struct Rates { var cts: Double, decrypt: Double, validate: Double }
        var samples: [Rates] = []
        for round in 0..<rounds {
            var spent = (cts: Duration.zero, decrypt: Duration.zero, validate: Duration.zero)
            var count = 0
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 3_000))  // three measurements, interleaved
            while ContinuousClock.now < deadline {
                var start = ContinuousClock.now
                for _ in 0..<32 { _ = try raw.decryptOnly() }
                spent.cts += ContinuousClock.now - start
                start = ContinuousClock.now
                for _ in 0..<32 { _ = try raw.decryptAndVerify() }
                spent.decrypt += ContinuousClock.now - start
                start = ContinuousClock.now
                for _ in 0..<32 {
                    cache.removeAll()
                    _ = try await validator.validate(tokenBytes, now: now)
                }
                spent.validate += ContinuousClock.now - start
                count += 32
            }
            let rates = Rates(
                cts: Double(count) / spent.cts.seconds, decrypt: Double(count) / spent.decrypt.seconds,
                validate: Double(count) / spent.validate.seconds)
            samples.append(rates)
            say(String(format: "round %d: AES-CTS %.0f/s, decrypt and verify %.0f/s, AP-REQ validation %.0f/s (%.2f of the decryption, %.2f of AES-CTS)",
                       round + 1, rates.cts, rates.decrypt, rates.validate, rates.validate / rates.decrypt, rates.validate / rates.cts))
        }
        print(String(format: """
            | AES-CTS alone /s | decrypt and verify (AES-CTS + HMAC-SHA1-96) /s | AP-REQ validations /s | ratio to decrypt and verify | ratio to AES-CTS |
            |---|---|---|---|---|
            | %.0f | %.0f | %.0f | %.2f | %.2f |
            """, median(samples.map(\.cts)), median(samples.map(\.decrypt)), median(samples.map(\.validate)),
            median(samples.map { $0.validate / $0.decrypt }), median(samples.map { $0.validate / $0.cts })))
    }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
