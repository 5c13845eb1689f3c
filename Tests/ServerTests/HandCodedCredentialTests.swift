import Foundation
import Testing
@testable import Server
import TesseraCore

/// The credential records a sign-in writes and reads (sessions, session-client records, refresh tokens) are coded member
/// by member, not through `Codable`: their stored text must stay the text `Codable` writes, and every row stored before
/// must read back the same.
@Suite("Credential records coded by hand: the same text as Codable's, old rows read")
struct HandCodedCredentialTests {
    /// The encoder credential records were always stored with.
    static let codable: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }()

    /// A fixed sequence of pseudo-random numbers (no clock, the same every run).
    struct Sequence {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        mutating func chance() -> Bool { next() % 2 == 0 }
        /// Instants around now with and without fractions of a second, as clocks give them.
        mutating func date() -> Date {
            let whole = 1_700_000_000 + Double(next() % 200_000_000)
            switch next() % 3 {
            case 0: return Date(timeIntervalSince1970: whole)
            case 1: return Date(timeIntervalSince1970: whole + Double(next() % 1_000_000) / 1_000_000)
            default: return Date(timeIntervalSince1970: whole + Double(next() % 1_000_000_000) / 3_000_000_007)
            }
        }
        /// Text of the kinds stored: ids, URLs with slashes and queries, quotes, backslashes, non-ASCII letters and emoji.
        mutating func text() -> String {
            let pieces = ["a1b2", "https://app.contoso.test/cb?x=1&y=2", "Zoë", "\"quoted\"", "back\\slash", "openid profile offline_access",
                          "日本", "👩🏽‍💻", "", "urn:ietf:params", "UPPER", "00000003-0000-0000-c000-000000000000"]
            return (0..<(1 + next() % 3)).map { _ in pieces[Int(next() % UInt64(pieces.count))] }.joined()
        }
        mutating func strings() -> [String] { (0..<(next() % 4)).map { _ in text() } }
        mutating func optional() -> String? { chance() ? text() : nil }
    }

    static func check<R: CredentialRecord & Equatable>(_ record: R) throws {
        let row = try record.row(tenant: "t")
        let expected = String(decoding: try Self.codable.encode(record), as: UTF8.self)
        #expect(row.payload == expected)
        #expect(try R(row) == record)
        // Read as a row `Codable` wrote, and through the members the hand-written reader takes.
        var old = row
        old.payload = expected
        #expect(try R(old) == record)
        if let coded = R.self as? any HandCodedCredential.Type, case .object(let members) = try JSONParser.parse(expected) {
            #expect(coded.init(jsonMembers: members) as? R == record)
        } else {
            Issue.record("\(R.self) is not coded by hand")
        }
    }

    @Test("sessions, session-client records and refresh tokens of every shape write Codable's text and read back equal")
    func sameTextAsCodable() throws {
        var r = Sequence()
        for _ in 0..<300 {
            try Self.check(SignInSessionRecord(id: r.text(), userID: r.text(), authTime: Int64(r.next() % 4_000_000_000), amr: r.strings(),
                                               aaguid: r.optional(), expires: r.date()))
            var client = SessionClientRecord(sessionID: r.text(), userID: r.text(), clientID: r.text(), expires: r.date(),
                                             baseURL: r.optional(), resourceTenant: r.optional())
            if r.chance() { client.id = r.text() }
            try Self.check(client)
            let grant = SignInGrant(userID: r.text(), clientID: r.text(), redirectURI: r.text(), scope: r.text(), sessionID: r.text(),
                                    authTime: Int64(r.next() % 4_000_000_000), amr: r.strings(), aaguid: r.optional(), acrs: r.strings(),
                                    acr: r.optional(), grantID: r.optional(), userinfoClaims: r.chance() ? r.strings() : nil)
            try Self.check(RefreshTokenRecord(id: r.text(), digest: r.text(), grant: grant, confidential: r.chance(), familyID: r.text(),
                                              issuedForCode: r.optional(), expires: r.date(), state: r.chance() ? .unused : .used))
        }
    }

    @Test("text with control characters is written by Codable, the same as ever")
    func controlCharactersLeftToCodable() throws {
        try Self.check(SignInSessionRecord(id: "tab\there", userID: "line\nbreak\u{1}", authTime: 1, amr: ["\u{8}\u{c}\r"], aaguid: nil,
                                           expires: Date(timeIntervalSince1970: 1_800_000_000.25)))
    }

    @Test("rows stored before (members since added missing, null optionals, whole-second instants) read as Codable reads them")
    func oldRowsRead() throws {
        func row(_ kind: CredentialKind, _ payload: String) -> CredentialRow {
            CredentialRow(tenant: "t", id: "i", kind: kind, userID: nil, family: nil, handle: nil, state: "active", expiresAt: "", payload: payload)
        }
        let client = try SessionClientRecord(row(SessionClientRecord.kind,
            #"{"clientID":"c","expires":1800000000,"id":"x","sessionID":"s","state":"active","userID":"u"}"#))
        #expect(client.baseURL == nil && client.resourceTenant == nil && client.id == "x" && client.expires == Date(timeIntervalSince1970: 1_800_000_000))
        let session = try SignInSessionRecord(row(SignInSessionRecord.kind,
            #"{"aaguid":null,"amr":["fido"],"authTime":1700000000,"expires":1800000000.5,"id":"s","state":"active","userID":"u"}"#))
        #expect(session == SignInSessionRecord(id: "s", userID: "u", authTime: 1_700_000_000, amr: ["fido"], aaguid: nil,
                                               expires: Date(timeIntervalSince1970: 1_800_000_000.5)))
        let token = try RefreshTokenRecord(row(RefreshTokenRecord.kind, #"""
            {"confidential":true,"digest":"d","expires":1800000000,"familyID":"f","grant":{"acrs":[],"amr":["pwd"],"authTime":5,"clientID":"c","redirectURI":"https://a/b","scope":"openid","sessionID":"s","userID":"u"},"id":"r","state":"used"}
            """#))
        #expect(token.grant.userinfoClaims == nil && token.grant.acr == nil && token.issuedForCode == nil && token.state == .used)
        // Not what the type writes: refused as Codable refuses it.
        #expect(throws: (any Error).self) { try SignInSessionRecord(row(SignInSessionRecord.kind, #"{"id":"s"}"#)) }
        #expect(throws: (any Error).self) { try SignInSessionRecord(row(SignInSessionRecord.kind, #"{"amr":"fido","authTime":1,"expires":1,"id":"s","state":"active","userID":"u"}"#)) }
    }
}
