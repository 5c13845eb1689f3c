public import Foundation

/// Object ids: lowercase GUIDs, as Entra uses.
public enum Identifier {
    /// A new random (version 4) GUID in lowercase.
    public static func make() -> String { UUID().uuidString.lowercased() }

    /// A time-ordered (version 7) GUID: 48 bits of Unix milliseconds, then random bits, so ids sort by creation
    /// (for logs read newest first).
    public static func makeTimeOrdered(at date: Date) -> String {
        var bytes = withUnsafeBytes(of: UUID().uuid) { Array($0) }
        let ms = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: ms >> UInt64(40 - 8 * i)) }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let c = Array(hex)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
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
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: .gmt))
    }

    /// Parses `2026-11-29T12:00:00Z`, with or without fractional seconds or an offset.
    public static func parse(_ text: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: false).parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        return nil
    }
}
