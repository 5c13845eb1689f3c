import Logging

/// Metadata whose name says it holds a credential (an `Authorization` header, a cookie, a token, a password, an
/// assertion, a PKCE verifier) is written as `[redacted]` by both of `serve`'s log formats, whoever logged it, at any
/// depth of a dictionary value.
enum LogRedaction {
    static let sensitive = ["authorization", "cookie", "secret", "password", "passcode", "token", "assertion", "code_verifier"]
    static let marker = "[redacted]"

    static func isSensitive(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return sensitive.contains { lowered.contains($0) }
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
