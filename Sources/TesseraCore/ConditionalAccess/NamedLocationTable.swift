/// Every named location of a tenant in one table, built with the engine: the address space cut into segments, each
/// with the set of IP locations that hold it, so one binary search finds every location containing a client (10,000
/// ranges in 50 locations are one search of ~15 steps, not 50); and a table of country codes to the country
/// locations that list them. Location sets are bits, `words` 64-bit words each, bit `l` for location `l`.
struct NamedLocationTable: Sendable {
    let count: Int
    let words: Int
    /// The first address of each segment, ascending, from 0.
    private let starts: FrozenArray<UInt128>
    /// Each segment's set of IP locations.
    private let sets: FrozenArray<UInt64>
    /// The country locations listing each two-letter code (`AA` … `ZZ`).
    private let countrySets: FrozenArray<UInt64>
    /// The country locations that take an unknown country.
    private let unknownCountry: FrozenArray<UInt64>
    /// The country locations listing a code that is not two letters.
    private let otherCountries: [String: [UInt64]]
    /// The trusted locations.
    private let trusted: FrozenArray<UInt64>

    init(_ locations: [NamedLocation], in arena: Arena) {
        count = locations.count
        let words = max(1, (locations.count + 63) / 64)
        self.words = words
        func bit(_ l: Int) -> (word: Int, mask: UInt64) { (l >> 6, 1 << UInt64(l & 63)) }
        var events: [(point: UInt128, location: Int, opens: Bool)] = []
        var countrySets = [UInt64](repeating: 0, count: 26 * 26 * words)
        var unknownCountry = [UInt64](repeating: 0, count: words)
        var otherCountries: [String: [UInt64]] = [:]
        var trusted = [UInt64](repeating: 0, count: words)
        for (l, location) in locations.enumerated() {
            let (word, mask) = bit(l)
            if location.isTrusted { trusted[word] |= mask }
            if let countries = location.countries {
                if location.includeUnknownCountries { unknownCountry[word] |= mask }
                for code in countries {
                    if let index = Self.countryIndex(code) {
                        countrySets[index * words + word] |= mask
                    } else {
                        otherCountries[code, default: [UInt64](repeating: 0, count: words)][word] |= mask
                    }
                }
                continue
            }
            for range in location.ranges.ranges {
                events.append((range.first.value, l, true))
                if range.last.value != .max { events.append((range.last.value + 1, l, false)) }
            }
        }
        events.sort { $0.point < $1.point }
        var starts: [UInt128] = [0]
        var sets = [UInt64](repeating: 0, count: words)
        var active = [UInt64](repeating: 0, count: words)
        var index = 0
        while index < events.count {
            let point = events[index].point
            while index < events.count, events[index].point == point {
                let (word, mask) = bit(events[index].location)
                if events[index].opens { active[word] |= mask } else { active[word] &= ~mask }
                index += 1
            }
            let last = sets.count - words
            if starts[starts.count - 1] == point {
                sets.replaceSubrange(last..., with: active)
            } else if !sets[last...].elementsEqual(active) {
                starts.append(point)
                sets.append(contentsOf: active)
            }
        }
        self.starts = arena.freeze(starts)
        self.sets = arena.freeze(sets)
        self.countrySets = arena.freeze(countrySets)
        self.unknownCountry = arena.freeze(unknownCountry)
        self.otherCountries = otherCountries
        self.trusted = arena.freeze(trusted)
    }

    /// `AA` is 0, `ZZ` 675; nil for anything but two uppercase ASCII letters.
    static func countryIndex(_ code: String) -> Int? {
        var utf8 = code.utf8.makeIterator()
        guard let first = utf8.next(), let second = utf8.next(), utf8.next() == nil,
              (65...90).contains(first), (65...90).contains(second)
        else { return nil }
        return Int(first - 65) * 26 + Int(second - 65)
    }

    /// Calls `body` with each location that contains the sign-in (an IP location holding `ip`, a country location
    /// listing `country` or, when it is unknown, taking unknown countries); returns whether a trusted one does.
    @inline(__always)
    func forEachContaining(ip: IPAddress?, country: String?, _ body: (Int) -> Void) -> Bool {
        guard count > 0 else { return false }
        var isTrusted = false
        if let ip {
            var low = 0, high = starts.count
            while low < high {  // the first segment starting after the address
                let middle = (low + high) / 2
                if starts[middle] <= ip.value { low = middle + 1 } else { high = middle }
            }
            let base = (low - 1) * words
            for w in 0..<words where sets[base + w] != 0 {
                isTrusted = isTrusted || sets[base + w] & trusted[w] != 0
                Self.forEachBit(sets[base + w], word: w, body)
            }
        }
        if let country {
            if let index = Self.countryIndex(country) {
                for w in 0..<words where countrySets[index * words + w] != 0 {
                    Self.forEachBit(countrySets[index * words + w], word: w, body)
                }
            } else if let other = otherCountries[country] {
                for w in 0..<words { Self.forEachBit(other[w], word: w, body) }
            }
        } else {
            for w in 0..<words { Self.forEachBit(unknownCountry[w], word: w, body) }
        }
        return isTrusted
    }

    @inline(__always)
    static func forEachBit(_ word: UInt64, word index: Int, _ body: (Int) -> Void) {
        var remaining = word
        while remaining != 0 {
            body(index << 6 | remaining.trailingZeroBitCount)
            remaining &= remaining - 1
        }
    }
}
