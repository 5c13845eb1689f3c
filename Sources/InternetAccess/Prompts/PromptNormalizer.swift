import Foundation

/// A prompt as the rules and the model read it: compatibility-normalised (NFKC: full-width letters, ligatures and
/// mathematical alphabets become plain letters), lower-cased, without invisible format characters (zero-width spaces
/// and joiners, soft hyphens, bidirectional controls), with look-alike Cyrillic and Greek letters inside Latin words
/// mapped to Latin and digits inside words read as the letters they imitate (`1gn0re` is `ignore`).
///
/// `scripts/prompt-detector/features.py` does exactly this in Python for training; a test holds the two to the same
/// scores.
public struct NormalizedPrompt: Sendable, Hashable {
    /// The normalised text (format characters removed), for phrase rules that look at punctuation.
    public var text: String
    /// The words: runs of letters, combining marks and decimal digits, after the look-alike and digit mappings.
    public var words: [String]

    /// Normalises `raw`.
    public init(_ raw: String) {
        // NFKC leaves ASCII as it is; skipping Foundation's normalisation for it is the common case's fast path.
        let ascii = raw.utf8.allSatisfy { $0 < 0x80 }
        let lowered = (ascii ? raw : raw.precomposedStringWithCompatibilityMapping).lowercased()
        var kept = String.UnicodeScalarView()
        var words: [String] = []
        var word = String.UnicodeScalarView()
        func endWord() {
            guard !word.isEmpty else { return }
            words.append(Self.deobfuscate(word))
            word = String.UnicodeScalarView()
        }
        for scalar in lowered.unicodeScalars {
            let category = scalar.properties.generalCategory
            if category == .format { continue }
            kept.append(scalar)
            if Self.isWordScalar(category) { word.append(scalar) } else { endWord() }
        }
        endWord()
        text = String(kept)
        self.words = words
    }

    /// Letters (L*), marks (M*) and decimal digits (Nd): Python's `unicodedata.category(c)[0] in "LM" or == "Nd"`.
    static func isWordScalar(_ category: Unicode.GeneralCategory) -> Bool {
        switch category {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber:
            true
        default: false
        }
    }

    /// Maps look-alikes and digits to Latin letters, but only in a word that already has a Latin letter: a Russian
    /// or Greek word stays as it is, `pаypal` with a Cyrillic `а` becomes `paypal`, and `2024` stays a number.
    static func deobfuscate(_ word: String.UnicodeScalarView) -> String {
        guard word.contains(where: { $0.value >= 0x61 && $0.value <= 0x7A }) else { return String(word) }
        var out = String.UnicodeScalarView()
        for scalar in word {
            if let latin = confusables[scalar.value] ?? leet[scalar.value] { out.append(latin) } else { out.append(scalar) }
        }
        return String(out)
    }

    /// Lower-case Cyrillic and Greek letters that look like Latin ones (from Unicode's confusables.txt).
    static let confusables: [UInt32: Unicode.Scalar] = [
        0x0430: "a", 0x0435: "e", 0x043E: "o", 0x0440: "p", 0x0441: "c", 0x0443: "y", 0x0445: "x", 0x0456: "i",
        0x0458: "j", 0x0455: "s", 0x0501: "d", 0x04BB: "h", 0x0261: "g", 0x03BF: "o", 0x03B1: "a", 0x03B5: "e",
        0x03B9: "i", 0x03BA: "k", 0x03BD: "v", 0x03C1: "p", 0x03C4: "t", 0x03C5: "u", 0x03C7: "x", 0x043A: "k",
    ]

    /// Digits that stand for letters in "leet" spelling.
    static let leet: [UInt32: Unicode.Scalar] = [0x30: "o", 0x31: "i", 0x33: "e", 0x34: "a", 0x35: "s", 0x37: "t"]
}
