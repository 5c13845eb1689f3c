public import Foundation

/// Base64 runs long enough to hide an instruction (24 characters or more), decoded when they are mostly printable
/// text: the encodings attackers use to slip a phrase past filters are cheap to undo.
enum Base64Runs {
    static let minimumLength = 24
    static let maximumRuns = 16

    static func decoded(in text: String) -> [String] {
        var out: [String] = []
        var run: [UInt8] = []
        func flush() {
            defer { run.removeAll(keepingCapacity: true) }
            guard run.count >= minimumLength, out.count < maximumRuns else { return }
            var padded = run.compactMap { byte -> UInt8? in
                switch byte {
                case UInt8(ascii: "="): nil
                case UInt8(ascii: "-"): UInt8(ascii: "+")
                case UInt8(ascii: "_"): UInt8(ascii: "/")
                default: byte
                }
            }
            while padded.count % 4 != 0 { padded.append(UInt8(ascii: "=")) }
            guard let data = Data(base64Encoded: Data(padded)), let decoded = String(data: data, encoding: .utf8) else { return }
            let printable = decoded.unicodeScalars.filter { $0.properties.generalCategory != .control || $0 == "\n" }.count
            if printable * 10 >= decoded.unicodeScalars.count * 9 { out.append(decoded) }
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "-"), UInt8(ascii: "_"):
                run.append(byte)
            default: flush()
            }
        }
        flush()
        return out
    }
}
