/// Reads MS-PAC's little-endian fields and MS-RPCE NDR (4-byte aligned from the start of the buffer), over the
/// bytes' memory lent for the duration of ``read(_:what:_:)``: each field is loaded where it lies, with no slice (and
/// no reference counted) per field.
struct LittleEndianReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0
    private let what: StaticString

    private init(_ bytes: UnsafeRawBufferPointer, what: StaticString) {
        self.bytes = bytes
        self.what = what
    }

    /// `body` with a reader over `bytes`.
    static func read<T>(
        _ bytes: ArraySlice<UInt8>, what: StaticString, _ body: (inout LittleEndianReader) throws -> T
    ) rethrows -> T {
        try bytes.withUnsafeBytes { memory in
            var reader = LittleEndianReader(memory, what: what)
            return try body(&reader)
        }
    }

    var remaining: Int { bytes.count - offset }

    mutating func align(_ alignment: Int) throws {
        let padding = (alignment - offset % alignment) % alignment
        try skip(padding)
    }

    mutating func skip(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: \(what) ends early")
        }
        offset += count
    }

    /// The next `count` bytes, valid only within ``read(_:what:_:)``'s body.
    mutating func read(_ count: Int) throws -> UnsafeRawBufferPointer {
        let start = offset
        try skip(count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)])
    }

    /// The next bytes as a little-endian integer.
    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let at = offset
        try skip(MemoryLayout<T>.size)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
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
