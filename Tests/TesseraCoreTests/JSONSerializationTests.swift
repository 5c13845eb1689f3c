import Testing
@testable import TesseraCore

/// Stored objects' digests are the SHA-256 of their serialised bodies, kept beside them and compared by backups and
/// sync: a faster serialiser must write the same bytes for every value.
@Suite("JSON serialisation")
struct JSONSerializationTests {
    /// The serialiser as it was before its runs of plain bytes were copied at once (one append a byte), kept as the
    /// reference the bytes are compared with.
    static func reference(_ value: JSONValue) -> [UInt8] {
        var out = [UInt8]()
        func writeString(_ s: String) {
            out.append(UInt8(ascii: "\""))
            for byte in s.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0..<0x20:
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(Array("0123456789abcdef".utf8)[Int(byte >> 4)])
                    out.append(Array("0123456789abcdef".utf8)[Int(byte & 15)])
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        func write(_ value: JSONValue) {
            switch value {
            case .null: out.append(contentsOf: "null".utf8)
            case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
            case .int(let i): out.append(contentsOf: String(i).utf8)
            case .double(let d):
                if d.rounded() == d, abs(d) < 1e15 { out.append(contentsOf: String(Int64(d)).utf8) } else { out.append(contentsOf: "\(d)".utf8) }
            case .string(let s): writeString(s)
            case .array(let elements):
                out.append(UInt8(ascii: "["))
                for (i, element) in elements.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    write(element)
                }
                out.append(UInt8(ascii: "]"))
            case .object(let members):
                out.append(UInt8(ascii: "{"))
                let keys = members.keys.sorted { a, b in
                    let (ao, bo) = (a.hasPrefix("@odata"), b.hasPrefix("@odata"))
                    return ao != bo ? ao : a < b
                }
                for (i, key) in keys.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    writeString(key)
                    out.append(UInt8(ascii: ":"))
                    write(members[key]!)
                }
                out.append(UInt8(ascii: "}"))
            }
        }
        write(value)
        return out
    }

    /// Strings that exercise every escape, runs of plain bytes before, between and after them, and multi-byte UTF-8.
    static let strings: [String] = [
        "", "a", "plain ascii text", "\"", "\\", "\n", "\r\n", "\t", "\u{0}", "\u{1}x\u{1f}", "\u{7f}", "\u{8}\u{c}",
        "ends with a quote\"", "\"starts with one", "mid\"dle\\of\nit\tall", "é", "naïve café", "😀 emoji 😀", "日本語",
        "e\u{301}", "mixed \"é\" \u{2} 😀\\", String(repeating: "long run of plain bytes ", count: 40) + "\n",
        "@odata.type", "@odata.id", "@other", "members@odata.bind", "Z", "_", "aa", "ab", "a\u{0}b",
    ]

    @Test("writes the reference's bytes for every escape, string shape and key order")
    func sameBytesAsTheReference() {
        for s in Self.strings {
            #expect(JSONValue.string(s).serializedBytes == Self.reference(.string(s)), "\(s.debugDescription)")
        }
        var members: [String: JSONValue] = [:]
        for (i, key) in Self.strings.enumerated() { members[key] = .string(Self.strings[(i + 7) % Self.strings.count]) }
        let nested: JSONValue = .object(["z": .object(members), "a": .array(Self.strings.map { .string($0) }), "n": .null,
                                         "numbers": [1, -3, .double(2.5), .double(1e20), .double(-0.0), .int(Int64.min)],
                                         "flags": [true, false], "@odata.type": "#microsoft.graph.user", "empty": .object([:])])
        #expect(nested.serializedBytes == Self.reference(nested))
        #expect(nested.serialized == String(decoding: Self.reference(nested), as: UTF8.self))
    }

    @Test("writes the reference's bytes for generated values (a fixed seed)")
    func generatedValues() {
        var generator = SeededRandom(seed: 0x5EED_1500)
        for _ in 0..<500 {
            let value = Self.generate(depth: 0, using: &generator)
            #expect(value.serializedBytes == Self.reference(value))
        }
    }

    @Test("a synced user's body keeps its serialised bytes and digest")
    func syncedUserDigest() {
        let extensions = Dictionary(uniqueKeysWithValues: (1...15).map { ("extensionAttribute\($0)", JSONValue.null) })
        let body: JSONValue = .object([
            "id": "0190f5a2-7c00-7000-8000-000000000001", "accountEnabled": true, "displayName": "Bench 000001",
            "givenName": "Bench", "surname": "U000001", "mail": "b000001@bench.test", "department": "D1", "jobTitle": "Engineer",
            "businessPhones": [], "mailNickname": "b000001", "userPrincipalName": "b000001@bench.test",
            "proxyAddresses": ["SMTP:b000001@bench.test"], "onPremisesImmutableId": "Z3VpZA==", "onPremisesSyncEnabled": true,
            "onPremisesDistinguishedName": "CN=b000001,OU=S1,OU=Bench,DC=corp,DC=example,DC=test",
            "onPremisesExtensionAttributes": .object(extensions), "onPremisesProvisioningErrors": [],
            "userType": "Member", "createdDateTime": "2026-12-07T04:50:00Z", "jobNote": "tab\t, é, \"q\", 😀",
        ])
        let text = body.serialized
        #expect(text.hasPrefix(#"{"accountEnabled":true,"businessPhones":[],"createdDateTime":"2026-12-07T04:50:00Z","#))
        #expect(text.contains(#""jobNote":"tab\t, é, \"q\", 😀","jobTitle":"Engineer","#))
        #expect(text.contains(#""extensionAttribute1":null,"extensionAttribute10":null,"#))
        // The digest a store keeps beside this body (computed with the reference serialiser).
        #expect(Secrets.fingerprint(text) == Secrets.fingerprint(String(decoding: Self.reference(body), as: UTF8.self)))
        #expect(Secrets.fingerprint(text) == Self.syncedUserSHA256)
    }

    /// SHA-256 (hex) of `syncedUserDigest`'s body as serialised before runs of plain bytes were copied at once.
    static let syncedUserSHA256 = "66c2443019e5e31758f26a69d23abf71c3e05a0bb230921b7e2339e11d9375f4"

    static func generate(depth: Int, using g: inout SeededRandom) -> JSONValue {
        let choice = depth >= 3 ? g.next() % 5 : g.next() % 7
        switch choice {
        case 0: return .null
        case 1: return .bool(g.next() % 2 == 0)
        case 2: return g.next() % 2 == 0 ? .int(Int64(bitPattern: g.next())) : .double(Double(Int64(bitPattern: g.next() % 1_000_000)) / 7)
        case 3, 4: return .string(generateString(using: &g))
        case 5: return .array((0..<Int(g.next() % 5)).map { _ in generate(depth: depth + 1, using: &g) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int(g.next() % 8) { members[generateString(using: &g)] = generate(depth: depth + 1, using: &g) }
            return .object(members)
        }
    }

    static func generateString(using g: inout SeededRandom) -> String {
        let pieces = strings + ["@odata", "x", "Y", "0", " "]
        return (0..<Int(g.next() % 4)).map { _ in pieces[Int(g.next() % UInt64(pieces.count))] }.joined()
    }
}
