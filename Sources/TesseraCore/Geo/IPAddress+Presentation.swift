#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension IPAddress {
    /// Parses an address from its text as bytes (at most 45, e.g. a field of a file being read), without making a
    /// `String`: the bytes are copied to a NUL-terminated stack buffer for `inet_pton`. Nil if it is no address.
    init?(presentation bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count < 46 else { return nil }
        let parsed = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 46) { text -> UInt128? in
            for i in 0..<bytes.count { text[i] = CChar(bitPattern: bytes[i]) }
            text[bytes.count] = 0
            var v4 = in_addr()
            if inet_pton(AF_INET, text.baseAddress, &v4) == 1 {
                return Self.mappedIPv4Prefix | UInt128(UInt32(bigEndian: v4.s_addr))
            }
            var v6 = in6_addr()
            guard inet_pton(AF_INET6, text.baseAddress, &v6) == 1 else { return nil }
            return withUnsafeBytes(of: &v6) { raw in
                raw.loadUnaligned(as: UInt128.self).bigEndian
            }
        }
        guard let parsed else { return nil }
        self.init(value: parsed)
    }
}
