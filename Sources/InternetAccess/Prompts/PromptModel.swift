public import Foundation
import TesseraCore

/// The detector's linear model: logistic regression over hashed word unigrams, word bigrams and character 3–5-grams
/// of each word, trained offline by `scripts/prompt-detector/train.py` and shipped as `prompt-model.bin`.
///
/// The file is a text line `tessera-prompt-model 1`, a JSON header line (bucket count, bias, the weights' scale,
/// the n-gram sizes, what it was trained on, a checksum of the weights), then one signed byte per bucket. A file that
/// is not exactly that is refused with the reason, so a damaged model stops Tessera at start instead of scoring badly.
public struct PromptModel: Sendable {
    /// The header line every model file starts with.
    static let magic = "tessera-prompt-model 1"

    /// What the model was trained on, as the training script recorded it.
    public let trainedOn: String
    let bias: Double
    let scale: Double
    let charGrams: ClosedRange<Int>
    let maxCharWord: Int
    let mask: UInt32
    let weights: [Int8]

    /// The model shipped with Tessera.
    public static func bundled() throws(PromptError) -> PromptModel {
        guard let url = bundledURL else {
            throw PromptError(.invalidModel, "the bundled file prompt-model.bin is missing")
        }
        return try PromptModel(contentsOf: url)
    }

    /// Where the shipped model is.
    static var bundledURL: URL? { Bundle.module.url(forResource: "prompt-model", withExtension: "bin") }

    /// Reads a model file.
    public init(contentsOf url: URL) throws(PromptError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PromptError(.invalidModel, "\(url.path): cannot be read (\(error.localizedDescription))")
        }
        do { try self.init(bytes: [UInt8](data)) } catch {
            throw PromptError(.invalidModel, "\(url.lastPathComponent): \(error.message)")
        }
    }

    /// Reads a model from its bytes.
    public init(bytes: [UInt8]) throws(PromptError) {
        func fail(_ why: String) -> PromptError { PromptError(.invalidModel, why) }
        guard let first = bytes.firstIndex(of: 0x0A), String(decoding: bytes[..<first], as: UTF8.self) == Self.magic else {
            throw fail("not a Tessera prompt model (the first line must be '\(Self.magic)')")
        }
        guard let second = bytes[(first + 1)...].firstIndex(of: 0x0A) else { throw fail("the header line is missing") }
        let header: JSONValue
        do { header = try JSONParser.parse(Array(bytes[(first + 1)..<second])) } catch {
            throw fail("the header is not JSON: \(error)")
        }
        guard let buckets = header["buckets"]?.intValue, buckets >= 1 << 10, buckets <= 1 << 24, buckets & (buckets - 1) == 0,
              let bias = header["bias"]?.doubleValue, bias.isFinite,
              let scale = header["scale"]?.doubleValue, scale.isFinite, scale > 0,
              let grams = header["charNgrams"]?.arrayValue, grams.count == 2,
              let low = grams[0].intValue, let high = grams[1].intValue, low >= 1, low <= high, high <= 8,
              let maxCharWord = header["maxCharWord"]?.intValue, maxCharWord >= high,
              let checksum = header["checksum"]?.stringValue
        else { throw fail("the header lacks buckets (a power of two), bias, scale, charNgrams, maxCharWord or checksum") }
        let payload = bytes[(second + 1)...]
        guard payload.count == buckets else {
            throw fail("\(payload.count) weight bytes for \(buckets) buckets (truncated or padded)")
        }
        var sum: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in payload { sum = (sum ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        guard String(sum, radix: 16) == checksum else { throw fail("the weights do not match the header's checksum") }
        self.trainedOn = header["trainedOn"]?.stringValue ?? ""
        self.bias = bias; self.scale = scale
        self.charGrams = Int(low)...Int(high); self.maxCharWord = Int(maxCharWord)
        self.mask = UInt32(buckets - 1)
        self.weights = payload.map { Int8(bitPattern: $0) }
    }

    /// The probability that `prompt` is an injection or a jailbreak.
    public func probability(_ prompt: NormalizedPrompt) -> Double {
        var total: Int64 = 0, count = 0
        weights.withUnsafeBufferPointer { w in
            func add(_ h: UInt32) { total += Int64(w[Int(h & mask)]); count += 1 }
            var previous: [UInt8] = [], utf8: [UInt8] = []
            // " word " (its first `maxCharWord` scalars) and where each of its scalars ends, for the character n-grams.
            var padded: [UInt8] = [], ends: [Int] = []
            for word in prompt.words {
                utf8.removeAll(keepingCapacity: true)
                utf8.append(contentsOf: word.utf8)
                add(FNV.hash(FNV.word, utf8))
                if !previous.isEmpty { add(FNV.hash(FNV.hash(FNV.hash(FNV.bigram, previous), [0x20]), utf8)) }
                padded.removeAll(keepingCapacity: true)
                ends.removeAll(keepingCapacity: true)
                padded.append(0x20)
                ends.append(1)
                var scalars = 0
                for byte in utf8 {
                    if byte & 0xC0 != 0x80 {  // a scalar starts
                        if scalars == maxCharWord { break }
                        if scalars > 0 { ends.append(padded.count) }
                        scalars += 1
                    }
                    padded.append(byte)
                }
                if scalars > 0 { ends.append(padded.count) }
                padded.append(0x20)
                ends.append(padded.count)
                for n in charGrams where n <= ends.count {
                    for i in 0...(ends.count - n) {
                        add(FNV.hash(FNV.characters, padded[(i == 0 ? 0 : ends[i - 1])..<ends[i + n - 1]]))
                    }
                }
                swap(&previous, &utf8)
            }
        }
        let z = bias + (count == 0 ? 0 : scale * Double(total) / Double(count).squareRoot())
        return 1 / (1 + Foundation.exp(-z))
    }
}

/// FNV-1a, 32 bits: the feature hash the training script uses too.
enum FNV {
    /// The hash states after each feature kind's prefix.
    static let word = start("w:"), bigram = start("b:"), characters = start("c:")

    static func start(_ prefix: StaticString) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        prefix.withUTF8Buffer { for b in $0 { h = (h ^ UInt32(b)) &* 16_777_619 } }
        return h
    }

    static func hash(_ seed: UInt32, _ bytes: some Sequence<UInt8>) -> UInt32 {
        var h = seed
        for b in bytes { h = (h ^ UInt32(b)) &* 16_777_619 }
        return h
    }
}
