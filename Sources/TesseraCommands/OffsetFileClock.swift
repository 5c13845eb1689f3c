import ArgumentParser
import Foundation
import Synchronization
import TesseraCore

/// The clock a command runs on: the system's, or in a debug build one an end-to-end test can move with
/// `--test-clock-offset-file` (a hidden option that a release build does not have).
struct ClockOptions: ParsableArguments {
    #if DEBUG
    @Option(help: .hidden) var testClockOffsetFile: String?
    #endif

    var clock: any TimeSource {
        #if DEBUG
        if let testClockOffsetFile { return OffsetFileClock(path: testClockOffsetFile) }
        #endif
        return SystemTimeSource()
    }
}

#if DEBUG

/// A clock for end-to-end tests of a running server (debug builds only: `serve --test-clock-offset-file`): the system
/// clock plus a number of seconds a test writes to a file, so it can move the server's time forward (sign-in frequency,
/// expiry) without waiting. The file is read at most every 100 ms.
final class OffsetFileClock: TimeSource {
    private let path: String
    private let state = Mutex<(checkedAt: Date, offset: TimeInterval)>((.distantPast, 0))

    init(path: String) { self.path = path }

    var now: Date {
        let real = Date()
        let offset = state.withLock { state -> TimeInterval in
            if real.timeIntervalSince(state.checkedAt) >= 0.1 {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                state = (real, TimeInterval(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
            }
            return state.offset
        }
        return real.addingTimeInterval(offset)
    }
}
#endif
