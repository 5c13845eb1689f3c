import ArgumentParser
import Foundation
import Kerberos

/// Kerberos AP-REQ validations per second on one core (ticket and authenticator decryption, PAC parsing and its
/// server checksum, the replay cache, the AP-REP) next to the raw AES-CTS decryption of the same ticket, in the same
/// run, interleaved. Single-threaded: run it under `taskset -c 0`.
struct KerberosBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kerberos", abstract: "Kerberos AP-REQ validations per second vs the raw AES-CTS decryption.")
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

        var samples: [(raw: Double, validate: Double)] = []
        for round in 0..<rounds {
            var spent = (raw: Duration.zero, validate: Duration.zero)
            var counts = (raw: 0, validate: 0)
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 2_000))
            while ContinuousClock.now < deadline {
                var start = ContinuousClock.now
                for _ in 0..<32 { _ = try raw.run() }
                spent.raw += ContinuousClock.now - start
                counts.raw += 32
                start = ContinuousClock.now
                for _ in 0..<32 {
                    cache.removeAll()
                    _ = try await validator.validate(tokenBytes, now: now)
                }
                spent.validate += ContinuousClock.now - start
                counts.validate += 32
            }
            let rates = (raw: Double(counts.raw) / spent.raw.seconds, validate: Double(counts.validate) / spent.validate.seconds)
            samples.append(rates)
            say(String(format: "round %d: raw AES-CTS %.0f/s, AP-REQ validation %.0f/s (%.2f)", round + 1, rates.raw,
                       rates.validate, rates.validate / rates.raw))
        }
        let rawMedian = median(samples.map(\.raw)), validateMedian = median(samples.map(\.validate))
        let ratio = median(samples.map { $0.validate / $0.raw })
        print(String(format: "| raw AES-CTS decryptions/s | AP-REQ validations/s | ratio |\n|---|---|---|\n| %.0f | %.0f | %.2f |",
                     rawMedian, validateMedian, ratio))
    }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
