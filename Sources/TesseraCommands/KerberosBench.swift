import ArgumentParser
import Foundation
import Kerberos

/// Kerberos AP-REQ validations per second on one core (ticket and authenticator decryption, PAC parsing and its
/// server checksum, the replay cache, the AP-REP) next to three floors measured on the same token in the same run,
/// interleaved: AES-CTS alone of the ticket's encrypted part; its decryption as RFC 3961 defines it (for
/// aes-cts-hmac-sha1-96, AES-CTS and the HMAC-SHA1-96 check); and the cryptography a validation cannot skip (that
/// decryption, the authenticator's keys and decryption, the PAC's server checksum, the AP-REP's keys and encryption),
/// each part timed on its own. What a validation spends beyond the last is overhead. Single-threaded: run it under
/// `taskset -c 1`.
struct KerberosBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kerberos",
        abstract: "Kerberos AP-REQ validations per second vs the cryptography of the same token.")
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
        let unskippable = try UnskippableCryptography(token: tokenBytes, keys: keys)
        let accepted = try await validator.validate(tokenBytes, now: now)
        say("validating \(token): \(tokenBytes.count) bytes, client \(accepted.client), "
            + "\(accepted.pac.logonInfo.groupSids.count) group SIDs")

        let parts = UnskippableCryptography.Part.allCases
        struct Round {
            var cts: Duration = .zero, decrypt: Duration = .zero, validate: Duration = .zero
            var parts: [Duration]
            var count = 0
            /// Operations per second for a total time.
            func rate(_ spent: Duration) -> Double { Double(count) / spent.seconds }
            var unskippable: Duration { parts.reduce(.zero, +) }
        }
        var rounds: [Round] = []
        for index in 0..<self.rounds {
            var round = Round(parts: parts.map { _ in .zero })
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 3_000))  // measurements interleaved
            while ContinuousClock.now < deadline {
                var start = ContinuousClock.now
                for _ in 0..<32 { _ = try raw.decryptOnly() }
                round.cts += ContinuousClock.now - start
                start = ContinuousClock.now
                for _ in 0..<32 { _ = try raw.decryptAndVerify() }
                round.decrypt += ContinuousClock.now - start
                for (at, part) in parts.enumerated() {
                    start = ContinuousClock.now
                    for _ in 0..<32 { _ = try unskippable.run(part) }
                    round.parts[at] += ContinuousClock.now - start
                }
                start = ContinuousClock.now
                for _ in 0..<32 {
                    cache.removeAll()
                    _ = try await validator.validate(tokenBytes, now: now)
                }
                round.validate += ContinuousClock.now - start
                round.count += 32
            }
            rounds.append(round)
            let perPart = zip(parts, round.parts).map { part, spent in
                "\(part.rawValue) \(Int(nanoseconds(spent, round.count))) ns"
            }
            let validate = round.rate(round.validate)
            say(
                String(format: "round %d: AES-CTS %.0f/s, decrypt and verify %.0f/s, ", index + 1,
                       round.rate(round.cts), round.rate(round.decrypt))
                    + String(format: "unskippable cryptography %.0f/s", round.rate(round.unskippable))
                    + " (\(perPart.joined(separator: ", "))), "
                    + String(format: "AP-REQ validation %.0f/s (%.2f of the unskippable cryptography, ", validate,
                             validate / round.rate(round.unskippable))
                    + String(format: "%.2f of the decryption, %.2f of AES-CTS)", validate / round.rate(round.decrypt),
                             validate / round.rate(round.cts)))
        }
        func median(_ rate: (Round) -> Double) -> Double { self.median(rounds.map(rate)) }
        let validate = median { $0.rate($0.validate) }, floor = median { $0.rate($0.unskippable) }
        print("| AES-CTS alone /s | decrypt and verify (AES-CTS + HMAC-SHA1-96) /s | unskippable cryptography /s "
            + "| AP-REQ validations /s | ratio to the unskippable cryptography | ratio to decrypt and verify "
            + "| ratio to AES-CTS |")
        print("|---|---|---|---|---|---|---|")
        print(String(format: "| %.0f | %.0f | %.0f (%.2f µs) | %.0f (%.2f µs) | ", median { $0.rate($0.cts) },
                     median { $0.rate($0.decrypt) }, floor, 1e6 / floor, validate, 1e6 / validate)
            + String(format: "%.2f | %.2f | %.2f |", median { $0.rate($0.validate) / $0.rate($0.unskippable) },
                     median { $0.rate($0.validate) / $0.rate($0.decrypt) },
                     median { $0.rate($0.validate) / $0.rate($0.cts) }))
        let partMedians = parts.indices.map { at in
            "\(parts[at].rawValue) \(Int(median { nanoseconds($0.parts[at], $0.count) }))"
        }
        print("unskippable cryptography, median ns per validation: \(partMedians.joined(separator: ", "))")
    }

    func nanoseconds(_ spent: Duration, _ count: Int) -> Double { spent.seconds * 1e9 / Double(count) }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
