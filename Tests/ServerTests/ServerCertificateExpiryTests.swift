import Crypto
import Foundation
import Testing
import X509
@testable import Server
import TesseraCore
import TesseraTesting

/// `serve --tls-cert`: a certificate close to its expiry is warned about (when served, then daily until renewed), and
/// `/metrics` shows the seconds it has left, on the test clock.
@Suite struct ServerCertificateExpiryTests {
    /// The test clock's start to the whole second, as a certificate's validity is written.
    static let start = Date(timeIntervalSince1970: TestClock.start.timeIntervalSince1970.rounded(.down))

    /// A folder holding a certificate for login.contoso.test valid until `until`, and its key.
    struct Files {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tls-expiry-\(UUID().uuidString)")
        var certificate: String { folder.appendingPathComponent("fullchain.pem").path }
        var key: String { folder.appendingPathComponent("privkey.pem").path }

        init() throws { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }

        func write(until: Date, commonName: String = "login.contoso.test") throws {
            let key = P256.Signing.PrivateKey()
            let pem = try ServerCertificateTests.issue([.dnsName("login.contoso.test")], key: key, commonName: commonName, until: until)
            try Data(pem.utf8).write(to: URL(fileURLWithPath: certificate))
            try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: self.key))
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    @Test func aCertificateExpiringSoonIsWarnedAboutDailyUntilRenewed() throws {
        let files = try Files()
        defer { files.remove() }
        let clock = TestClock(start: Self.start)
        try files.write(until: Self.start.addingTimeInterval(10 * 86_400), commonName: "Contoso sign-in")
        // The warning at start has been logged; within the day it is not repeated.
        let tls = try ServerTLS(certificatePath: files.certificate, keyPath: files.key, host: "login.contoso.test", clock: clock, reloadInterval: nil)
        #expect(tls.warnIfExpiring() == nil)
        clock.advance(23 * 3600)
        #expect(tls.warnIfExpiring() == nil)
        clock.advance(3600)
        let daily = try #require(tls.warnIfExpiring())
        #expect(daily.contains("CN=Contoso sign-in"))
        #expect(daily.contains("in 9 days"))
        #expect(daily.contains(ServerCertificate.format(Self.start.addingTimeInterval(10 * 86_400))))
        #expect(tls.warnIfExpiring() == nil)

        // A renewal valid for 90 days is served and not warned about; the day after, still nothing.
        try files.write(until: Self.start.addingTimeInterval(91 * 86_400))
        #expect(tls.reload() == .replaced)
        #expect(tls.warnIfExpiring() == nil)
        clock.advance(days: 1)
        #expect(tls.warnIfExpiring() == nil)
    }

    @Test func aCertificateWithMonthsLeftIsNotWarnedAboutUntilTwoWeeksRemain() throws {
        let files = try Files()
        defer { files.remove() }
        let clock = TestClock(start: Self.start)
        try files.write(until: Self.start.addingTimeInterval(30 * 86_400))
        let tls = try ServerTLS(certificatePath: files.certificate, keyPath: files.key, host: "login.contoso.test", clock: clock, reloadInterval: nil)
        #expect(tls.warnIfExpiring() == nil)
        clock.advance(days: 15)
        #expect(tls.warnIfExpiring() == nil)  // 15 days left
        clock.advance(days: 1)
        let warning = try #require(tls.warnIfExpiring())
        #expect(warning.contains("in 14 days"))
        clock.advance(days: 14)
        clock.advance(3600)
        #expect(try #require(tls.warnIfExpiring()).contains("expired on"))
    }

    /// A renewal that is itself close to expiry is warned about when it replaces the old one, not a day later.
    @Test func aReloadedCertificateExpiringSoonIsWarnedAboutAtOnce() throws {
        let files = try Files()
        defer { files.remove() }
        let clock = TestClock(start: Self.start)
        try files.write(until: Self.start.addingTimeInterval(5 * 86_400))
        let tls = try ServerTLS(certificatePath: files.certificate, keyPath: files.key, host: "login.contoso.test", clock: clock, reloadInterval: nil)
        #expect(tls.warnIfExpiring() == nil)  // warned at start
        clock.advance(12 * 3600)
        try files.write(until: Self.start.addingTimeInterval(7 * 86_400), commonName: "Contoso renewed")
        #expect(tls.reload() == .replaced)
        // reload() warned about the new certificate then: a day after the first warning, the next is not yet due…
        clock.advance(13 * 3600)
        #expect(tls.warnIfExpiring() == nil)
        // …but a day after the reload it is.
        clock.advance(11 * 3600)
        #expect(try #require(tls.warnIfExpiring()).contains("CN=Contoso renewed"))
    }

    @Test func metricsShowTheSecondsLeftAtEachScrape() throws {
        let files = try Files()
        defer { files.remove() }
        let clock = TestClock(start: Self.start)
        let expiry = Self.start.addingTimeInterval(10 * 86_400)
        try files.write(until: expiry)
        let tls = try ServerTLS(certificatePath: files.certificate, keyPath: files.key, host: "login.contoso.test", clock: clock, reloadInterval: nil)
        let telemetry = Telemetry()
        #expect(!String(decoding: telemetry.exposition(), as: UTF8.self).contains("tessera_tls_certificate_expiry_seconds"))
        tls.report(to: telemetry, listener: "https")
        let seconds = try #require(tls.secondsUntilExpiry)
        #expect(seconds == 10 * 86_400)
        let first = String(decoding: telemetry.exposition(), as: UTF8.self)
        #expect(first.contains("# TYPE tessera_tls_certificate_expiry_seconds gauge"))
        #expect(Self.value(in: first) == seconds)
        clock.advance(days: 3)
        #expect(Self.value(in: String(decoding: telemetry.exposition(), as: UTF8.self)) == seconds - 3 * 86_400)

        // The generated certificate is not the organisation's to renew: no gauge for it.
        let generated = Telemetry()
        try ServerTLS(material: try Self.material(files)).report(to: generated, listener: "https")
        #expect(!String(decoding: generated.exposition(), as: UTF8.self).contains("tessera_tls_certificate_expiry_seconds"))
    }

    /// The value of `tessera_tls_certificate_expiry_seconds{listener="https"}` in an exposition.
    static func value(in exposition: String) -> Double? {
        let prefix = "tessera_tls_certificate_expiry_seconds{listener=\"https\"} "
        guard let line = exposition.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    static func material(_ files: Files) throws -> TLSMaterial {
        TLSMaterial(caPath: files.certificate, certificatePath: files.certificate, keyPath: files.key)
    }
}
