import Logging

/// Metadata whose name says it holds a credential (an `Authorization` header, a cookie, a token, a password, an
/// assertion, a PKCE verifier) is written as `[redacted]` by both of `serve`'s log formats, whoever logged it, at any
/// depth of a dictionary value.
enum LogRedaction {
    static let sensitive = ["authorization", "cookie", "secret", "password", "passcode", "token", "assertion", "code_verifier"]
    static let marker = "[redacted]"

    /// Whether `key` contains one of `sensitive`, ASCII letters compared without case. Byte by byte: it runs for every
    /// member of every line (seven on a request's line), and lowercasing the key and `StringProtocol.contains` for
    /// each name (Foundation's, through NSString on Linux) cost a request's line about 10% more CPU than writing it.
    static func isSensitive(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { bytes in
            for needle in needles where needle.count <= bytes.count {
                var start = 0
                while start + needle.count <= bytes.count {
                    var matched = 0
                    while matched < needle.count, lowercased(bytes[start + matched]) == needle[matched] { matched += 1 }
                    if matched == needle.count { return true }
                    start += 1
                }
            }
            return false
        }
    }

    private static let needles: [[UInt8]] = sensitive.map { Array($0.utf8) }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `value` under `key` as it may be written: the marker for a sensitive key, a dictionary's sensitive members
    /// replaced (inside arrays too), anything else unchanged.
    static func redacted(_ value: Logger.Metadata.Value, key: String) -> Logger.Metadata.Value {
        isSensitive(key) ? .string(marker) : redacted(value)
    }

    static func redacted(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string, .stringConvertible: value
        case .array(let items): .array(items.map { redacted($0) })
        case .dictionary(let entries): .dictionary(Dictionary(uniqueKeysWithValues: entries.map { ($0.key, redacted($0.value, key: $0.key)) }))
        }
    }
}
