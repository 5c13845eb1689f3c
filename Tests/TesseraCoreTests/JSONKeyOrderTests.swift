import Testing
@testable import TesseraCore

/// Objects whose keys are all ASCII are ordered by their first 24 bytes as integers (`JSONValue.asciiOrder`), and by the
/// keys themselves where those are the same: the bytes must be those of the reference serialiser, which sorts the keys
/// as strings.
@Suite("JSON serialisation's key order for ASCII keys")
struct JSONKeyOrderTests {
    /// ASCII keys that meet at every byte of the integers' edges: equal first 8 and 16 bytes, one a prefix of another,
    /// equal first 24 bytes, NUL bytes (as long as the zero after a key's end), control characters, annotations and near-annotations.
    static let keys: [String] = [
        "", "a", "A", "_", "~", "\u{7f}", "\u{0}", "\u{1}", "a\u{0}", "a\u{0}b", "a\u{0}\u{0}", "ab", "aa", "abcdefg", "abcdefgh",
        "abcdefgh\u{0}", "abcdefgi", "abcdefghi", "abcdefghijklmno", "abcdefghijklmnop", "abcdefghijklmnop\u{0}",
        "abcdefghijklmnopq", "abcdefghijklmnopr", "abcdefghijklmnoq", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwx",
        "abcdefghijklmnopqrstuvwy", "abcdefghijklmnopqrstuvwx\u{0}", "abcdefghijklmnopqrstuvwxa", "abcdefghijklmnopqrstuvwxb",
        "abcdefghijklmnopqrstuvw",
        "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
        "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "onPremisesSamAccountName", "onPremisesSyncEnabled",
        "extensionAttribute1", "extensionAttribute10", "extensionAttribute2", "@odata.type", "@odata.id", "@odata", "@odat",
        "@other", "@", "members@odata.bind", "tab\there", "quote\"d", "back\\slash", "Z", "z", "0", "9", " ",
    ]

    @Test("writes the reference's bytes for objects of ASCII keys: all of them, every pair of them, and random sets of them")
    func sameBytesAsTheReference() {
        let all: JSONValue = .object(Dictionary(uniqueKeysWithValues: Self.keys.enumerated().map { ($1, JSONValue.int(Int64($0))) }))
        #expect(all.serializedBytes == JSONSerializationTests.reference(all))
        for a in Self.keys {
            for b in Self.keys where b != a {
                let pair: JSONValue = .object([a: .string(b), b: .object([a: .null, b: .bool(true)])])
                #expect(pair.serializedBytes == JSONSerializationTests.reference(pair), "\(a.debugDescription) \(b.debugDescription)")
            }
        }
        var generator = SeededRandom(seed: 0xA5C11)
        for _ in 0..<2_000 {
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int(generator.next() % 12) { members[Self.keys[Int(generator.next() % UInt64(Self.keys.count))]] = .null }
            let value: JSONValue = .object(members)
            #expect(value.serializedBytes == JSONSerializationTests.reference(value))
        }
    }

    @Test("an object with one key that is not ASCII is ordered as strings order it, the others' order unchanged")
    func oneKeyNotASCII() {
        // "é" composed and decomposed are equal as strings: only one may be a key; "e\u{301}" sorts as "é", after "f".
        let value: JSONValue = .object(["e\u{301}": 1, "f": 2, "e": 3, "abcdefghijklmnopq": 4, "abcdefghijklmnopp": 5])
        #expect(value.serializedBytes == JSONSerializationTests.reference(value))
        #expect(value.serialized == "{\"abcdefghijklmnopp\":5,\"abcdefghijklmnopq\":4,\"e\":3,\"f\":2,\"e\u{301}\":1}")
    }
}
