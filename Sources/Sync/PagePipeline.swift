import LDAP

/// An import's pages exported in order, each prepared while the page before it is written, so that a run keeps two
/// cores at work: one writing a page (its `DirectoryService.apply` transaction, SQLite's statements, the change log),
/// the other merging the next page into its staged objects, working out its users' attribute flow and looking up their
/// keys (``SyncCycle/preparePage(_:context:connector:full:runID:)``).
///
/// What it guarantees, as a run without the overlap would:
/// - pages are written one after another, in order, each whole before the next begins: the writes never overlap, only
///   a page's preparation (which writes nothing) overlaps the write of the page before it;
/// - a page that names a staged object the page before it names is prepared only after that page is written, so it
///   reads what that page wrote (``SyncCycle/planCreates(_:context:)`` says why the rest of what a preparation reads
///   may be older);
/// - a page whose preparation fails is not written, and the page before it is written all the same before the error
///   goes on; the run's counts are those of the pages written. A run keeps the DirSync cookie of the last answer
///   whose pages were all written, so a run failing part way keeps the cookie before the page that failed.
///
/// The page prepared last waits, unwritten, for the next page or for ``flush(_:state:run:)``, which a run calls
/// before it saves a checkpoint for the end of a DirSync answer and before it ends its export.
struct PagePipeline {
    /// A prepared page and its number among the pages handed to the pipeline (from 1).
    private struct Numbered: Sendable {
        let number: Int
        let page: PreparedPage
    }

    /// The page prepared and not yet written.
    private var pending: Numbered?
    /// Whether a page waits to be written.
    var holdsPage: Bool { pending != nil }
    /// Pages handed to the pipeline so far, for the test seams.
    private var count = 0

    /// Test seam: called as the preparation of each page begins, with its number (from 1), in the task preparing it.
    @TaskLocal static var preparing: (@Sendable (Int) async throws -> Void)?
    /// Test seam: called as the write of each page begins, with its number, in the task writing it.
    @TaskLocal static var writing: (@Sendable (Int) async throws -> Void)?

    /// Adds a page of imported entries: prepares it while the page before it is written, and keeps it to be written
    /// next. Returns how many entries were written (those of the page before it; 0 when there was none).
    mutating func add(_ entries: [LDAPEntry], cycle: SyncCycle, state: inout ExportState, run: inout SyncRun) async throws -> Int {
        guard !entries.isEmpty else { return 0 }
        count += 1
        let number = count
        let context = state.context, connector = state.connector, full = run.full, runID = run.id
        let prepare = { @Sendable () async throws -> Numbered in
            if let seam = Self.preparing { try await seam(number) }
            return Numbered(number: number, page: try await cycle.preparePage(entries, context: context, connector: connector, full: full,
                                                                             runID: runID))
        }
        guard let previous = pending else {
            pending = try await prepare()
            return 0
        }
        pending = nil
        let named = Set(SyncCycle.named(entries, connector: connector.name).map(\.id))
        guard named.isDisjoint(with: previous.page.ids) else {
            // It must read what the page before it writes.
            try await Self.write(previous, cycle: cycle, state: &state, run: &run)
            pending = try await prepare()
            return previous.page.entries
        }
        async let written = Self.written(previous, cycle: cycle, state: state, run: run)
        let next: Numbered
        do {
            next = try await prepare()
        } catch {
            // The page before it is written all the same, as it would have been before this one was read.
            (state, run, _) = await written
            throw error
        }
        let outcome = await written
        (state, run) = (outcome.state, outcome.run)
        if let failure = outcome.error { throw failure }
        pending = next
        return previous.page.entries
    }

    /// Writes the page prepared last, if any. Returns how many entries were written.
    @discardableResult
    mutating func flush(_ cycle: SyncCycle, state: inout ExportState, run: inout SyncRun) async throws -> Int {
        guard let page = pending else { return 0 }
        pending = nil
        try await Self.write(page, cycle: cycle, state: &state, run: &run)
        return page.page.entries
    }

    /// After the import failed (a DirSync answer broken off, an LDIF file that cannot be read further), writes the page
    /// prepared last, as a run without the overlap would have written it before reading on; not when the task is
    /// cancelled (its node is stopping). The write's own failure is dropped: `failure` is what the run reports.
    mutating func writeHeldPage(after failure: any Error, cycle: SyncCycle, state: inout ExportState, run: inout SyncRun) async {
        guard pending != nil, !Task.isCancelled, !(failure is CancellationError) else { return }
        _ = try? await flush(cycle, state: &state, run: &run)
    }

    private static func write(_ page: Numbered, cycle: SyncCycle, state: inout ExportState, run: inout SyncRun) async throws {
        if let seam = writing { try await seam(page.number) }
        try await cycle.writePage(page.page, state: &state, run: &run)
    }

    /// Writes `page` from copies of the export's state and the run, and returns them as the write left them, with its
    /// error if it failed part way (what it wrote before that stays written and counted, as without the overlap).
    private static func written(_ page: Numbered, cycle: SyncCycle, state: ExportState, run: SyncRun) async
        -> (state: ExportState, run: SyncRun, error: (any Error)?) {
        var state = state, run = run
        do {
            try await write(page, cycle: cycle, state: &state, run: &run)
            return (state, run, nil)
        } catch {
            return (state, run, error)
        }
    }
}
