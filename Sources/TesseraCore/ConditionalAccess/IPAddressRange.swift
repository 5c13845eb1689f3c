#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as one 128-bit number: IPv4 addresses are IPv4-mapped (`::ffff:a.b.c.d`), so one
/// table holds both families and an IPv4 client seen as a mapped IPv6 address still matches its IPv4 ranges.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The address as a number, IPv4 addresses in the IPv4-mapped block.
    public let value: UInt128
    static let mappedIPv4Prefix: UInt128 = 0xffff << 32

    /// The address with this number.
    public init(value: UInt128) { self.value = value }

    /// Parses a textual IPv4 (`203.0.113.7`) or IPv6 (`2001:db8::1`) address; nil if it is neither.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.value = Self.mappedIPv4Prefix | UInt128(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        var value: UInt128 = 0
        withUnsafeBytes(of: &v6) { bytes in
            for byte in bytes { value = value << 8 | UInt128(byte) }
        }
        self.value = value
    }

    /// Whether this is an IPv4 (or IPv4-mapped) address.
    public var isIPv4: Bool { value >> 32 == 0xffff }

    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: value)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        return stride(from: 112, through: 0, by: -16).map { String(UInt16(truncatingIfNeeded: value >> $0), radix: 16) }
            .joined(separator: ":")
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool { lhs.value < rhs.value }
}

/// A contiguous block of addresses, from a CIDR range such as `203.0.113.0/24` or `2001:db8::/48`.
public struct IPAddressRange: Sendable, Hashable, CustomStringConvertible {
    /// The lowest address of the block.
    public let first: IPAddress
    /// The highest address of the block.
    public let last: IPAddress

    public init(first: IPAddress, last: IPAddress) {
        self.first = first
        self.last = last
    }

    /// Parses CIDR notation (`address/prefix`, prefix ≤ 32 for IPv4 and ≤ 128 for IPv6); host bits are ignored,
    /// as Entra ignores them. Nil for anything else.
    public init?(cidr: String) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let prefix = Int(parts[1]), let address = IPAddress(String(parts[0]))
        else { return nil }
        let isIPv4Text = parts[0].contains(".") && !parts[0].contains(":")
        guard prefix <= (isIPv4Text ? 32 : 128) else { return nil }
        let bits = isIPv4Text ? 96 + prefix : prefix
        let hostMask: UInt128 = bits == 128 ? 0 : UInt128.max >> bits
        self.first = IPAddress(value: address.value & ~hostMask)
        self.last = IPAddress(value: address.value | hostMask)
    }

    /// Whether the address is in the block.
    public func contains(_ address: IPAddress) -> Bool { first <= address && address <= last }

    public var description: String { "\(first)-\(last)" }
}

/// A set of ranges kept sorted and merged, so membership is one binary search and no allocation.
public struct IPAddressRangeSet: Sendable, Hashable {
    /// Disjoint, non-adjacent ranges in ascending order.
    public private(set) var ranges: [IPAddressRange]

    /// The union of the ranges, sorted and merged (compiled once per named location).
    public init(_ ranges: some Sequence<IPAddressRange>) {
        var merged: [IPAddressRange] = []
        for range in ranges.sorted(by: { $0.first < $1.first }) {
            if let previous = merged.last, previous.last.value == .max || range.first.value <= previous.last.value + 1 {
                merged[merged.count - 1] = IPAddressRange(first: previous.first, last: max(previous.last, range.last))
            } else {
                merged.append(range)
            }
        }
        self.ranges = merged
    }

    /// Whether any range holds the address: one binary search.
    public func contains(_ address: IPAddress) -> Bool {
        var low = 0, high = ranges.count
        while low < high {  // the first range whose last address is ≥ address
            let middle = (low + high) / 2
            if ranges[middle].last < address { low = middle + 1 } else { high = middle }
        }
        return low < ranges.count && ranges[low].first <= address
    }
}
