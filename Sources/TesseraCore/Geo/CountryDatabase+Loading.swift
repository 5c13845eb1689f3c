public import Foundation

/// Why a country database could not be loaded. Compared by code; the message names the file and line.
public struct CountryDatabaseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Hashable {
        /// The path does not exist or cannot be read.
        case unreadable
        /// A line is not `FIRST,LAST,CC`, or its range is empty or out of order.
        case malformedLine
        /// The path holds no range at all.
        case empty
    }

    public var code: Code
    /// A message for the operator.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension CountryDatabase {
    /// Where Debian's `tor-geoipdb` installs Tor's `geoip` and `geoip6`: the database used when none is named.
    public static let defaultPath = "/usr/share/tor"

    /// Reads a database in Tor's geoip format: a folder holding `geoip` (IPv4) and `geoip6` (IPv6), or one file.
    ///
    /// Each line is `FIRST,LAST,CC`: an inclusive range (IPv4 as a decimal number or dotted quad, IPv6 in its text
    /// form) and an ISO 3166 code in capitals, `??` for none; `#` starts a comment, and the header's
    /// `# Generated: <RFC 1123 date>` says when the data was exported. Ranges of each family come in ascending order
    /// and do not overlap (as Tor's `geoip-db-tool` writes them).
    public static func load(path: String) throws(CountryDatabaseError) -> CountryDatabase {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CountryDatabaseError(.unreadable, "\(path) does not exist")
        }
        let files = isFolder.boolValue
            ? ["geoip", "geoip6"].map { (path as NSString).appendingPathComponent($0) }.filter { FileManager.default.fileExists(atPath: $0) }
            : [path]
        guard !files.isEmpty else { throw CountryDatabaseError(.unreadable, "\(path) holds neither geoip nor geoip6") }
        var builder = Builder()
        for file in files {
            // Mapped, not read: the pages go back when the load is done instead of lingering in the allocator.
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) else {
                throw CountryDatabaseError(.unreadable, "cannot read \(file)")
            }
            try builder.read(data, name: file)
        }
        return try builder.database(source: path)
    }

    /// Parses a database in Tor's geoip format from memory (see ``load(path:)``); `name` is for error messages.
    public static func parse(_ data: Data, name: String) throws(CountryDatabaseError) -> CountryDatabase {
        var builder = Builder()
        try builder.read(data, name: name)
        return try builder.database(source: name)
    }

    /// Accumulates the lines of one or more files into the two tables. The parser walks the bytes with plain loops
    /// and compares bytes, so even an unoptimised build reads Tor's 660,000 lines quickly.
    struct Builder {
        var ipv4 = CountryRangeTable<UInt32>()
        var ipv6 = CountryRangeTable<UInt128>()
        var ipv4Ranges = 0, ipv6Ranges = 0
        var generated: Date?

        mutating func read(_ data: Data, name: String) throws(CountryDatabaseError) {
            let failure = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> CountryDatabaseError? in
                guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
                let count = raw.count
                var lines = 0
                for i in 0..<count where base[i] == 0x0A { lines += 1 }
                ipv4.reserve(ranges: lines + 1)
                ipv6.reserve(ranges: lines + 1)
                var lineStart = 0, lineNumber = 0
                while lineStart < count {
                    var lineEnd = lineStart
                    while lineEnd < count && base[lineEnd] != 0x0A { lineEnd += 1 }  // \n
                    lineNumber += 1
                    var end = lineEnd
                    if end > lineStart && base[end - 1] == 0x0D { end -= 1 }  // \r
                    do throws(CountryDatabaseError) {
                        try readLine(UnsafeBufferPointer(start: base + lineStart, count: end - lineStart))
                    } catch {
                        return CountryDatabaseError(error.code, "line \(lineNumber) of \(name): \(error.message)")
                    }
                    lineStart = lineEnd + 1
                }
                return nil
            }
            if let failure { throw failure }
        }

        private mutating func readLine(_ line: UnsafeBufferPointer<UInt8>) throws(CountryDatabaseError) {
            guard !line.isEmpty else { return }
            if line[0] == UInt8(ascii: "#") {
                let text = String(decoding: line, as: UTF8.self)
                if generated == nil, text.hasPrefix("# Generated:") {
                    generated = Self.rfc1123(text.dropFirst("# Generated:".count).trimmingCharacters(in: .whitespaces))
                }
                return
            }
            var commas = (0, 0), found = 0
            for i in 0..<line.count where line[i] == UInt8(ascii: ",") {
                found += 1
                if found == 1 { commas.0 = i } else if found == 2 { commas.1 = i }
            }
            guard found == 2 else { throw Self.malformed("expected FIRST,LAST,CC") }
            guard line.count - commas.1 - 1 == 2 else { throw Self.malformed("the country must be a two-letter code or ??") }
            let c0 = line[commas.1 + 1], c1 = line[commas.1 + 2]
            let unknown = c0 == UInt8(ascii: "?") && c1 == UInt8(ascii: "?")
            guard unknown || (Self.isCapital(c0) && Self.isCapital(c1)) else {
                throw Self.malformed("the country must be a two-letter code in capitals or ??")
            }
            let low = try Self.address(UnsafeBufferPointer(rebasing: line[0..<commas.0]))
            let high = try Self.address(UnsafeBufferPointer(rebasing: line[(commas.0 + 1)..<commas.1]))
            guard low.isIPv4 == high.isIPv4 else { throw Self.malformed("the range mixes IPv4 and IPv6") }
            guard low <= high else { throw Self.malformed("the range ends before it starts") }
            if unknown { return }
            let code = CountryDatabase.code(c0, c1)
            let appended: Bool
            if low.isIPv4 {
                appended = ipv4.append(UInt32(truncatingIfNeeded: low.value), UInt32(truncatingIfNeeded: high.value), code: code)
                ipv4Ranges += 1
            } else {
                appended = ipv6.append(low.value, high.value, code: code)
                ipv6Ranges += 1
            }
            guard appended else { throw Self.malformed("ranges must come in ascending order without overlapping") }
        }

        private static func isCapital(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }

        /// An address field: a decimal IPv4 number (Tor's `geoip`), a dotted quad, or an IPv6 address (`geoip6`).
        private static func address(_ field: UnsafeBufferPointer<UInt8>) throws(CountryDatabaseError) -> IPAddress {
            var decimal: UInt64 = 0, isDecimal = !field.isEmpty && field.count <= 10
            for byte in field where isDecimal {
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { isDecimal = false; break }
                decimal = decimal * 10 + UInt64(byte - UInt8(ascii: "0"))
            }
            if isDecimal {
                guard decimal <= UInt32.max else { throw malformed("\(decimal) is not an IPv4 address") }
                return IPAddress(value: IPAddress.mappedIPv4Prefix | UInt128(decimal))
            }
            if field.count < 46, let address = IPAddress(presentation: field) { return address }
            throw malformed("'\(String(decoding: field.prefix(60), as: UTF8.self))' is not an IP address")
        }

        private static func malformed(_ message: String) -> CountryDatabaseError { CountryDatabaseError(.malformedLine, message) }

        /// `Thu, 25 Jun 2026 04:33:59 GMT` (RFC 1123), read by hand: a date formatter would load the ICU data for one
        /// line.
        static func rfc1123(_ text: String) -> Date? {
            let parts = text.split(separator: " ")
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
                  let year = Int(parts[3]), (1...31).contains(day) else { return nil }
            let time = parts[4].split(separator: ":").compactMap { Int($0) }
            guard time.count == 3, time[0] < 24, time[1] < 60, time[2] < 61 else { return nil }
            let days = CivilDate.days(year: year, month: month + 1, day: day)
            return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + time[0] * 3600 + time[1] * 60 + time[2]))
        }

        func database(source: String) throws(CountryDatabaseError) -> CountryDatabase {
            guard ipv4Ranges + ipv6Ranges > 0 else { throw CountryDatabaseError(.empty, "\(source) holds no range with a country") }
            return CountryDatabase(ipv4: ipv4, ipv6: ipv6,
                                   info: .init(source: source, generated: generated, ipv4Ranges: ipv4Ranges, ipv6Ranges: ipv6Ranges))
        }
    }
}
