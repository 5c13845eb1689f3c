/// A CBOR data item (RFC 8949), as far as WebAuthn and CTAP2 use them: no tags, no indefinite lengths.
public indirect enum CBORValue: Hashable, Sendable {
    case unsigned(UInt64)
    /// A negative integer, stored as CBOR stores it: the value is `-1 - n`.
    case negative(UInt64)
    case bytes([UInt8])
    case text(String)
    case array([CBORValue])
    /// A map, in the order its pairs were encoded.
    case map([Pair])
    case bool(Bool)
    case null
    case undefined
    case float(Double)

    /// One key and its value in a ``CBORValue/map(_:)``.
    public struct Pair: Hashable, Sendable {
        public var key: CBORValue
        public var value: CBORValue
        public init(_ key: CBORValue, _ value: CBORValue) {
            self.key = key
            self.value = value
        }
    }

    /// An integer key or value, `nil` when it does not fit in an `Int`.
    public var int: Int? {
        switch self {
        case .unsigned(let n): n <= UInt64(Int.max) ? Int(n) : nil
        case .negative(let n): n < UInt64(Int.max) ? -1 - Int(n) : nil
        default: nil
        }
    }

    /// The integer `value` as CBOR.
    public static func int(_ value: Int) -> CBORValue {
        value >= 0 ? .unsigned(UInt64(value)) : .negative(UInt64(-1 - value))
    }

    public var bytesValue: [UInt8]? { if case .bytes(let b) = self { b } else { nil } }
    public var textValue: String? { if case .text(let t) = self { t } else { nil } }
    public var arrayValue: [CBORValue]? { if case .array(let a) = self { a } else { nil } }
    public var mapValue: [Pair]? { if case .map(let m) = self { m } else { nil } }

    /// The value under an integer key, for COSE maps.
    public subscript(intKey key: Int) -> CBORValue? {
        mapValue?.first { $0.key.int == key }?.value
    }

    /// The value under a text key, for attestation objects and statements.
    public subscript(textKey key: String) -> CBORValue? {
        mapValue?.first { $0.key.textValue == key }?.value
    }
}
