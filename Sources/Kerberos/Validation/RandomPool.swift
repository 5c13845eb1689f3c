import Synchronization

import CKerberosAES

/// Random bytes from the kernel's CSPRNG drawn 4 KiB at a time and handed out once each. swift-crypto's
/// `SymmetricKey(size:)` fills its bytes from `SystemRandomNumberGenerator`, a `getrandom` system call per 8 bytes:
/// two a confounder, 8% of a validation's time.
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

    /// `count` bytes from the kernel in one call.
    private static func draw(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            precondition(tessera_krb_random(buffer.baseAddress!, count) == 0, "the kernel refused random bytes")
            initialized = count
        }
    }
}
