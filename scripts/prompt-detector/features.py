"""The detector's normalisation and features, exactly as Sources/InternetAccess/Prompts/PromptNormalizer.swift and
PromptModel.swift compute them (a Swift test holds both to the same scores on fixed prompts)."""
import math
import unicodedata

CONFUSABLES = {
    0x0430: "a", 0x0435: "e", 0x043E: "o", 0x0440: "p", 0x0441: "c", 0x0443: "y", 0x0445: "x", 0x0456: "i",
    0x0458: "j", 0x0455: "s", 0x0501: "d", 0x04BB: "h", 0x0261: "g", 0x03BF: "o", 0x03B1: "a", 0x03B5: "e",
    0x03B9: "i", 0x03BA: "k", 0x03BD: "v", 0x03C1: "p", 0x03C4: "t", 0x03C5: "u", 0x03C7: "x", 0x043A: "k",
}
LEET = {0x30: "o", 0x31: "i", 0x33: "e", 0x34: "a", 0x35: "s", 0x37: "t"}
CHAR_NGRAMS = (3, 5)
MAX_CHAR_WORD = 40


def deobfuscate(word):
    if not any("a" <= c <= "z" for c in word):
        return word
    return "".join(CONFUSABLES.get(ord(c)) or LEET.get(ord(c)) or c for c in word)


def words(raw):
    text = unicodedata.normalize("NFKC", raw).lower()
    out, word = [], []
    for c in text:
        cat = unicodedata.category(c)
        if cat == "Cf":
            continue
        if cat[0] in "LM" or cat == "Nd":
            word.append(c)
        elif word:
            out.append(deobfuscate("".join(word)))
            word = []
    if word:
        out.append(deobfuscate("".join(word)))
    return out


_memo = {}


def fnv(data):
    h = _memo.get(data)
    if h is None:
        h = 2166136261
        for b in data:
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        if len(_memo) < 4_000_000:
            _memo[data] = h
    return h


def hashes(raw):
    """The 32-bit feature hashes of a prompt, one per occurrence."""
    out, prev = [], None
    lo, hi = CHAR_NGRAMS
    for w in words(raw):
        b = w.encode()
        out.append(fnv(b"w:" + b))
        if prev is not None:
            out.append(fnv(b"b:" + prev + b" " + b))
        s = " " + w[:MAX_CHAR_WORD] + " "
        for n in range(lo, hi + 1):
            for i in range(len(s) - n + 1):
                out.append(fnv(b"c:" + s[i:i + n].encode()))
        prev = b
    return out


def probability(raw, weights, bias, scale, mask):
    """The model's probability with quantised weights (a list of ints), as Swift computes it."""
    hs = hashes(raw)
    total = sum(weights[h & mask] for h in hs)
    z = bias + (scale * total / math.sqrt(len(hs)) if hs else 0.0)
    return 1 / (1 + math.exp(-z))
