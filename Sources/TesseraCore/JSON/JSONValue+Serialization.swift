extension JSONValue {
    /// Compact JSON text with object keys sorted (`@odata` annotations first, as Graph writes them), so
    /// equal values serialise to equal bytes.
    public var serialized: String { String(decoding: serializedBytes, as: UTF8.self) }

    /// Compact JSON bytes (UTF-8) with sorted keys.
    public var serializedBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    /// Appends the value's compact JSON (the bytes ``serializedBytes`` holds) to `out`, for writers that put several
    /// values into one buffer.
    public func serialize(into out: inout [UInt8]) { write(to: &out) }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.rounded() == d, abs(d) < 1e15 { out.append(contentsOf: String(Int64(d)).utf8) } else { out.append(contentsOf: "\(d)".utf8) }
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            if let order = Self.asciiOrder(members) {
                for (i, entry) in order.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    let member = members[entry.index]
                    Self.writeString(member.key, to: &out)
                    out.append(UInt8(ascii: ":"))
                    member.value.write(to: &out)
                }
                out.append(UInt8(ascii: "}"))
                return
            }
            // Whether a key is an annotation is asked once a key, not twice a comparison, and each value is written
            // from the sorted pairs without looking its key up again. Most keys have no '@' at all: a byte test
            // answers those without a prefix search.
            let sorted = members.map { (odata: Self.isAnnotationKey($0.key), key: $0.key, value: $0.value) }.sorted { a, b in
                a.odata != b.odata ? a.odata : a.key < b.key
            }
            for (i, member) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// An object's member in the order of its key: annotations first, then its key's first 24 bytes as three big-endian
    /// words (zero after its end), then, for keys whose first 24 bytes are the same, the keys themselves.
    private struct OrderEntry {
        var odata: Bool
        var words: (UInt64, UInt64, UInt64)
        var index: [String: JSONValue].Index
    }

    /// The members' positions in key order when every key is ASCII, else nil. For ASCII, `String`'s `<` is the order of
    /// the bytes, so most comparisons are of integers (24 bytes: `extensionAttribute1`…`15` differ only after 16), and
    /// the sort moves plain positions, not (key, value) pairs that are retained and released as they move; the order is
    /// the same as the pairs' (`a.key < b.key`). A key with any other byte takes that path, since `String` compares
    /// canonical equivalents (a letter and a combining mark, the composed letter) as equal.
    private static func asciiOrder(_ members: [String: JSONValue]) -> [OrderEntry]? {
        var order: [OrderEntry] = []
        order.reserveCapacity(members.count)
        var index = members.startIndex
        while index != members.endIndex {
            var key = members[index].key
            let entry: OrderEntry? = key.withUTF8 { bytes in
                var high: UInt8 = 0
                for byte in bytes { high |= byte }
                guard high < 0x80 else { return nil }
                var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
                for position in 0..<min(bytes.count, 24) {
                    let byte = UInt64(bytes[position]) << UInt64(8 * (7 - position % 8))
                    switch position {
                    case ..<8: words.0 |= byte
                    case ..<16: words.1 |= byte
                    default: words.2 |= byte
                    }
                }
                let odata = bytes.first == UInt8(ascii: "@") && bytes.starts(with: "@odata".utf8)
                return OrderEntry(odata: odata, words: words, index: index)
            }
            guard let entry else { return nil }
            order.append(entry)
            members.formIndex(after: &index)
        }
        order.sort { a, b in
            if a.odata != b.odata { return a.odata }
            if a.words.0 != b.words.0 { return a.words.0 < b.words.0 }
            if a.words.1 != b.words.1 { return a.words.1 < b.words.1 }
            if a.words.2 != b.words.2 { return a.words.2 < b.words.2 }
            return members[a.index].key < members[b.index].key
        }
        return order
    }

    /// Whether a key sorts with the `@odata` annotations (first).
    private static func isAnnotationKey(_ key: String) -> Bool {
        key.utf8.first == UInt8(ascii: "@") && key.hasPrefix("@odata")
    }

    /// A string in quotes, with `"`, `\\` and control characters escaped and every other byte as it is. Runs of bytes
    /// that need no escape (nearly all of them) are copied at once from the string's UTF-8 storage instead of one
    /// append a byte, which showed in a bulk sync's profile; the bytes are the same.
    private static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if start < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
                start = index + 1
                out.append(0x5C)
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    out.append(UInt8(ascii: "u"))
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "0"))
                    out.append(Hex.digits[Int(byte >> 4)])
                    out.append(Hex.digits[Int(byte & 15)])
                }
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
        out.append(UInt8(ascii: "\""))
    }
}
