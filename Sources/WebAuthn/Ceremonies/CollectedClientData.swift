/// The browser's collected client data (WebAuthn §5.8.1), parsed from `clientDataJSON`.
///
/// This is on every sign-in's path, so it is read in one pass over the bytes: the members WebAuthn defines are
/// taken as they are met, the others are validated as JSON and skipped, and duplicates are refused.
public struct CollectedClientData: Sendable {
    public let type: String
    /// The challenge as the browser saw it, decoded from base64url.
    public let challenge: [UInt8]
    public let origin: String
    public let crossOrigin: Bool
    public let topOrigin: String?
    /// `tokenBinding.status`, when present.
    public let tokenBindingStatus: String?

    /// Parses `clientDataJSON`. Members this library does not know are tolerated, as §5.8.1 requires.
    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        func fail(_ why: String) -> WebAuthnError { WebAuthnError(.clientDataMalformed, "clientDataJSON \(why)") }
        var reader = JSONReader(bytes: bytes)
        var type: String?, challenge: [UInt8]?, origin: String?, crossOrigin = false, topOrigin: String?, tokenBinding: String?
        var seen: UInt8 = 0               // the members WebAuthn defines, by bit
        var others: [Range<Int>] = []     // any other member's key, to refuse duplicates

        /// A string member's value, without escapes the common case.
        func string(_ reader: inout JSONReader, _ name: String) throws(WebAuthnError) -> String {
            if let range = reader.rawString() { return String(decoding: bytes[range], as: UTF8.self) }
            guard let text = reader.string() else { throw fail("member \"\(name)\" is not a string") }
            return text
        }

        reader.whitespace()
        guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "{") else { throw fail("is not a JSON object") }
        reader.index += 1
        reader.whitespace()
        var empty = reader.index < bytes.count && bytes[reader.index] == UInt8(ascii: "}")
        if empty { reader.index += 1 }
        while !empty {
            reader.whitespace()
            // Keys are compared as bytes; one with escapes is not a member WebAuthn defines, and is only validated.
            let member: Int
            if let range = reader.rawString() {
                member = Self.member(bytes, range)
                if member == Self.names.count {
                    guard !others.contains(where: { bytes[$0].elementsEqual(bytes[range]) }) else { throw fail("has a member twice") }
                    others.append(range)
                }
            } else if reader.string() != nil {
                member = Self.names.count
            } else {
                throw fail("is not a JSON object")
            }
            if member < Self.names.count {
                guard seen & (1 << member) == 0 else { throw fail("has member \"\(String(decoding: Self.names[member], as: UTF8.self))\" twice") }
                seen |= 1 << member
            }
            reader.whitespace()
            guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: ":") else { throw fail("is not a JSON object") }
            reader.index += 1
            reader.whitespace()
            switch member {
            case 0: type = try string(&reader, "type")
            case 2: origin = try string(&reader, "origin")
            case 1:
                if let range = reader.rawString() {
                    challenge = bytes.withUnsafeBufferPointer { Base64URL.decode(UnsafeBufferPointer(rebasing: $0[range])) }
                } else {
                    challenge = reader.string().flatMap { Base64URL.decode($0) }
                }
                guard challenge != nil else { throw fail("has no base64url \"challenge\"") }
            case 3:
                switch reader.value(depth: 1) {
                case .bool(let b)?: crossOrigin = b
                case .null?: crossOrigin = false
                default: throw fail("member \"crossOrigin\" is not a boolean")
                }
            case 4:
                switch reader.value(depth: 1) {
                case .string(let s)?: topOrigin = s
                case .null?: topOrigin = nil
                default: throw fail("member \"topOrigin\" is not a string")
                }
            case 5:
                guard let value = reader.value(depth: 1) else { throw fail("is not valid JSON") }
                tokenBinding = value["status"]?.string
            default:
                guard reader.skipValue(depth: 1) else { throw fail("is not valid JSON") }
            }
            reader.whitespace()
            guard reader.index < bytes.count else { throw fail("is not valid JSON") }
            if bytes[reader.index] == UInt8(ascii: ",") { reader.index += 1; continue }
            guard bytes[reader.index] == UInt8(ascii: "}") else { throw fail("is not valid JSON") }
            reader.index += 1
            empty = true
        }
        reader.whitespace()
        guard reader.index == bytes.count else { throw fail("has content after the object") }
        guard let type else { throw fail("has no string \"type\"") }
        guard let challenge else { throw fail("has no base64url \"challenge\"") }
        guard let origin else { throw fail("has no string \"origin\"") }
        self.type = type
        self.challenge = challenge
        self.origin = origin
        self.crossOrigin = crossOrigin
        self.topOrigin = topOrigin
        self.tokenBindingStatus = tokenBinding
    }

    /// The members §5.8.1 defines, in the order of the bits in `seen`.
    static let names: [[UInt8]] = ["type", "challenge", "origin", "crossOrigin", "topOrigin", "tokenBinding"].map { Array($0.utf8) }

    /// Which of ``names`` the key in `range` is, or `names.count` for any other.
    static func member(_ bytes: [UInt8], _ range: Range<Int>) -> Int {
        for (index, name) in names.enumerated() where name.count == range.count && bytes[range].elementsEqual(name) { return index }
        return names.count
    }
}
