import Foundation
import Logging
import Testing
@testable import TesseraCommands

/// Both of `serve`'s log formats write metadata whose name says it holds a credential as `[redacted]`, at any depth,
/// whoever logged it; everything else as it was given.
@Suite("Credentials in log metadata are redacted in text and JSON lines")
struct LogRedactionTests {
    static let secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln"

    static let event = LogEvent(
        level: .info, message: "request", metadata: [
            "Authorization": .string("Bearer \(secret)"), "refresh_token": .string(secret), "route": "/oauth2/v2.0/token",
            "form": ["client_secret": .string(secret), "grant_type": "authorization_code", "code_verifier": .string(secret)],
            "attempts": [["password": .string(secret), "user": "adele@contoso.com"]],
            "status": .stringConvertible(200),
        ], source: "Server", file: "f", function: "f", line: 1)

    @Test("a text line keeps the other members as StreamLogHandler writes them and names no secret")
    func text() {
        var handler = TextLogHandler(label: "tessera", level: .info, metadataProvider: nil, write: { _ in })
        handler[metadataKey: "Cookie"] = .string("session=\(Self.secret)")
        let line = handler.line(Self.event, timestamp: "T")
        #expect(!line.contains(Self.secret), "\(line)")
        #expect(line.contains("Authorization=[redacted]"))
        #expect(line.contains("Cookie=[redacted]"))
        #expect(line.contains("refresh_token=[redacted]"))
        // Nested members as Logger.Metadata.Value describes them (quoted, in the dictionary's order).
        #expect(line.contains("\"password\": \"[redacted]\"") && line.contains("\"user\": \"adele@contoso.com\""), "\(line)")
        #expect(line.contains("\"client_secret\": \"[redacted]\"") && line.contains("\"code_verifier\": \"[redacted]\""))
        #expect(line.contains("\"grant_type\": \"authorization_code\""))
        #expect(line.contains("route=/oauth2/v2.0/token status=200"))
    }

    @Test("names are matched anywhere in a key, without case; other keys are not", arguments: [
        ("Authorization", true), ("x-ms-AUTHORIZATION-aux", true), ("refresh_token", true), ("TOKEN", true), ("tok", false),
        ("client_secret", true), ("Set-Cookie", true), ("newPassword", true), ("passcode", true), ("clientAssertion", true),
        ("code_verifier", true), ("code_verify", false), ("route", false), ("request-id", false), ("hb.request.id", false),
        ("duration_ms", false), ("tokeN_", true), ("", false), ("tökenized", false), ("ÄTOKEN", true),
    ])
    func names(_ key: String, _ sensitive: Bool) {
        #expect(LogRedaction.isSensitive(key) == sensitive)
    }

    @Test("a JSON line redacts the same members and keeps the rest as values")
    func json() throws {
        var handler = JSONLogHandler(label: "tessera", level: .info)
        handler[metadataKey: "Cookie"] = .string("session=\(Self.secret)")
        let line = handler.line(Self.event, time: "2026-12-08T00:00:00Z")
        #expect(!line.contains(Self.secret), "\(line)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["Authorization"] as? String == "[redacted]")
        #expect(object["Cookie"] as? String == "[redacted]")
        #expect(object["refresh_token"] as? String == "[redacted]")
        let form = try #require(object["form"] as? [String: Any])
        #expect(form["client_secret"] as? String == "[redacted]")
        #expect(form["code_verifier"] as? String == "[redacted]")
        #expect(form["grant_type"] as? String == "authorization_code")
        let attempts = try #require(object["attempts"] as? [[String: Any]])
        #expect(attempts.first?["password"] as? String == "[redacted]")
        #expect(attempts.first?["user"] as? String == "adele@contoso.com")
        #expect(object["status"] as? String == "200")
        #expect(object["time"] as? String == "2026-12-08T00:00:00Z")
        #expect(line.hasSuffix("}\n"))
    }
}
