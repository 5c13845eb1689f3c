import Testing
@testable import InternetAccess

/// CEF lines parsed from CLogScan's pairs (`CEFParser.parsePairs`) against the byte-by-byte loop they replace.
extension BlockScanTests {
    /// `line` mutated: bytes that end or start keys, values and header fields (`=`, spaces, `|`, `C`, `CEF:`, a
    /// backslash, NUL) put in, bytes taken out, or a stretch repeated.
    static func mutated(_ line: [UInt8], _ r: inout SeededGenerator) -> [UInt8] {
        var line = line
        let pieces: [[UInt8]] = [[61], [32], [32, 32], [61, 61], [124], [67], Array("CEF:".utf8), [92], [0], Array(" k=".utf8),
                                 Array("dhost=claude.ai".utf8), Array("=dst=1.2.3.4 ".utf8)]
        for _ in 0..<Int.random(in: 1...4, using: &r) {
            let at = Int.random(in: 0...line.count, using: &r)
            switch Int.random(in: 0..<4, using: &r) {
            case 0, 1: line.insert(contentsOf: pieces.randomElement(using: &r)!, at: at)
            case 2: if at < line.count { line.removeSubrange(at..<min(line.count, at + Int.random(in: 1...6, using: &r))) }
            default:
                let end = min(line.count, at + Int.random(in: 1...70, using: &r))
                line.insert(contentsOf: line[at..<end], at: at)
            }
        }
        return line
    }

    /// The outcome and entry of one parse of a copy of `line` (parsers unescape in place).
    static func parsed(_ line: [UInt8], _ parse: (UnsafeMutableBufferPointer<UInt8>, inout LogEntry) -> ParseOutcome?) -> String? {
        var copy = line
        return copy.withUnsafeMutableBufferPointer { p in
            var e = LogEntry()
            guard let outcome = parse(p, &e) else { return nil }
            return "\(outcome) \(e)"
        }
    }

    @Test("CEF lines read from CLogScan's pairs give the byte-by-byte loop's entries and errors, at every offset of a 64-byte block, under each instruction set")
    func cefPairsAsTheLoopReadsThem() {
        defer { LogScanner.use(.best) }
        var r = SeededGenerator(state: 29)
        var lines: [[UInt8]] = ScanCorpus.cefAdversarial.map { Array($0.utf8) }
        lines += [Array(repeating: 32, count: 64) + Array("CEF:0|a|b|c|d|e|f|g=h".utf8),
                  Array("CEF:0|a|b|c|d|e|f|".utf8) + Array(repeating: 61, count: 70) + Array(" dst=1.2.3.4".utf8),
                  Array("CEF:0|a|b|c|d|e|f|".utf8) + Array(repeating: 32, count: 130) + Array("dst=1.2.3.4  ".utf8),
                  // More pairs than the C finder takes: the loop reads the line.
                  Array("CEF:0|a|b|c|d|e|f|".utf8) + Array((0..<70).map { "k\($0)=v" }.joined(separator: " ").utf8) + Array(" dhost=poe.com".utf8)]
        for _ in 0..<600 { lines.append(Array(ScanCorpus.cef(&r).utf8)) }
        for _ in 0..<2000 { lines.append(Self.mutated(Array(ScanCorpus.cef(&r).utf8), &r)) }
        for n in 0..<400 { lines.append(Self.mutated(Array(ScanCorpus.cefAdversarial[n % ScanCorpus.cefAdversarial.count].utf8), &r)) }
        var sets = 0
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            sets += 1
            var wrong: [String] = [], taken = 0, entries = 0
            for (n, line) in lines.enumerated() {
                // Each line at one offset of a block (a syslog header of 0 to 63 bytes before it), the first ones at all.
                for shift in n < 40 ? Array(0..<64) : [n % 64] {
                    let shifted = Array("<134>Dec  6 10:00:00 fw ".utf8.prefix(shift)) + Array(repeating: UInt8(ascii: "x"), count: max(0, shift - 24)) + line
                    guard let pairs = Self.parsed(shifted, { CEFParser.parsePairs($0, into: &$1) }) else {
                        #expect(shifted.contains(92) || shifted.count > 64 * 6, "\(instructions): only escapes and many pairs go to the loop")
                        continue
                    }
                    taken += 1
                    if pairs.hasPrefix("entry") { entries += 1 }
                    let loop = Self.parsed(shifted, { CEFParser.parseByLoop($0, into: &$1) })
                    if pairs != loop { wrong.append("\(String(decoding: shifted, as: UTF8.self).debugDescription)\n  pairs \(pairs)\n  loop  \(loop ?? "")") }
                }
            }
            #expect(wrong.count == 0, "\(instructions): \(wrong.count) differ, first: \(wrong.prefix(3).joined(separator: "\n"))")
            // Most lines (all without a backslash) are read from the pairs, and most of those are requests.
            #expect(taken > lines.count * 3 / 4, "\(instructions): \(taken)")
            #expect(entries > taken / 2, "\(instructions): \(entries)")
        }
        #expect(sets >= 2)
    }
}
