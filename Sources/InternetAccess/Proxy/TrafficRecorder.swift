public import TesseraCore
import Synchronization

/// Writes the proxy's traffic records in batches: records are queued without waiting (from the event loop) and
/// written every half second, or sooner when a batch fills, in one transaction. The queue is bounded: past
/// ``capacity`` pending records the newest are counted as dropped rather than growing memory when the store is slow.
public final class TrafficRecorder: Sendable {
    private let pending = Mutex<[StoredObject]>([])
    private let dropped = Atomic<Int>(0)
    private let written = Atomic<Int>(0)
    private let store: any DirectoryStore
    public let capacity: Int
    static let batchSize = 500

    public init(store: any DirectoryStore, capacity: Int = 100_000) {
        self.store = store
        self.capacity = capacity
    }

    /// Queues one record.
    public func submit(_ record: TrafficRecord) { enqueue(record.object) }

    /// Queues one inspected prompt's insight.
    public func submit(_ insight: GenerativeAIInsight) { enqueue(insight.object) }

    private func enqueue(_ object: StoredObject) {
        let full = pending.withLock { queue in
            guard queue.count < capacity else { return true }
            queue.append(object)
            return false
        }
        if full { dropped.add(1, ordering: .relaxed) }
    }

    /// Records written and dropped so far.
    public var counts: (written: Int, dropped: Int) { (written.load(ordering: .relaxed), dropped.load(ordering: .relaxed)) }

    /// Writes what is queued; returns how many records.
    @discardableResult
    public func flush() async throws -> Int {
        var total = 0
        while true {
            let batch = pending.withLock { queue -> [StoredObject] in
                let take = Array(queue.prefix(Self.batchSize))
                queue.removeFirst(take.count)
                return take
            }
            guard !batch.isEmpty else { return total }
            try await store.write { tx in for record in batch { try await tx.insert(record) } }
            written.add(batch.count, ordering: .relaxed)
            total += batch.count
        }
    }

    /// Flushes every `interval` until cancelled, then once more (in a task of its own, so a store that honours
    /// cancellation still takes what is queued at shutdown).
    public func run(interval: Duration = .milliseconds(500), onError: @escaping @Sendable (any Error) -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            do { try await flush() } catch { onError(error) }
        }
        await Task { do { try await flush() } catch { onError(error) } }.value
    }
}
