import ArgumentParser
import Crypto
import Foundation
import TesseraCore

/// Device registrations per second, end to end against a running `tessera serve` whose tenant has hybrid join through
/// Kerberos enabled: each request carries a fresh SPNEGO token (a new authenticator, from MIT's GSSAPI and the
/// machine's keytab, made before the clock starts) and a new key's certificate request, over its own HTTP connection;
/// the server validates the ticket, asks AD about the computer through the connector, issues the certificate and
/// writes the device. One computer's keytab: the first request creates its device, the others re-register it.
struct DeviceRegistrationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "Device registrations per second through Kerberos, end to end.")
    @Option(help: "Tessera's URL (the host of the SPN adrs/<host>).") var server: String
    @Option(help: "The tenant id.") var tenant: String
    @Option(help: "A domain computer's keytab.") var keytab: String
    @Option(help: "The computer's principal in the keytab (default: its first).") var principal: String?
    @Option(help: "Connect to this IP address instead of resolving the server's name.") var address: String?
    @Option(help: "PEM file of the CA of Tessera's TLS certificate.") var caFile: String?
    @Option(help: "Registrations to send.") var count = 200
    @Option(help: "Requests in flight at once.") var concurrency = 8

    func run() async throws {
        let base = server.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let host = URL(string: base)?.host else { throw ValidationError("--server has no host") }
        setenv("KRB5_CLIENT_KTNAME", "FILE:" + URL(fileURLWithPath: keytab).standardizedFileURL.path, 1)
        setenv("KRB5CCNAME", "MEMORY:tessera-bench-devices", 1)
        // The client's work, before the clock starts: tokens (each its own GSSAPI context) and request bodies.
        var requests: [(token: String, body: [UInt8])] = []
        for _ in 0..<count {
            let token = try GSSAPIInitiator(principal: principal).firstToken(service: "adrs@\(host)")
            let body = try DeviceCommand.Join.body(key: P256.Signing.PrivateKey(), name: nil).serializedBytes
            requests.append((Data(token).base64EncodedString(), body))
        }
        let url = "\(base)/EnrollmentServer/\(tenant)/device"
        let (caFile, address) = (self.caFile, self.address)
        let start = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0, failures = 0
            func submit() {
                let request = requests[next]
                next += 1
                group.addTask {
                    let response = try await DeviceJoinHTTP.post(
                        url: url, body: request.body,
                        headers: [("Authorization", "Negotiate " + request.token), ("Content-Type", "application/json")],
                        caFile: caFile, address: address)
                    return response.status == 200 ? 0 : 1
                }
            }
            while next < min(concurrency, requests.count) { submit() }
            for try await failed in group {
                failures += failed
                if next < requests.count { submit() }
            }
            return failures
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        say(String(format: "%d registrations in %.2f s: %.1f registrations/s (%d connections at once, %d refused)",
                   count, seconds, Double(count) / seconds, concurrency, failures))
        if failures > 0 { throw ExitCode(1) }
    }
}
