import TesseraCore

/// Time-ordered record ids (UUID version 7: 48 bits of milliseconds, then random bits) made without Foundation's
/// formatting, which cost an import more than parsing its lines. The random bits come from a generator seeded once
/// from the system's, so an import's ids are distinct from each other and from other imports'.
struct TransactionID {
    private var generator: SeededRandom

    init() {
        var system = SystemRandomNumberGenerator()
        generator = SeededRandom(seed: system.next())
    }

    private mutating func random() -> UInt64 { generator.next() }

    /// `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`, lowercase, ordered by `milliseconds`.
    mutating func next(milliseconds: UInt64) -> String {
        let r1 = random(), r2 = random()
        let high = (milliseconds << 16) | 0x7000 | (r1 & 0x0FFF)
        let low = (r2 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var n = 0
            func put(_ value: UInt64, nibbles: Int) {
                for k in stride(from: nibbles - 1, through: 0, by: -1) {
                    buffer[n] = digits.utf8Start[Int((value >> UInt64(4 * k)) & 0xF)]
                    n += 1
                }
            }
            func dash() { buffer[n] = UInt8(ascii: "-"); n += 1 }
            put(high >> 32, nibbles: 8); dash()
            put((high >> 16) & 0xFFFF, nibbles: 4); dash()
            put(high & 0xFFFF, nibbles: 4); dash()
            put(low >> 48, nibbles: 4); dash()
            put(low & 0xFFFF_FFFF_FFFF, nibbles: 12)
            return n
        }
    }
}
