import ArgumentParser
import Foundation
import Testing
import Server
import TesseraCore
@testable import TesseraCommands

/// `tessera config check` refuses what `serve` would refuse at start, not only what is not TOML: a value out of range,
/// a malformed URL or address, options that exclude each other, and the files serve cannot start without (the
/// key-encryption key, the organisation's certificate and key), each named with where it came from.
@Suite struct ConfigCheckValuesTests {
    func refusal(_ file: String, arguments: [String] = [], environment: [String: String] = [:]) -> String? {
        do {
            _ = try ConfigCommand.Check.report(arguments: ["--config", "tessera.toml"] + arguments, environment: environment) { _ in file }
            return nil
        } catch let error as ValidationError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// What the file's reader cannot see alone: options that need or exclude each other, and files that must open.
    @Test(arguments: [
        ("http = true\nhost = \"0.0.0.0\"", "--http on 0.0.0.0 would serve plain http to other machines: listen on 127.0.0.1 behind a proxy on this machine, or add --allow-http-on-network when a proxy elsewhere reaches it over a private network (file tessera.toml:1)"),
        ("http = true\npublic-url = [\"https://login.contoso.com\"]", "--http with an https:// --public-url means a reverse proxy terminates TLS: name it with --trusted-proxy"),
        ("tls-cert = \"fullchain.pem\"", "--tls-cert and --tls-key go together: give both (file tessera.toml:1)"),
        ("http = true\ntls-cert = \"fullchain.pem\"\ntls-key = \"privkey.pem\"", "--tls-cert serves https: drop --http (behind a proxy that terminates TLS, the proxy holds the certificate) (file tessera.toml:2)"),
        ("key-encryption-key-file = \"no-such-kek\"", "--key-encryption-key-file: cannot read the key-encryption key file no-such-kek (file tessera.toml:1)"),
    ])
    func whatServeRefusesAtStartIsRefused(file: String, expected: String) throws {
        let message = try #require(refusal(file), "config check accepted \(file)")
        #expect(message == "configuration: " + expected || message.hasPrefix("configuration: " + expected), "\(message)")
    }

    /// Flags given to the check (to see them override the rest) are checked as serve checks them.
    @Test(arguments: [
        (["--log-level", "loud"], "--log-level must be one of trace, debug, info, notice, warning, error, critical (flag)"),
        (["--public-url", "ftp://login.contoso.com"], "--public-url ftp://login.contoso.com is not a https:// URL with a host name and nothing after it (flag)"),
        (["--trusted-proxy", "nginx"], "--trusted-proxy nginx is not an IP address or CIDR range (flag)"),
        (["--forwarded-headers", "both"], "--forwarded-headers both is not one of x-forwarded, forwarded (flag)"),
        (["--backup-retention-days", "0"], "--backup-retention-days must be 1 to 365 (flag)"),
        (["--idle-timeout", "0"], "--idle-timeout must be 1 to 3600 seconds (flag)"),
        (["--drain-seconds", "301"], "--drain-seconds must be 0 to 300 (flag)"),
        (["--signing-key-rotation-days", "400"], "--signing-key-rotation-days must be 0 (only `tessera keys rotate`) to 365 (flag)"),
        (["--graph-rate-limit=-1"], "rate limits cannot be negative"),
    ])
    func aFlagServeRefusesIsRefused(arguments: [String], expected: String) throws {
        let message = try #require(refusal("port = 9443", arguments: arguments), "config check accepted \(arguments)")
        #expect(message == "configuration: " + expected, "\(message)")
    }

    @Test func aKeyEncryptionKeyFromTheEnvironmentMustOpen() throws {
        let key = try #require(refusal("port = 9443", environment: ["TESSERA_KEY_ENCRYPTION_KEY": "c2hvcnQ="]))
        #expect(key.hasPrefix("configuration: TESSERA_KEY_ENCRYPTION_KEY: "), "\(key)")
    }

    @Test func theCertificateMustCoverTheCanonicalHostAndMatchItsKey() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-config-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let served = try TLSMaterial.loadOrCreate(directory: folder + "/a", hosts: ["login.contoso.test"])
        let other = try TLSMaterial.loadOrCreate(directory: folder + "/b", hosts: ["login.contoso.test"])
        let pair = "tls-cert = \"\(served.certificatePath)\"\ntls-key = \"\(served.keyPath)\"\n"

        #expect(refusal(pair + "public-url = [\"https://login.contoso.test\"]") == nil)
        let name = try #require(refusal(pair + "public-url = [\"https://login.fabrikam.test\"]"))
        #expect(name.contains("cannot be served for https://login.fabrikam.test: the certificate does not cover login.fabrikam.test"), "\(name)")
        #expect(name.hasSuffix("(file tessera.toml:1)"), "\(name)")
        let mismatched = "tls-cert = \"\(served.certificatePath)\"\ntls-key = \"\(other.keyPath)\"\npublic-url = [\"https://login.contoso.test\"]"
        let key = try #require(refusal(mismatched))
        #expect(key.contains("the key in \(other.keyPath) does not match the certificate in \(served.certificatePath)"), "\(key)")
        let missing = try #require(refusal(pair + "public-url = [\"https://login.contoso.test\"]", arguments: ["--tls-key", folder + "/none.pem"]))
        #expect(missing.contains(folder + "/none.pem"), "\(missing)")
    }

    @Test func aKeyEncryptionKeyFileThatOpensIsAccepted() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-kek-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data((KeyEncryptionKey.generate() + "\n").utf8).write(to: URL(fileURLWithPath: path))
        #expect(refusal("key-encryption-key-file = \"\(path)\"") == nil)
        try Data("not base64 of 32 bytes\n".utf8).write(to: URL(fileURLWithPath: path))
        let bad = try #require(refusal("key-encryption-key-file = \"\(path)\""))
        #expect(bad.hasPrefix("configuration: --key-encryption-key-file: \(path): ") && bad.hasSuffix("(file tessera.toml:1)"), "\(bad)")
    }
}
