import Testing
import WebAuthn

/// The decoder's strictness rules, each on the smallest input that breaks it.
@Suite struct CBORTests {
    static func refuses(_ bytes: [UInt8], _ limits: CBORDecoder.Limits = .strict) -> Bool {
        do {
            _ = try CBORDecoder(limits: limits).decode(bytes)
            return false
        } catch {
            return error.code == .cborMalformed
        }
    }

    @Test func decodesWhatWebAuthnUses() throws {
        let value = try CBORDecoder().decode([0xA3, 0x01, 0x02, 0x20, 0x43, 1, 2, 3, 0x63, 0x66, 0x6D, 0x74, 0x82, 0xF5, 0xF6])
        #expect(value[intKey: 1] == .unsigned(2))
        #expect(value[intKey: -1] == .bytes([1, 2, 3]))
        #expect(value[textKey: "fmt"] == .array([.bool(true), .null]))
    }

    @Test func roundTripsThroughTheEncoder() throws {
        let value = CBORValue.map([.init(.text("b"), .int(-300)), .init(.int(5), .bytes([UInt8](repeating: 7, count: 300))),
                                   .init(.int(-2), .array([.text("é"), .unsigned(1 << 40)]))])
        let bytes = CBOREncoder.encode(value)
        let decoded = try CBORDecoder(limits: .ctap2).decode(bytes)
        #expect(CBOREncoder.encode(decoded) == bytes)
        #expect(decoded[textKey: "b"]?.int == -300)
    }

    @Test func refusesIndefiniteLengths() {
        #expect(Self.refuses([0x5F, 0x41, 0x00, 0xFF]))  // byte string
        #expect(Self.refuses([0x9F, 0x01, 0xFF]))        // array
        #expect(Self.refuses([0xBF, 0x01, 0x02, 0xFF]))  // map
    }

    @Test func refusesTagsAndReservedValues() {
        #expect(Self.refuses([0xC2, 0x41, 0x01]))        // tag 2 (bignum)
        #expect(Self.refuses([0x1C]))                    // additional information 28
        #expect(Self.refuses([0xF8, 0x10]))              // a simple value in two bytes below 32
        #expect(Self.refuses([0xF0]))                    // unassigned simple value
    }

    @Test func refusesTruncationAndTrailingBytes() {
        #expect(Self.refuses([0x43, 0x01, 0x02]))
        #expect(Self.refuses([0x19, 0x01]))
        #expect(Self.refuses([0x01, 0x02]))
        #expect(Self.refuses([]))
    }

    @Test func refusesLengthsLongerThanTheInput() {
        // A claimed 2^32-element array in five bytes must fail at once, not reserve memory.
        #expect(Self.refuses([0x9A, 0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(Self.refuses([0x5B, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
    }

    @Test func refusesDuplicateKeysAndBadText() {
        #expect(Self.refuses([0xA2, 0x01, 0x01, 0x01, 0x02]))
        #expect(Self.refuses([0x62, 0xC3, 0x28]))        // invalid UTF-8
    }

    @Test func refusesDeepNesting() {
        let deep = [UInt8](repeating: 0x81, count: 40) + [0x01]
        #expect(Self.refuses(deep))
        let shallow = [UInt8](repeating: 0x81, count: 10) + [0x01]
        #expect(!Self.refuses(shallow))
    }

    @Test func refusesInputOverTheSizeLimit() {
        #expect(Self.refuses([0x43, 1, 2, 3], CBORDecoder.Limits(maxBytes: 3)))
    }

    @Test func canonicalModeRefusesLongFormsAndUnsortedKeys() {
        #expect(Self.refuses([0x18, 0x05], .ctap2))      // 5 in two bytes
        #expect(!Self.refuses([0x18, 0x05], .strict))
        #expect(Self.refuses([0xA2, 0x03, 0x01, 0x01, 0x01], .ctap2))  // keys 3, 1
        #expect(Self.refuses([0xA2, 0x20, 0x01, 0x01, 0x01], .ctap2))  // -1 before 1: major type 1 after 0
        #expect(!Self.refuses([0xA2, 0x01, 0x01, 0x20, 0x01], .ctap2))
        #expect(Self.refuses([0xA2, 0x18, 0x18, 0x01, 0x17, 0x01], .ctap2))  // 24 (two bytes) before 23 (one)
    }
}
