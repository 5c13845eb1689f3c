import Crypto
import Foundation
import SwiftASN1
import Testing
import X509
@testable import Server
import TesseraCore
import TesseraTesting

/// `serve --tls-cert/--tls-key`: which host names a certificate covers (RFC 6125, wildcards as RFC 9525 allows them),
/// a key that is not the certificate's, validity, and a reload that swaps only a pair that can be served.
@Suite struct ServerCertificateTests {
    static let caKey = P256.Signing.PrivateKey()
    static let caName = try! DistinguishedName { CommonName("Contoso test CA") }

    /// A certificate for `names` with `key`, signed by the test CA, valid for the two days around `TestClock.start`
    /// unless told otherwise.
    static func issue(_ names: [GeneralName], key: P256.Signing.PrivateKey, commonName: String = "login.contoso.test",
                      from: Date = TestClock.start.addingTimeInterval(-86_400), until: Date = TestClock.start.addingTimeInterval(86_400)) throws -> String {
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: from, notValidAfter: until,
            issuer: caName, subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([.serverAuth])
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: .init(caKey))
        return try certificate.serializeAsPEM().pemString
    }

    static func ip(_ bytes: [UInt8]) -> GeneralName { .ipAddress(ASN1OctetString(contentBytes: bytes[...])) }

    static let loopbackV6: [UInt8] = Array(repeating: 0, count: 15) + [1]

    @Test func namesAndAddressesItCovers() throws {
        let key = P256.Signing.PrivateKey()
        let pair = try ServerCertificate(chainPEM: try Self.issue([.dnsName("login.contoso.test"), .dnsName("*.apps.contoso.test"),
                                                                  Self.ip([127, 0, 0, 5]), Self.ip(Self.loopbackV6)], key: key),
                                         keyPEM: key.pemRepresentation)
        for host in ["login.contoso.test", "LOGIN.Contoso.Test", "login.contoso.test.", "portal.apps.contoso.test", "127.0.0.5", "::1", "[::1]"] {
            #expect(pair.covers(host), "\(host)")
        }
        for host in ["contoso.test", "www.login.contoso.test", "apps.contoso.test", "a.b.apps.contoso.test", "127.0.0.6", "::2",
                     "login.contoso.test.evil", "", "login..contoso.test"] {
            #expect(!pair.covers(host), "\(host)")
        }
    }

    /// RFC 9525 §6.3: `*` only as the whole left-most label, for exactly one label; never over a single label
    /// (`*.test`), never partial (`w*.contoso.test`) or further right (`login.*.test`), never for an IP address.
    @Test func wildcardRules() {
        #expect(ServerCertificate.dnsName("*.contoso.test", matches: "login.contoso.test"))
        #expect(ServerCertificate.dnsName("*.CONTOSO.test", matches: "Login.contoso.TEST"))
        #expect(!ServerCertificate.dnsName("*.contoso.test", matches: "contoso.test"))
        #expect(!ServerCertificate.dnsName("*.contoso.test", matches: "a.login.contoso.test"))
        #expect(!ServerCertificate.dnsName("*.test", matches: "contoso.test"))
        #expect(!ServerCertificate.dnsName("*", matches: "localhost"))
        #expect(!ServerCertificate.dnsName("l*.contoso.test", matches: "login.contoso.test"))
        #expect(!ServerCertificate.dnsName("*n.contoso.test", matches: "login.contoso.test"))
        #expect(!ServerCertificate.dnsName("login.*.test", matches: "login.contoso.test"))
        #expect(!ServerCertificate.dnsName("*.*.test", matches: "login.contoso.test"))
        #expect(!ServerCertificate.dnsName("login.contoso.test", matches: "login.contoso.tes"))
        #expect(ServerCertificate.dnsName("login.contoso.test.", matches: "login.contoso.test"))
    }

    @Test func wildcardsAreNotForAddresses() throws {
        let key = P256.Signing.PrivateKey()
        let pair = try ServerCertificate(chainPEM: try Self.issue([.dnsName("*.0.0.5")], key: key), keyPEM: key.pemRepresentation)
        #expect(!pair.covers("127.0.0.5"))
    }

    /// Browsers ignore the subject's common name, so a certificate without subject alternative names covers nothing,
    /// and `check` says why.
    @Test func commonNameAloneCoversNothing() throws {
        let key = P256.Signing.PrivateKey()
        let pair = try ServerCertificate(chainPEM: try Self.issue([], key: key, commonName: "login.contoso.test"), keyPEM: key.pemRepresentation)
        #expect(!pair.covers("login.contoso.test"))
        let error = #expect(throws: ServerCertificateError.self) { try pair.check(host: "login.contoso.test", now: TestClock.start) }
        #expect(error?.description.contains("no subject alternative names") == true)
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefused() throws {
        let certificate = try Self.issue([.dnsName("login.contoso.test")], key: P256.Signing.PrivateKey())
        let error = #expect(throws: ServerCertificateError.self) {
            try ServerCertificate(chainPEM: certificate, keyPEM: P256.Signing.PrivateKey().pemRepresentation, keyName: "the key in key.pem")
        }
        #expect(error?.description.contains("the key in key.pem does not match the certificate") == true)
        let garbage = #expect(throws: ServerCertificateError.self) { try ServerCertificate(chainPEM: certificate, keyPEM: "not a key") }
        #expect(garbage?.description.contains("not an unencrypted PEM private key") == true)
        let none = #expect(throws: ServerCertificateError.self) { try ServerCertificate(chainPEM: "", keyPEM: "") }
        #expect(none?.description.contains("no certificate") == true)
    }

    @Test func theKeyInTheCertificateFileIsRefused() throws {
        let key = P256.Signing.PrivateKey()
        let both = try Self.issue([.dnsName("login.contoso.test")], key: key) + "\n" + key.pemRepresentation
        let error = #expect(throws: ServerCertificateError.self) { try ServerCertificate(chainPEM: both, keyPEM: key.pemRepresentation) }
        #expect(error?.description.contains("holds a private key") == true)
    }

    /// The full chain: the server's certificate first, the intermediate after it; the key matches the first.
    @Test func fullChainServesTheFirstCertificate() throws {
        let key = P256.Signing.PrivateKey(), intermediateKey = P256.Signing.PrivateKey()
        let chain = try Self.issue([.dnsName("login.contoso.test")], key: key) + "\n"
            + Self.issue([], key: intermediateKey, commonName: "Contoso intermediate")
        let pair = try ServerCertificate(chainPEM: chain, keyPEM: key.pemRepresentation)
        #expect(pair.chain.count == 2)
        #expect(pair.covers("login.contoso.test"))
        #expect(throws: ServerCertificateError.self) { try ServerCertificate(chainPEM: chain, keyPEM: intermediateKey.pemRepresentation) }
    }

    @Test func validityAndHostAreChecked() throws {
        let key = P256.Signing.PrivateKey()
        let pair = try ServerCertificate(chainPEM: try Self.issue([.dnsName("login.contoso.test")], key: key), keyPEM: key.pemRepresentation)
        try pair.check(host: "login.contoso.test", now: TestClock.start)
        let expired = #expect(throws: ServerCertificateError.self) {
            try pair.check(host: "login.contoso.test", now: TestClock.start.addingTimeInterval(86_401))
        }
        #expect(expired?.description.contains("expired on") == true)
        let early = #expect(throws: ServerCertificateError.self) {
            try pair.check(host: "login.contoso.test", now: TestClock.start.addingTimeInterval(-86_401))
        }
        #expect(early?.description.contains("not valid before") == true)
        let elsewhere = #expect(throws: ServerCertificateError.self) { try pair.check(host: "login.fabrikam.test", now: TestClock.start) }
        #expect(elsewhere?.description == "the certificate does not cover login.fabrikam.test: it names DNS:login.contoso.test")
    }

    /// A renewal written key first: the mismatched pair is refused and the old certificate kept; once the certificate
    /// follows, it is swapped in; files that did not change again are left alone.
    @Test func reloadSwapsOnlyAPairThatCanBeServed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificatePath = folder.appendingPathComponent("fullchain.pem").path, keyPath = folder.appendingPathComponent("privkey.pem").path
        func write(_ text: String, _ path: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }
        let clock = TestClock()
        let first = P256.Signing.PrivateKey(), second = P256.Signing.PrivateKey()
        try write(try Self.issue([.dnsName("login.contoso.test")], key: first), certificatePath)
        try write(first.pemRepresentation, keyPath)
        let tls = try ServerTLS(certificatePath: certificatePath, keyPath: keyPath, host: "login.contoso.test", clock: clock, reloadInterval: nil)
        let original = try #require(tls.leaf)
        #expect(tls.reload() == .unchanged)

        try write(second.pemRepresentation, keyPath)
        guard case .refused(let reason) = tls.reload() else { Issue.record("a mismatched pair was not refused"); return }
        #expect(reason.contains("does not match"))
        #expect(tls.leaf == original)
        #expect(tls.reload() == .unchanged)  // warned once

        try write(try Self.issue([.dnsName("login.contoso.test")], key: second), certificatePath)
        #expect(tls.reload() == .replaced)
        #expect(tls.leaf != original)
        #expect(tls.leaf?.publicKey == Certificate.PublicKey(second.publicKey))

        // A renewal for another name, or one already expired, is not served either.
        let third = P256.Signing.PrivateKey()
        try write(third.pemRepresentation, keyPath)
        try write(try Self.issue([.dnsName("login.fabrikam.test")], key: third), certificatePath)
        #expect(tls.reload() == .refused("the certificate does not cover login.contoso.test: it names DNS:login.fabrikam.test"))
        clock.advance(days: 2)
        try write(try Self.issue([.dnsName("login.contoso.test")], key: third), certificatePath)
        guard case .refused(let late) = tls.reload() else { Issue.record("an expired certificate was served"); return }
        #expect(late.contains("expired on"))
        #expect(tls.leaf?.publicKey == Certificate.PublicKey(second.publicKey))
    }

    @Test func startRefusesWhatCannotBeServed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificatePath = folder.appendingPathComponent("cert.pem").path, keyPath = folder.appendingPathComponent("key.pem").path
        let key = P256.Signing.PrivateKey()
        try Data(try Self.issue([.dnsName("login.contoso.test")], key: key).utf8).write(to: URL(fileURLWithPath: certificatePath))
        try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: keyPath))
        let error = #expect(throws: ServerCertificateError.self) {
            try ServerTLS(certificatePath: certificatePath, keyPath: keyPath, host: "localhost", clock: TestClock(), reloadInterval: nil)
        }
        #expect(error?.description == "the certificate does not cover localhost: it names DNS:login.contoso.test")
        let missing = #expect(throws: ServerCertificateError.self) {
            try ServerTLS(certificatePath: certificatePath + ".missing", keyPath: keyPath, host: "login.contoso.test", clock: TestClock(), reloadInterval: nil)
        }
        #expect(missing?.description.contains("cannot read the certificate file") == true)
    }

    /// Behind a proxy that terminates TLS: its `X-Forwarded-Proto` is believed, nobody else's.
    @Test func forwardedProtoOnlyFromTheTrustedProxy() throws {
        let policy = NetworkPolicy(publicURLs: ["https://login.contoso.test"], trustedProxies: [try #require(NetworkPolicy.proxyRange("127.0.0.1"))])
        #expect(policy.scheme(listener: "http", peer: "127.0.0.1", forwardedProto: "https") == "https")
        #expect(policy.scheme(listener: "http", peer: "127.0.0.1", forwardedProto: " HTTPS ") == "https")
        #expect(policy.scheme(listener: "http", peer: "127.0.0.1", forwardedProto: "gopher") == "http")
        #expect(policy.scheme(listener: "http", peer: "127.0.0.1", forwardedProto: nil) == "http")
        #expect(policy.scheme(listener: "http", peer: "192.0.2.7", forwardedProto: "https") == "http")
        let scheme = policy.scheme(listener: "http", peer: "192.0.2.7", forwardedProto: "https")
        #expect(policy.baseURL(scheme: scheme, host: "login.contoso.test") == nil)  // 421 for a client going around the proxy
        #expect(policy.baseURL(scheme: "https", host: "login.contoso.test") == "https://login.contoso.test")
    }
}
