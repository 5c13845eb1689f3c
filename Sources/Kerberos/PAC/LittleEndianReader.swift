/// Reads MS-PAC's little-endian fields and MS-RPCE NDR (4-byte aligned from the start of the buffer).
struct LittleEndianReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var offset = 0
    private let what: String

    init(_ bytes: ArraySlice<UInt8>, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var remaining: Int { bytes.count - offset }

    mutating func align(_ alignment: Int) throws {
        let padding = (alignment - offset % alignment) % alignment
        try skip(padding)
    }

    mutating func skip(_ count: Int) throws {
        guard count >= 0, count <= remaining else { throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: \(what) ends early") }
        offset += count
    }

    mutating func read(_ count: Int) throws -> ArraySlice<UInt8> {
        let start = bytes.startIndex + offset
        try skip(count)
        return bytes[start..<(start + count)]
    }

    mutating func u8() throws -> UInt8 { try read(1).first! }

    mutating func u16() throws -> UInt16 {
        let b = try read(2)
        return UInt16(b[b.startIndex]) | UInt16(b[b.startIndex + 1]) << 8
    }

    mutating func u32() throws -> UInt32 {
        let b = try read(4)
        return b.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() throws -> UInt64 {
        let b = try read(8)
        return b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// NDR: an aligned 32-bit value.
    mutating func ndrU32() throws -> UInt32 {
        try align(4)
        return try u32()
    }
}
