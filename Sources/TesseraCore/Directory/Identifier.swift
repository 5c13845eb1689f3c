public import Foundation

/// Object ids: lowercase GUIDs, as Entra uses.
public enum Identifier {
    /// A new random (version 4) GUID in lowercase.
    public static func make() -> String { UUID().uuidString.lowercased() }

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
