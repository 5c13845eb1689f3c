/// Reads MS-PAC's little-endian fields and MS-RPCE NDR (4-byte aligned from the start of the buffer).
struct LittleEndianReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var offset = 0
    private let what: StaticString

    init(_ bytes: ArraySlice<UInt8>, what: StaticString) {
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

    /// The next `count` bytes as a little-endian integer, loaded where they lie (no slice made).
    @inline(__always)
    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let at = offset
        try skip(MemoryLayout<T>.size)
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
    }

    mutating func u8() throws -> UInt8 { try integer(UInt8.self) }

    mutating func u16() throws -> UInt16 { try integer(UInt16.self) }

    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }

    mutating func u64() throws -> UInt64 { try integer(UInt64.self) }

    /// NDR: an aligned 32-bit value.
    mutating func ndrU32() throws -> UInt32 {
        try align(4)
        return try u32()
    }
}
