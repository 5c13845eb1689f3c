import Crypto
import Synchronization

/// Random bytes from BoringSSL's CSPRNG (through swift-crypto) drawn 4 KiB at a time and handed out once each: every
/// draw costs a `getrandom` system call (BoringSSL mixes fresh entropy from the kernel into each call), which for a
/// 16-byte confounder per AP-REP was 8% of a validation's time.
final class RandomPool: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var used = 0
    }
    private let state = Mutex(State())
    private let refill: Int

    init(refill: Int = 4096) {
        self.refill = refill
    }

    /// `count` bytes no other call has been or will be given.
    func bytes(_ count: Int) -> [UInt8] {
        guard count <= refill else { return Self.draw(count) }
        return state.withLock { state in
            if state.bytes.count - state.used < count {
                state.bytes = Self.draw(refill)
                state.used = 0
            }
            defer {
                // What was handed out is not kept.
                for i in state.used..<(state.used + count) { state.bytes[i] = 0 }
                state.used += count
            }
            return Array(state.bytes[state.used..<(state.used + count)])
        }
    }

    private static func draw(_ count: Int) -> [UInt8] {
        SymmetricKey(size: SymmetricKeySize(bitCount: count * 8)).withUnsafeBytes { Array($0) }
    }
}
