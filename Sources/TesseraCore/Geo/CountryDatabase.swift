public import Foundation

/// Which country an IP address is in: the table Conditional Access's country named locations are decided by.
///
/// Loaded once at start from Tor's `geoip` / `geoip6` files (Debian's `tor-geoipdb`, converted from the IPFire
/// Location database; see ``load(path:)``), held as two sorted tables of range starts, one per address family, and
/// answered by one binary search with no allocation. An address the table does not cover (private, reserved,
/// unallocated, or marked `??`) has no country: a policy's `includeUnknownCountriesAndRegions` decides it.
public struct CountryDatabase: Sendable {
    /// Where the table came from and how fresh it is, for the start-up log.
    public struct Info: Sendable, Hashable {
        /// The file or folder it was read from (empty for ``empty``).
        public var source: String
        /// When the data was exported, from the file's `# Generated:` header; nil if it does not say.
        public var generated: Date?
        /// IPv4 ranges with a country that were read.
        public var ipv4Ranges: Int
        /// IPv6 ranges with a country that were read.
        public var ipv6Ranges: Int
    }

    let ipv4: CountryRangeTable<UInt32>
    let ipv6: CountryRangeTable<UInt128>
    /// Where the table came from, its date and size.
    public let info: Info

    init(ipv4: CountryRangeTable<UInt32>, ipv6: CountryRangeTable<UInt128>, info: Info) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.info = info
    }

    /// A two-capital-letter code as the tables hold it: 1 + its index among the 676 (`AA` is 1, `ZZ` 676; 0 is none).
    static func code(_ first: UInt8, _ second: UInt8) -> UInt16 {
        UInt16(first - UInt8(ascii: "A")) * 26 + UInt16(second - UInt8(ascii: "A")) + 1
    }

    /// Every code's text, by its number (small strings: returning one allocates nothing).
    static let names: [String] = [""] + (0..<676).map { n in
        String(decoding: [UInt8(ascii: "A") + UInt8(n / 26), UInt8(ascii: "A") + UInt8(n % 26)], as: UTF8.self)
    }

    /// A database that knows no address: every country is unknown (a deployment without a database).
    public static let empty = CountryDatabase(ipv4: .init(), ipv6: .init(),
                                              info: Info(source: "", generated: nil, ipv4Ranges: 0, ipv6Ranges: 0))

    /// Whether it knows no address at all.
    public var isEmpty: Bool { info.ipv4Ranges == 0 && info.ipv6Ranges == 0 }

    /// The ISO 3166 code of the country `address` is in (uppercase, e.g. `NL`), nil when the table does not say.
    /// An IPv4 address seen as IPv4-mapped IPv6 is looked up as IPv4.
    public func country(for address: IPAddress) -> String? {
        let index = address.isIPv4 ? ipv4.code(at: UInt32(truncatingIfNeeded: address.value)) : ipv6.code(at: address.value)
        return index == 0 ? nil : Self.names[Int(index)]
    }

    /// The country of an address given as text (the client address the HTTP edge established); nil when the text is
    /// not an address or the table does not say.
    public func country(for address: String?) -> String? {
        guard !isEmpty, let address, let parsed = IPAddress(address) else { return nil }
        return country(for: parsed)
    }
}

/// Sorted, disjoint ranges of one address family as the starts of runs: each entry holds from its start up to the
/// next entry's start (the last to the end of the family), with code 0 for a run no range covers. Looking an address
/// up is one binary search; adjacent ranges of one country are one run.
struct CountryRangeTable<Bound: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    private(set) var starts: [Bound] = []
    private(set) var codes: [UInt16] = []
    /// Where the next range may start at the earliest; nil once a range reached the family's last address.
    private var next: Bound? = 0

    /// Appends the range `first...last` with `code` (≥ 1). False, and nothing appended, when the range is empty,
    /// or does not come after every range appended before (the table is built in ascending order, disjoint).
    mutating func append(_ first: Bound, _ last: Bound, code: UInt16) -> Bool {
        guard let next, next <= first, first <= last else { return false }
        if starts.isEmpty {
            if first > 0 { starts.append(0); codes.append(0) }
            starts.append(first); codes.append(code)
        } else if first == next {  // right after the previous range: its gap marker is where this one starts
            if codes.count >= 2 && codes[codes.count - 2] == code {
                starts.removeLast(); codes.removeLast()  // the same country goes on: one run
            } else {
                codes[codes.count - 1] = code
            }
        } else {
            starts.append(first); codes.append(code)
        }
        if last == .max {
            self.next = nil
        } else {
            starts.append(last + 1); codes.append(0)
            self.next = last + 1
        }
        return true
    }

    /// Makes room for `ranges` more ranges (each adds at most two entries), so building never copies the arrays to
    /// grow them (pages a table does not reach are never touched).
    mutating func reserve(ranges: Int) {
        starts.reserveCapacity(starts.count + 2 * ranges + 1)
        codes.reserveCapacity(codes.count + 2 * ranges + 1)
    }

    /// The code of the run holding `value` (0 when none does).
    func code(at value: Bound) -> UInt16 {
        var low = 0, high = starts.count  // the first start greater than value
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? 0 : codes[low - 1]
    }
}

/// Described by where it came from and its size, never by its hundreds of thousands of entries: a service that
/// holds the app and is printed by reflection (the service group's log does) must not spell out the tables.
extension CountryDatabase: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        isEmpty ? "CountryDatabase(empty)" : "CountryDatabase(\(info.source), \(info.ipv4Ranges) IPv4 and \(info.ipv6Ranges) IPv6 ranges)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: ["info": info]) }
}
