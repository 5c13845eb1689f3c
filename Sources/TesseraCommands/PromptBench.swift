import ArgumentParser
import Foundation
import InternetAccess
import TesseraCore

/// The prompt-injection detector over a labelled JSONL file (`{"text": …}` a line; other members are copied to the
/// output): one verdict line per prompt for `scripts/prompt-detector/evaluate`, then the speed on one thread — prompts
/// per second over the file, and the latency (p50/p99) and rate for prompts of exactly 10,000 characters, the most a
/// prompt is inspected. Run it under `taskset -c 0` for a per-core figure.
struct PromptBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompts", abstract: "Score prompts with the injection detector; measure its speed.")
    @Option(help: "The prompts, one JSON object with a \"text\" member a line.") var dataset: String
    @Option(help: "Where to write one verdict a line (default: no verdicts, only the speed).") var output: String?
    @Option(help: "10,000-character prompts timed for the latency figures.") var longPrompts = 2_000

    func run() async throws {
        let detector = try PromptDetector.bundled()
        let lines = try String(contentsOfFile: dataset, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        var records: [[String: JSONValue]] = []
        for (number, line) in lines.enumerated() {
            guard case .object(let record) = try? JSONParser.parse(String(line)), record["text"]?.stringValue != nil else {
                throw ValidationError("\(dataset):\(number + 1): not a JSON object with a \"text\" string")
            }
            records.append(record)
        }
        let prompts = records.map { PromptExtraction.Prompt(parts: [$0["text"]?.stringValue ?? ""]) }

        var out: [UInt8] = []
        let start = ContinuousClock.now
        var assessments: [PromptDetector.Assessment] = []
        assessments.reserveCapacity(prompts.count)
        for prompt in prompts { assessments.append(detector.assess(prompt.text)) }
        let elapsed = ContinuousClock.now - start
        if let output {
            for (record, a) in zip(records, assessments) {
                var line = record
                line["score"] = .double(a.score); line["modelScore"] = .double(a.modelScore)
                line["verdict"] = .string(a.verdict.rawValue); line["family"] = .string(a.family.rawValue)
                out += JSONValue.object(line).serializedBytes
                out.append(0x0A)
            }
            try Data(out).write(to: URL(fileURLWithPath: output))
        }
        let chars = prompts.reduce(0) { $0 + $1.text.count }
        print(String(format: "%d prompts (mean %.0f characters) in %.3f s: %.0f prompts/s on one thread",
                     prompts.count, Double(chars) / Double(max(prompts.count, 1)), elapsed.seconds,
                     Double(prompts.count) / elapsed.seconds))

        // Prompts of exactly 10,000 characters, made by joining the file's prompts in turn.
        let all = prompts.map(\.text).joined(separator: "\n")
        guard all.count >= PromptExtraction.Prompt.limit else { return }
        var long: [String] = []
        var cursor = all.startIndex
        for _ in 0..<32 {
            var text = ""
            while text.count < PromptExtraction.Prompt.limit {
                if cursor == all.endIndex { cursor = all.startIndex }
                let end = all.index(cursor, offsetBy: PromptExtraction.Prompt.limit - text.count, limitedBy: all.endIndex) ?? all.endIndex
                text += all[cursor..<end]
                cursor = end
            }
            long.append(text)
        }
        var latencies: [Duration] = []
        latencies.reserveCapacity(longPrompts)
        for i in 0..<longPrompts {
            let t = ContinuousClock.now
            _ = detector.assess(long[i % long.count])
            latencies.append(ContinuousClock.now - t)
        }
        latencies.sort()
        let total = latencies.reduce(Duration.zero, +)
        func ms(_ d: Duration) -> Double { d.seconds * 1000 }
        print(String(format: "10,000-character prompts: %d timed, p50 %.2f ms, p99 %.2f ms, %.0f prompts/s on one thread",
                     longPrompts, ms(latencies[latencies.count / 2]), ms(latencies[latencies.count * 99 / 100]),
                     Double(longPrompts) / total.seconds))
    }
}
