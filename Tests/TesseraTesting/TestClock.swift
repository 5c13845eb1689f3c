public import Foundation
import Synchronization
public import TesseraCore

/// The clock every test runs on: it starts at one fixed instant and moves only when a test moves it.
///
/// The instant is ``TestClock/start``: `TESSERA_TEST_CLOCK_START` (ISO 8601, e.g. `2026-12-31T23:30:00Z`) when
/// set, so the whole suite can be run just before midnight or at a month's or a year's end, else a fixed noon.
/// A test never reads the wall clock: what it checks follows from the start and the moves it makes.
public final class TestClock: TimeSource {
    /// Where every test clock starts.
    public static let start: Date = startInstant(ProcessInfo.processInfo.environment["TESSERA_TEST_CLOCK_START"])

    /// The instant when nothing is injected: a weekday noon in UTC, far from any day, month or year boundary.
    public static let defaultStart = Date(timeIntervalSince1970: 1_795_089_600)  // 2026-11-19T12:00:00Z, a Thursday

    private let instant: Mutex<Date>

    /// A clock at `start` (by default ``TestClock/start``).
    public init(start: Date = TestClock.start) { instant = Mutex(start) }

    /// The clock's current instant.
    public var now: Date { instant.withLock { $0 } }

    /// Moves the clock forward (or back, with a negative interval).
    public func advance(_ seconds: TimeInterval) { instant.withLock { $0 = $0.addingTimeInterval(seconds) } }

    /// Moves the clock by whole days.
    public func advance(days: Double) { advance(days * 86_400) }

    /// Moves the clock to the next whole multiple of `period` since 1970 plus `offset` (with a day: the next UTC
    /// midnight), for tests whose outcome depends on where in an hour or a day they run: they say where, and
    /// pass at any start.
    public func advance(toNext period: TimeInterval, plus offset: TimeInterval = 0) {
        instant.withLock { now in
            let next = (now.timeIntervalSince1970 / period).rounded(.down) * period + period
            now = Date(timeIntervalSince1970: next + offset)
        }
    }

    /// Parses the injected start; a value that is not an ISO 8601 instant stops the tests at once, loudly,
    /// rather than running them at an instant nobody chose.
    static func startInstant(_ text: String?) -> Date {
        guard let text, !text.isEmpty else { return defaultStart }
        guard let date = Timestamp.parse(text) else {
            fatalError("TESSERA_TEST_CLOCK_START=\(text) is not an ISO 8601 instant such as 2026-12-31T23:30:00Z")
        }
        return date
    }
}
