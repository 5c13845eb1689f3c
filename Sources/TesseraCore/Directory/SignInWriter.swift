/// Sign-in records on their way to the store. A sign-in or token request hands its record over and goes on; the
/// records reach the store together, one transaction per batch, a moment later or as soon as a batch is full, so that
/// logging every token costs an issuer no write of its own. Whoever reads the log on this node flushes first, so it
/// sees every record this node accepted; other nodes' records appear within ``delay``.
actor SignInWriter {
    /// The most records one transaction writes; an append waits for the write once this many are pending.
    static let batchSize = 256
    /// How long a record may wait for others to share its transaction.
    static let delay: Duration = .milliseconds(100)

    private let store: any DirectoryStore
    private var pending: [StoredObject] = []
    private var scheduled = false
    /// The last batch written or being written: every flush waits for the batches before it, so the writes keep their
    /// order and a reader that flushed has seen them all committed.
    private var last: Task<Void, any Error>?

    init(store: any DirectoryStore) { self.store = store }

    func append(_ record: StoredObject) async throws {
        pending.append(record)
        if pending.count >= Self.batchSize {
            try await flush()
        } else if !scheduled {
            scheduled = true
            Task {
                try? await Task.sleep(for: Self.delay)
                try? await self.flush()
            }
        }
    }

    /// Writes what is pending and waits until it, and every batch before it, is committed. A batch that could not be
    /// written goes back to the queue and the error is thrown: a record is never dropped silently.
    func flush() async throws {
        scheduled = false
        let batch = pending
        pending = []
        let previous = last
        let store = self.store
        let write = Task {
            _ = try? await previous?.value
            guard !batch.isEmpty else { return }
            do {
                try await store.write { tx in for record in batch { try await tx.insert(record) } }
            } catch {
                self.requeue(batch)
                throw error
            }
        }
        last = write
        try await write.value
    }

    private func requeue(_ batch: [StoredObject]) {
        pending.insert(contentsOf: batch, at: 0)
    }
}
