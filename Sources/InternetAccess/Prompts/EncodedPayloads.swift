import Foundation

/// The texts an attacker hides an instruction in, decoded so the phrase rules can read them: base64 (and base64url)
/// runs, hexadecimal runs, 8-bit binary groups, percent-encoding, `\uXXXX` escapes, Unicode tag characters ("ASCII
/// smuggling", invisible). Each is cheap to undo; a decoding that is not mostly printable text is dropped. ROT13 and
/// reversed text are read from the normalised words (``InjectionRules``); Morse, Ascii85 and base32 are not decoded.
enum EncodedPayloads {
    static let minimumRun = 24
    static let maximumRuns = 16

    /// The decoded texts found in `text`.
    static func decoded(in text: String) -> [String] {
        var out: [String] = []
        let bytes = Array(text.utf8)
        out += runs(in: bytes, minimum: minimumRun, isMember: isBase64).compactMap(base64)
        out += runs(in: bytes, minimum: 16, isMember: isHex).compactMap(hex)
        if let bits = binary(bytes) { out.append(bits) }
        if bytes.count(where: { $0 == UInt8(ascii: "%") }) >= 3, let plain = text.removingPercentEncoding, plain != text {
            out.append(plain)
        }
        if let escaped = unicodeEscapes(text) { out.append(escaped) }
        let tags = String(String.UnicodeScalarView(text.unicodeScalars.compactMap { s in
            (0xE0020...0xE007E).contains(s.value) ? Unicode.Scalar(s.value - 0xE0000) : nil
        }))
        if tags.count >= 8 { out.append(tags) }
        return out.filter { $0 != text }
    }

    static func isBase64(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=")
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    static func isAlphanumeric(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }

    static func isHex(_ b: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
    }

    /// Maximal runs of member bytes at least `minimum` long (at most ``maximumRuns``).
    static func runs(in bytes: [UInt8], minimum: Int, isMember: (UInt8) -> Bool) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        for i in 0...bytes.count where i == bytes.count || !isMember(bytes[i]) {
            if i - start >= minimum, out.count < maximumRuns { out.append(bytes[start..<i]) }
            start = i + 1
        }
        return out
    }

    static func base64(_ run: ArraySlice<UInt8>) -> String? {
        var padded = run.compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "="): nil
            case UInt8(ascii: "-"): UInt8(ascii: "+")
            case UInt8(ascii: "_"): UInt8(ascii: "/")
            default: byte
            }
        }
        while padded.count % 4 != 0 { padded.append(UInt8(ascii: "=")) }
        guard let data = Data(base64Encoded: Data(padded)) else { return nil }
        return printable([UInt8](data))
    }

    static func hex(_ run: ArraySlice<UInt8>) -> String? {
        func nibble(_ c: UInt8) -> UInt8 { c <= UInt8(ascii: "9") ? c - 48 : (c | 0x20) - 87 }
        let digits = Array(run.prefix(run.count & ~1))
        return printable(stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) })
    }

    /// Groups of eight 0/1 digits separated by spaces (at least four groups).
    static func binary(_ bytes: [UInt8]) -> String? {
        var out: [UInt8] = [], group: UInt8 = 0, bits = 0
        for b in bytes {
            if b == UInt8(ascii: "0") || b == UInt8(ascii: "1") {
                group = group << 1 | (b - 48); bits += 1
                if bits > 8 { return out.count >= 4 ? printable(out) : nil }
            } else if bits == 8 {
                out.append(group); group = 0; bits = 0
            } else if bits > 0 {
                group = 0; bits = 0
            }
        }
        if bits == 8 { out.append(group) }
        return out.count >= 4 ? printable(out) : nil
    }

    static func unicodeEscapes(_ text: String) -> String? {
        guard text.contains("\\u") else { return nil }
        var out = String.UnicodeScalarView(), count = 0
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "\\", i + 5 < scalars.count, scalars[i + 1] == "u",
               let v = UInt32(String(String.UnicodeScalarView(scalars[(i + 2)..<(i + 6)])), radix: 16), let s = Unicode.Scalar(v) {
                out.append(s); count += 1; i += 6
            } else {
                out.append(scalars[i]); i += 1
            }
        }
        return count >= 4 ? String(out) : nil
    }

    /// The bytes as text when they are UTF-8 and at least 90% printable.
    static func printable(_ bytes: [UInt8]) -> String? {
        guard let text = String(validating: bytes, as: UTF8.self), !text.isEmpty else { return nil }
        let scalars = text.unicodeScalars
        let controls = scalars.count { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }
        return controls * 10 <= scalars.count ? text : nil
    }
}
