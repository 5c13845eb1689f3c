/// Encodes CBOR in CTAP2's canonical form (maps are sorted), for test authenticators and the inspector.
public enum CBOREncoder {
    public static func encode(_ value: CBORValue) -> [UInt8] {
        var out: [UInt8] = []
        append(value, to: &out)
        return out
    }

    private static func head(_ major: UInt8, _ argument: UInt64, to out: inout [UInt8]) {
        let m = major << 5
        switch argument {
        case 0..<24: out.append(m | UInt8(argument))
        case 24...0xFF: out.append(m | 24); out.append(UInt8(argument))
        case 0x100...0xFFFF: out.append(m | 25); appendBigEndian(argument, width: 2, to: &out)
        case 0x10000...0xFFFF_FFFF: out.append(m | 26); appendBigEndian(argument, width: 4, to: &out)
        default: out.append(m | 27); appendBigEndian(argument, width: 8, to: &out)
        }
    }

    private static func appendBigEndian(_ value: UInt64, width: Int, to out: inout [UInt8]) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func append(_ value: CBORValue, to out: inout [UInt8]) {
        switch value {
        case .unsigned(let n): head(0, n, to: &out)
        case .negative(let n): head(1, n, to: &out)
        case .bytes(let b): head(2, UInt64(b.count), to: &out); out += b
        case .text(let t): head(3, UInt64(t.utf8.count), to: &out); out += Array(t.utf8)
        case .array(let items):
            head(4, UInt64(items.count), to: &out)
            for item in items { append(item, to: &out) }
        case .map(let pairs):
            head(5, UInt64(pairs.count), to: &out)
            let encoded = pairs.map { (encode($0.key), $0.value) }.sorted { a, b in
                let majorA = a.0.first! >> 5, majorB = b.0.first! >> 5
                if majorA != majorB { return majorA < majorB }
                if a.0.count != b.0.count { return a.0.count < b.0.count }
                return a.0.lexicographicallyPrecedes(b.0)
            }
            for (key, item) in encoded { out += key; append(item, to: &out) }
        case .bool(let b): out.append(b ? 0xF5 : 0xF4)
        case .null: out.append(0xF6)
        case .undefined: out.append(0xF7)
        case .float(let d): out.append(0xFB); appendBigEndian(d.bitPattern, width: 8, to: &out)
        }
    }
}
