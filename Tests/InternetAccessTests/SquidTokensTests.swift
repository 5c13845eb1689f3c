import CLogScan
import Testing
@testable import InternetAccess

/// Squid lines parsed from CLogScan's tokens (`tessera_line_tokens`) against the byte-by-byte loop they replace.
extension BlockScanTests {
    @Test("Squid lines read from CLogScan's tokens give the byte-by-byte loop's entries and errors, at every offset of a 64-byte block, under each instruction set")
    func squidTokensAsTheLoopReadsThem() {
        defer { LogScanner.use(.best) }
        var r = SeededGenerator(state: 31)
        var lines: [[UInt8]] = ScanCorpus.squidAdversarial.map { Array($0.utf8) }
        lines += [Array("1765015200.1".utf8), Array("1765015200.1 ".utf8), Array(" \t1765015200.1\t\t1 a".utf8),
                  Array(repeating: 32, count: 64) + Array("1765015200 1 10.0.0.1 TCP_MISS/200 5 GET claude.ai u p/1.2.3.4".utf8),
                  Array("1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/".utf8) + Array(repeating: 120, count: 63 - 58),
                  Array("1765015200 1 10.0.0.1 TCP_MISS/200 5 GET http://claude.ai/ a b c d e f g h".utf8)]
        let blanks: [[UInt8]] = [[32], [9], [32, 9, 32], Array(repeating: 32, count: 70)]
        for _ in 0..<600 { lines.append(Array(ScanCorpus.squid(&r).utf8)) }
        for _ in 0..<2000 {
            var line = Self.mutated(Array(ScanCorpus.squid(&r).utf8), &r)
            line.insert(contentsOf: blanks.randomElement(using: &r)!, at: Int.random(in: 0...line.count, using: &r))
            lines.append(line)
        }
        for n in 0..<400 { lines.append(Self.mutated(Array(ScanCorpus.squidAdversarial[n % ScanCorpus.squidAdversarial.count].utf8), &r)) }
        var sets = 0
        for instructions in LogScanner.Instructions.allCases where LogScanner.use(instructions) {
            sets += 1
            var wrong: [String] = [], entries = 0
            for (n, line) in lines.enumerated() {
                // Each line at one offset of a block (blanks before it), the first ones at all.
                for shift in n < 40 ? Array(0..<64) : [n % 64] {
                    let shifted = Array(repeating: UInt8(ascii: shift % 3 == 0 ? "\t" : " "), count: shift) + line
                    var parser = SquidParser()
                    let tokens = Self.parsed(shifted, { parser.parse($0, into: &$1) })
                    if tokens?.hasPrefix("entry") == true { entries += 1 }
                    let loop = Self.parsed(shifted, { SquidParser.parseByLoop($0, into: &$1) })
                    // The tokens themselves, all of them, as the loop cuts them.
                    var expected: [Range<Int>] = [], i = 0
                    shifted.withUnsafeBufferPointer { b in
                        while let t = ByteParsing.token(UnsafeMutableBufferPointer(mutating: b), &i) { expected.append(t) }
                        var bounds = [UInt32](repeating: 0, count: 2 * 64)
                        let count = tessera_line_tokens(b.baseAddress, b.count, &bounds, 64)
                        let found = (0..<count).map { Int(bounds[2 * $0])..<Int(bounds[2 * $0 + 1]) }
                        if found != Array(expected.prefix(64)) { wrong.append("tokens of \(String(decoding: shifted, as: UTF8.self).debugDescription): \(found) \(expected)") }
                    }
                    if tokens != loop { wrong.append("\(String(decoding: shifted, as: UTF8.self).debugDescription)\n  tokens \(tokens ?? "")\n  loop   \(loop ?? "")") }
                }
            }
            #expect(wrong.count == 0, "\(instructions): \(wrong.count) differ, first: \(wrong.prefix(3).joined(separator: "\n"))")
            #expect(entries > lines.count / 2, "\(instructions): \(entries)")
        }
        #expect(sets >= 2)
    }
}
