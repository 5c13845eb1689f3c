/// Reads a JSON object member by member in one pass, for the hot paths (client data, the credential JSON): the
/// members a caller names are handed to it with the reader at their value, the others are validated and skipped,
/// and duplicate keys are refused.
struct JSONObjectWalker {
    /// The member names a caller wants, as UTF-8.
    let names: [[UInt8]]

    init(_ names: [String]) { self.names = names.map { Array($0.utf8) } }

    /// Walks the object at the reader's position. `visit(index, &reader)` must consume the value of member
    /// `names[index]` and return false if it is unacceptable. Returns false for malformed JSON or duplicates.
    func walk(_ reader: inout JSONReader, depth: Int = 0, _ visit: (Int, inout JSONReader) -> Bool) -> Bool {
        let bytes = reader.bytes
        reader.whitespace()
        guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "{"), depth < 64 else { return false }
        reader.index += 1
        reader.whitespace()
        if reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: "}") { reader.index += 1; return true }
        var seen: UInt64 = 0
        var others: [Range<Int>] = []
        var escapedOthers: [String] = []
        while true {
            reader.whitespace()
            var member = names.count
            if let range = reader.rawString() {
                for (index, name) in names.enumerated() where name.count == range.count && bytes[range].elementsEqual(name) {
                    member = index
                    break
                }
                if member == names.count {
                    guard !others.contains(where: { bytes[$0].elementsEqual(bytes[range]) }) else { return false }
                    others.append(range)
                }
            } else if let key = reader.string() {
                // A key written with escapes: compared as text.
                if let index = names.firstIndex(of: Array(key.utf8)) { member = index } else {
                    guard !escapedOthers.contains(key) else { return false }
                    escapedOthers.append(key)
                }
            } else {
                return false
            }
            if member < names.count {
                guard seen & (1 << UInt64(member)) == 0 else { return false }
                seen |= 1 << UInt64(member)
            }
            reader.whitespace()
            guard reader.index < bytes.count, bytes[reader.index] == UInt8(ascii: ":") else { return false }
            reader.index += 1
            reader.whitespace()
            if member < names.count {
                guard visit(member, &reader) else { return false }
            } else {
                guard reader.skipValue(depth: depth + 1) else { return false }
            }
            reader.whitespace()
            guard reader.index < bytes.count else { return false }
            if bytes[reader.index] == UInt8(ascii: ",") { reader.index += 1; continue }
            guard bytes[reader.index] == UInt8(ascii: "}") else { return false }
            reader.index += 1
            return true
        }
    }
}

extension JSONReader {
    /// A string value's text.
    mutating func stringValue() -> String? {
        if let range = rawString() { return String(decoding: bytes[range], as: UTF8.self) }
        return string()
    }

    /// A base64url string value, decoded straight from the bytes when it has no escapes.
    mutating func base64URLValue() -> [UInt8]? {
        if let range = rawString() {
            return bytes.withUnsafeBufferPointer { Base64URL.decode(UnsafeBufferPointer(rebasing: $0[range])) }
        }
        return string().flatMap { Base64URL.decode($0) }
    }
}
