import Crypto
import CryptoExtras
import Foundation
import Testing
@testable import Server
@testable import TesseraCore

/// Pieces of a sign-in's four requests rewritten to spend less CPU (bytes written in place, a keyed HMAC kept, kept
/// instruments, ASCII fast paths): each must give exactly what the code it replaced gave, for every input kind.
@Suite("Sign-in steps by hand: the same results as before, with less CPU")
struct SignInStepsByHandTests {
    /// Text of the kinds these pieces see: GUIDs, client ids in either case, URLs, scopes, non-ASCII letters, emoji,
    /// Unicode spaces, control characters.
    static let texts = ["", "a", "00000003-0000-0000-C000-000000000000", "6f1d3c2e-8a4b-4c1d-9e2f-0a1b2c3d4e5f", "Zoë", "ÅNGSTRÖM", "日本",
                        "👩🏽‍💻", "openid profile offline_access", " ", "\t", "\n", "\u{00A0}", "\u{2003}\u{3000}", " \t ", "\u{2003}x",
                        "https://app.contoso.test/cb?x=1&y=2", "tab\there", "\u{1F}", "İSTANBUL", "ß", "\r\n"]

    /// The session-client record id as it was computed before (hex string, cut in five, joined).
    static func referenceID(sessionID: String, clientID: String) -> String {
        let c = Array(Hex.encode(SHA256.hash(data: Array("session-client:\(sessionID):\(clientID.lowercased())".utf8)).prefix(16)))
        return [c[0..<8], c[8..<12], c[12..<16], c[16..<20], c[20..<32]].map { String($0) }.joined(separator: "-")
    }

    @Test("a session-client record's id is the digest's GUID-shaped hex, as before, for every session and client id")
    func sessionClientID() {
        var count = 0
        for session in Self.texts {
            for client in Self.texts {
                let id = SessionClientRecord.id(sessionID: session, clientID: client)
                #expect(id == Self.referenceID(sessionID: session, clientID: client))
                #expect(id.utf8.count == 36)
                count += 1
            }
        }
        // Bridged strings (not native UTF-8) give the same id.
        let bridged = NSString(string: "6F1D3C2E-8A4B-4C1D-9E2F-0A1B2C3D4E5F") as String
        #expect(SessionClientRecord.id(sessionID: bridged, clientID: bridged) == Self.referenceID(sessionID: bridged, clientID: bridged))
        #expect(count == Self.texts.count * Self.texts.count)
    }

    @Test("a challenge's MAC from the kept keyed HMAC is HMAC-SHA256 over purpose, 0 and body, cut to 16 bytes, from many tasks at once")
    func challengeMAC() async {
        let secret = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let key = SymmetricKey(data: secret)
        let challenges = PasskeyChallenges(key: key)
        func reference(_ purpose: String, _ body: [UInt8]) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(purpose.utf8) + [0] + body, using: key)).prefix(16).map { $0 }
        }
        let macs = await withTaskGroup(of: [(String, [UInt8], [UInt8])].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var made: [(String, [UInt8], [UInt8])] = []
                    for i in 0..<200 {
                        let purpose = Self.texts[(task + i) % Self.texts.count] + ":\(i)"
                        let body = (0..<(i % 40)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ task) }
                        made.append((purpose, body, challenges.mac(purpose, body)))
                    }
                    return made
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(macs.count == 1_600)
        for (purpose, body, mac) in macs { #expect(mac == reference(purpose, body)) }
        // A challenge issued is valid for its purpose only, and not once its last byte is changed.
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let (challenge, _) = challenges.issue("get:tenant:user", now: now)
        #expect(challenges.isValid(challenge, purpose: "get:tenant:user", now: now))
        #expect(!challenges.isValid(challenge, purpose: "get:tenant:other", now: now))
        var forged = challenge
        forged[39] ^= 1
        #expect(!challenges.isValid(forged, purpose: "get:tenant:user", now: now))
        #expect(!PasskeyChallenges(key: SymmetricKey(data: Array(secret.reversed()))).isValid(challenge, purpose: "get:tenant:user", now: now))
    }

    @Test("a session cookie's name is the tenant without hyphens, as replacingOccurrences gave; its pair is found among others, space or tab around it")
    func sessionCookie() {
        for tenant in Self.texts {
            #expect(SignInSessions.cookieName(tenant: tenant) == "tessera_session_" + tenant.replacingOccurrences(of: "-", with: ""))
        }
        let name = SignInSessions.cookieName(tenant: "6f1d3c2e-8a4b-4c1d-9e2f-0a1b2c3d4e5f") + "="
        #expect(name == "tessera_session_6f1d3c2e8a4b4c1d9e2f0a1b2c3d4e5f=")
        let pair = name + "id.tag"
        for header in [pair, "a=1; " + pair, "a=1;" + pair + ";b=2", "a=1;\t" + pair + " \t; b=2", " " + pair + " "] {
            #expect(SignInSessions.cookiePair(header, named: name) == Substring(pair))
        }
        // Another tenant's cookie, a name that only ends like it, an empty header: none.
        for header in ["", "a=1", "tessera_session_other=x", "x" + pair, "a=1; \u{00A0}" + pair] {
            #expect(SignInSessions.cookiePair(header, named: name) == nil)
        }
        // The first pair of the name counts, as before.
        #expect(SignInSessions.cookiePair(pair + "; " + name + "second.tag", named: name) == Substring(pair))
    }

    @Test("a scope is refused as empty exactly when trimming CharacterSet.whitespaces leaves nothing")
    func scopeWhitespace() {
        for text in Self.texts + ["  openid", "\u{2003}", "\u{2003}\t\u{00A0}", "\u{200B}", "\u{85}", "\u{1680}"] {
            #expect(AuthorizeEndpoint.holdsNonWhitespace(text) == !text.trimmingCharacters(in: .whitespaces).isEmpty, "\(Array(text.unicodeScalars))")
        }
    }

    @Test("a control character is found in native and bridged strings, keys and nested values alike")
    func controlCharacters() {
        #expect(!JSONValue.object(["a": .string("Zoë 👩🏽‍💻"), "b": .array([.string("x"), .double(1)])]).holdsControlCharacter)
        #expect(JSONValue.object(["a": .array([.string("x\u{1F}")])]).holdsControlCharacter)
        #expect(JSONValue.object(["k\n": .string("x")]).holdsControlCharacter)
        #expect(JSONValue.string(NSString(string: "bridged\ttab") as String).holdsControlCharacter)
        #expect(!JSONValue.string(NSString(string: "bridged, none: Zoë") as String).holdsControlCharacter)
    }

    @Test("store transactions, sign-ins and tokens are timed and counted under their labels from many tasks at once, instruments kept")
    func keptInstruments() async {
        let telemetry = Telemetry()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<50 {
                        telemetry.transaction(kind: i.isMultiple(of: 5) ? "read" : "write", duration: .milliseconds(3))
                        telemetry.signIn(method: task == 0 ? "password" : "passkey", succeeded: i != 0)
                        telemetry.token(grant: i.isMultiple(of: 2) ? "authorization_code" : "refresh_token")
                    }
                }
            }
        }
        let text = String(decoding: telemetry.exposition(), as: UTF8.self)
        #expect(text.contains(#"tessera_store_transaction_duration_seconds_count{kind="write"} 320"#))
        #expect(text.contains(#"tessera_store_transaction_duration_seconds_count{kind="read"} 80"#))
        #expect(text.contains(#"tessera_store_transaction_duration_seconds_bucket{kind="write",le="0.005"} 320"#))
        #expect(text.contains(#"tessera_store_transaction_duration_seconds_bucket{kind="write",le="0.002"} 0"#))
        #expect(text.contains(#"tessera_sign_ins_total{method="passkey",result="success"} 343"#))
        #expect(text.contains(#"tessera_sign_ins_total{method="passkey",result="failure"} 7"#))
        #expect(text.contains(#"tessera_sign_ins_total{method="password",result="success"} 49"#))
        #expect(text.contains(#"tessera_sign_ins_total{method="password",result="failure"} 1"#))
        #expect(text.contains(#"tessera_tokens_issued_total{grant="authorization_code"} 200"#))
        #expect(text.contains(#"tessera_tokens_issued_total{grant="refresh_token"} 200"#))
    }
    @Test("an instant is formatted as Foundation's ISO 8601 style formats it, whole seconds in UTC, from 1970 to 9999 and outside")
    func timestamps() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        var instants: [Double] = [0, 0.5, 0.999_999, 59.999_999_999, 86_399.999, 86_400, 951_782_400, 951_868_800, 1_700_000_000.999_999_9,
                                  4_107_542_400, 253_402_300_799, 253_402_300_799.999, 253_402_300_800, -1, -0.5, -86_400.25, -62_135_596_800]
        for _ in 0..<20_000 {
            let whole = Double(next() % 253_402_300_800)
            instants.append(next().isMultiple(of: 2) ? whole : whole + Double(next() % 1_000_000_000) / 1_000_000_000)
        }
        // Around now, where sign-ins are, every second of a day and fractions near the next second.
        for i in 0..<5_000 { instants.append(1_796_600_000 + Double(i * 17) + (i.isMultiple(of: 3) ? 0.999_9 : 0)) }
        var differing: [Double] = []
        for t in instants {
            let date = Date(timeIntervalSince1970: t)
            if Timestamp.format(date) != Timestamp.foundationFormat(date) { differing.append(t) }
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_796_697_862)) == "2026-12-08T02:44:22Z")
    }

    @Test("a JWT is signed over the same bytes as before: header and claims serialized, base64url, RS256")
    func jwtBytes() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let claims: [String: JSONValue] = ["sub": "Zoë 👩🏽‍💻", "aud": .array(["a", "b"]), "exp": 1_796_697_862, "n": .double(1.5), "url": "https://x.test/a?b=c"]
        let token = try JWT.sign(claims: claims, header: ["kid": "k1"], key: key)
        let parts = token.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        var header: [String: JSONValue] = ["kid": "k1"]
        header["alg"] = "RS256"
        header["typ"] = "JWT"
        let input = Base64URL.encode(Data(JSONValue.object(header).serialized.utf8)) + "." + Base64URL.encode(Data(JSONValue.object(claims).serialized.utf8))
        #expect(parts[0] + "." + parts[1] == input)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try #require(WebAuthnBase64(parts[2])))
        #expect(key.publicKey.isValidSignature(signature, for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5))
    }

    func WebAuthnBase64(_ text: String) -> [UInt8]? { Base64URL.decode(text).map { Array($0) } }
}
