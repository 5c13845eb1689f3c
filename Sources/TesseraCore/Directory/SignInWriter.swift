/// Sign-in records on their way to the store. A sign-in or token request hands its record over and goes on; the
/// records reach the store together, one transaction per batch, a moment later or as soon as a batch is full, so that
/// logging every token costs an issuer no write of its own. Whoever reads the log on this node flushes first, so it
/// sees every record this node accepted; other nodes' records appear within ``delay``.
///
/// Credential records that may wait the same way ride along in the same batches: a session's first sign-in to an app
/// (the record front- and back-channel logout read) is queued by `/authorize` instead of written in a transaction of
/// its own, and whoever reads those records (logout, revocation) flushes first. A queued credential record that is
/// already stored (same id or handle: another request or node recorded it first) is left as it is. In the SQL store a
/// batch is one statement for its objects and one for its credential records (``RecordBatchInserting``).
actor SignInWriter {
    /// The most records one transaction writes; an append waits for the write once this many are pending.
    static let batchSize = 256
    /// How long a record may wait for others to share its transaction.
    static let delay: Duration = .milliseconds(100)

    private let store: any DirectoryStore
    private var pending: [StoredObject] = []
    private var pendingCredentials: [CredentialRow] = []
    private var scheduled = false
    /// False while a test holds every record until an explicit flush (`DirectoryService.holdSignInWritesUntilFlushed`).
    private var timed = true
    /// The last batch written or being written: every flush waits for the batches before it, so the writes keep their
    /// order and a reader that flushed has seen them all committed.
    private var last: Task<Void, any Error>?

    init(store: any DirectoryStore) { self.store = store }

    func append(_ record: StoredObject) async throws {
        pending.append(record)
        try await queued()
    }

    /// Queues a credential record to be inserted with the next batch.
    func append(credential row: CredentialRow) async throws {
        pendingCredentials.append(row)
        try await queued()
    }

    /// Holds every record until an explicit flush (true) or goes back to writing them a moment after they came (false).
    func holdUntilFlushed(_ hold: Bool) {
        timed = !hold
    }

    private func queued() async throws {
        if pending.count + pendingCredentials.count >= Self.batchSize {
            try await flush()
        } else if !scheduled, timed {
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
        let batch = pending, credentials = pendingCredentials
        pending = []
        pendingCredentials = []
        let previous = last
        let store = self.store
        let write = Task {
            _ = try? await previous?.value
            guard !batch.isEmpty || !credentials.isEmpty else { return }
            do {
                try await store.write { tx in
                    if !batch.isEmpty { try await tx.insertAll(batch) }
                    if !credentials.isEmpty { try await tx.insertCredentialsIfAbsent(credentials) }
                }
            } catch {
                self.requeue(batch, credentials)
                throw error
            }
        }
        last = write
        try await write.value
    }

    private func requeue(_ batch: [StoredObject], _ credentials: [CredentialRow]) {
        pending.insert(contentsOf: batch, at: 0)
        pendingCredentials.insert(contentsOf: credentials, at: 0)
    }
}

/// Inserting many records with one statement a kind, for ``SignInWriter``'s batches (part of every
/// ``DirectoryTransaction``).
public protocol RecordBatchInserting: Sendable {
    /// Inserts new objects, as `insert` does each (one whose id is there already fails them all).
    func insertAll(_ objects: [StoredObject]) async throws
    /// Inserts credential records, leaving out those whose id or handle is stored already.
    func insertCredentialsIfAbsent(_ records: [CredentialRow]) async throws
}
