public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Object ids: lowercase GUIDs, as Entra uses.
public enum Identifier {
    /// A new random (version 4) GUID in lowercase.
    public static func make() -> String {
        var bytes = randomBytes()
        bytes.6 = 0x40 | (bytes.6 & 0x0F)
        return format(bytes)
    }

    /// Sixteen bytes from the system's CSPRNG, with the variant bits of RFC 9562 set. Foundation's `UUID()` opened, read
    /// and closed `/dev/urandom` for each one, three system calls an id, about 2% of a `POST /users`' CPU with its three
    /// ids (found by scripts/bench-post-users' profile); `SystemRandomNumberGenerator` still made one `getrandom` call
    /// per 8 bytes, two an id. They come from ``RandomWords`` now, the kernel's bytes drawn 4 KiB at a time.
    static func randomBytes() -> uuid_t {
        let (first, second) = randomWords.withLock { $0.two() }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { raw in
            raw.storeBytes(of: first, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: second, toByteOffset: 8, as: UInt64.self)
        }
        bytes.8 = 0x80 | (bytes.8 & 0x3F)
        return bytes
    }

    private static let randomWords = Mutex(RandomWords())

    /// Words from the kernel's CSPRNG read 4 KiB at a time from `/dev/urandom` (held open; the same generator as
    /// `getrandom` once the kernel has seeded it, which it has long before a server runs), each handed out once and
    /// zeroed as it is; `SystemRandomNumberGenerator` where the device cannot be read.
    struct RandomWords: ~Copyable {
        private var words = [UInt64](repeating: 0, count: 512)
        private var next = 512
        private var device: Int32 = -2  // not opened yet

        mutating func two() -> (UInt64, UInt64) {
            if next + 2 > words.count { refill() }
            defer {
                words[next] = 0
                words[next + 1] = 0
                next += 2
            }
            return (words[next], words[next + 1])
        }

        private mutating func refill() {
            if device == -2 { device = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
            let filled = device >= 0 && words.withUnsafeMutableBytes { raw in
                var done = 0
                while done < raw.count {
                    let count = read(device, raw.baseAddress! + done, raw.count - done)
                    if count > 0 {
                        done += count
                    } else if count < 0, errno == EINTR {
                        continue
                    } else {
                        return false
                    }
                }
                return true
            }
            if !filled {
                var generator = SystemRandomNumberGenerator()
                for i in words.indices { words[i] = generator.next() }
            }
            next = 0
        }
    }

    /// The 8-4-4-4-12 lowercase hexadecimal form of sixteen bytes.
    static func format(_ uuid: uuid_t) -> String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    let byte = bytes[i]
                    out[at] = hexDigits[Int(byte >> 4)]
                    out[at + 1] = hexDigits[Int(byte & 0x0F)]
                    at += 2
                }
                return at
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A time-ordered (version 7) GUID: 48 bits of Unix milliseconds, then random bits (74 of them), so ids sort by
    /// creation (for logs read newest first). Directory objects get these too: every index that ends with the id (the
    /// primary key, the kind's, each property index among equal values, a key's or a change's holder) then takes a new
    /// object at its end instead of at a random place, which is what made a bulk write touch a page of every index
    /// for every object (a sync of 100,000 users wrote about 5× the rows' bytes to the WAL).
    public static func makeTimeOrdered(at date: Date) -> String {
        var bytes = randomBytes()
        let ms = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        withUnsafeMutableBytes(of: &bytes) { raw in
            for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: ms >> UInt64(40 - 8 * i)) }
        }
        bytes.6 = 0x70 | (bytes.6 & 0x0F)
        return format(bytes)
    }

    /// True when `text` is an 8-4-4-4-12 hexadecimal GUID.
    public static func isGUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if b != UInt8(ascii: "-") { return false }
            } else if !((b >= 48 && b <= 57) || (b >= 97 && b <= 102) || (b >= 65 && b <= 70)) {
                return false
            }
        }
        return true
    }
}

/// Where "now" comes from: injected so tests and policies can fix time.
public protocol TimeSource: Sendable {
    /// The current instant.
    var now: Date { get }
}

/// The system clock.
public struct SystemTimeSource: TimeSource {
    public init() {}
    public var now: Date { Date() }
}

/// ISO 8601 timestamps as Graph writes them (`2026-11-29T12:00:00Z`).
public enum Timestamp {
    /// Formats an instant with whole seconds, in UTC.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        // 1970-01-01 up to the end of 9999 by hand (a sign-in formats four or five instants; making and running an
        // ISO8601FormatStyle each time was about 0.3% of its CPU); anything else as before.
        guard seconds >= 0, seconds < 253_402_300_800 else { return foundationFormat(date) }
        let whole = Int(seconds.rounded(.down))
        let days = whole / 86_400, time = whole % 86_400
        let (year, month, day) = CivilDate.date(days: days)
        return String(unsafeUninitializedCapacity: 20) { out in
            func put(_ value: Int, _ digits: Int, at index: Int) {
                var v = value
                for i in stride(from: index + digits - 1, through: index, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                }
            }
            put(year, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(month, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(day, 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(time / 3_600, 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put(time / 60 % 60, 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(time % 60, 2, at: 17)
            out[19] = UInt8(ascii: "Z")
            return 20
        }
    }

    /// `format` through Foundation: instants before 1970 or after 9999, and what the hand-written path is tested against.
    static func foundationFormat(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: .gmt))
    }

    /// Parses `2026-11-29T12:00:00Z`, with or without fractional seconds or an offset.
    public static func parse(_ text: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: false).parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        return nil
    }
}
