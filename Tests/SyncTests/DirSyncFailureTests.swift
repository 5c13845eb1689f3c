import Foundation
import NIOCore
import NIOPosix
import Synchronization
import SwiftASN1
import Testing
@testable import LDAP
import Store
@testable import Sync
import TesseraCore
import TesseraTesting

/// A sync run whose DirSync answer breaks off part way, against an in-test LDAP server on loopback that answers binds
/// and DirSync searches from a script: the run fails, the connector keeps the cookie it had (the new one comes only
/// with the end of an answer), what the run staged before the break stays staged, and the next run, from the old
/// cookie, brings the rest without creating anyone twice.
@Suite("Sync: a DirSync answer that breaks off mid-way keeps the previous cookie", .timeLimit(.minutes(10)))
struct DirSyncFailureTests {
    /// How the server answers one search: these entries, then the end of the search with this cookie, or (nil) the
    /// connection closed instead; or (`holds`) these entries and then nothing until the client abandons the search or
    /// goes: an answer still on its way, as Samba's first DirSync of a large domain is for minutes.
    struct Answer: Sendable {
        var users: Range<Int>
        var cookie: [UInt8]?
        var holds = false
        /// Users sent in OU=Gone: moved out of the connector's scope.
        var movedOut: Set<Int> = []
    }

    /// An LDAP server that accepts any simple bind and answers the n-th search with `answers[n]`; it records the DirSync
    /// cookie each search sent, and every request's operation (its application tag) and message id in order, an
    /// AbandonRequest with the message id it abandons.
    final class DirSyncServer: Sendable {
        struct Request: Sendable, Equatable {
            /// bind 0, search 3, unbind 2, abandon 16.
            var operation: UInt
            var id: Int
            /// For an abandon, the message id of the operation it abandons.
            var abandons: Int?
        }

        let channel: any Channel
        let cookiesSent = Mutex<[[UInt8]]>([])
        let requests = Mutex<[Request]>([])
        /// Each connection's end (the client closed it).
        let closed = Mutex<[EventLoopFuture<Void>]>([])
        var url: String { "ldap://127.0.0.1:\(channel.localAddress!.port!)" }

        /// Waits until every connection made so far has ended, so every request sent on it is in ``requests``.
        func connectionsEnded() async throws {
            for end in closed.withLock({ $0 }) { try await end.get() }
        }

        init(_ answers: [Answer]) async throws {
            let box = Mutex<DirSyncServer?>(nil)
            let searches = Mutex(0)
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    box.withLock { $0 }?.closed.withLock { $0.append(child.closeFuture) }
                    return child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(LDAPFrameDecoder()))
                        try child.pipeline.syncOperations.addHandler(Handler { context, request in
                            guard let server = box.withLock({ $0 }) else { return }
                            server.answer(context: context, request: request) {
                                searches.withLock { count in
                                    defer { count += 1 }
                                    return count < answers.count ? answers[count] : nil
                                }
                            }
                        })
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            box.withLock { $0 = self }
        }

        deinit { channel.close(promise: nil) }

        /// Reads one request and writes its answer; a search takes the next answer from `nextAnswer`.
        func answer(context: ChannelHandlerContext, request: [UInt8], _ nextAnswer: () -> Answer?) {
            guard let node = try? BER.parse(request), let parts = try? BERReader.children(node), parts.count >= 2,
                  let id = try? BERReader.integer(parts[0]) else { return context.close(promise: nil) }
            let operation = parts[1].identifier.tagNumber
            requests.withLock { $0.append(Request(operation: operation, id: id, abandons: operation == 16 ? try? BERReader.integer(parts[1]) : nil)) }
            switch operation {
            case 0:  // bind
                write(context, Self.result(id: id, tag: 1))
            case 3:  // search
                if parts.count > 2, let controls = try? BERReader.children(parts[2]) {
                    for control in controls {
                        guard let fields = try? BERReader.children(control), let oid = fields.first.flatMap({ try? BERReader.bytes($0) }),
                              String(decoding: oid, as: UTF8.self) == LDAPControl.dirSyncOID, let value = try? BERReader.bytes(fields.last!),
                              let dirSync = try? BERReader.children(BER.parse(value)), dirSync.count == 3,
                              let cookie = try? BERReader.bytes(dirSync[2]) else { continue }
                        cookiesSent.withLock { $0.append(cookie) }
                    }
                }
                guard let answer = nextAnswer() else { return context.close(promise: nil) }
                for index in answer.users { write(context, Self.entry(id: id, index: index, ou: answer.movedOut.contains(index) ? "Gone" : "Staff")) }
                if answer.holds {
                    return  // the rest of the answer is still being worked out
                } else if let cookie = answer.cookie {
                    write(context, Self.result(id: id, tag: 5, controls: [.init(oid: LDAPControl.dirSyncOID, value: BERWriter.sequence { s in
                        BERWriter.integer(&s, 0)
                        BERWriter.integer(&s, 0)
                        BERWriter.octetString(&s, cookie)
                    })]))
                } else {
                    // Broken off: the entries so far reach the client (writes complete in order), then the connection ends.
                    let channel = context.channel
                    channel.writeAndFlush(channel.allocator.buffer(bytes: [])).whenComplete { _ in channel.close(promise: nil) }
                }
            default:  // unbind, abandon and anything else: no answer
                break
            }
        }

        func write(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        }

        /// An LDAPResult (success) of application tag `tag`, with controls.
        static func result(id: Int, tag: UInt, controls: [LDAPControl] = []) -> [UInt8] {
            BERWriter.message(id: id, controls: controls) { s in
                s.appendConstructedNode(identifier: .application(tag)) { s in
                    BERWriter.enumerated(&s, 0)
                    BERWriter.octetString(&s, [])
                    BERWriter.octetString(&s, [])
                }
            }
        }

        /// User `u<index>` in `ou` (OU=Staff, the connector's scope), as DirSync sends a user: its GUID (16 bytes, from
        /// the index), classes and names.
        static func entry(id: Int, index: Int, ou: String = "Staff") -> [UInt8] {
            var guid = [UInt8](repeating: 0x5a, count: 16)
            guid[14] = UInt8(index >> 8)
            guid[15] = UInt8(index & 0xff)
            let attributes: [(String, [[UInt8]])] = [
                ("objectGUID", [guid]),
                ("objectClass", ["top", "person", "organizationalPerson", "user"].map { Array($0.utf8) }),
                ("userPrincipalName", [Array("u\(index)@contoso.test".utf8)]),
                ("sAMAccountName", [Array("u\(index)".utf8)]),
                ("displayName", [Array("User \(index)".utf8)]),
                ("userAccountControl", [Array("512".utf8)]),
            ]
            return BERWriter.message(id: id) { s in
                s.appendConstructedNode(identifier: .application(4)) { s in
                    BERWriter.octetString(&s, Array("CN=u\(index),OU=\(ou),DC=corp,DC=example,DC=test".utf8))
                    s.appendConstructedNode(identifier: .sequence) { s in
                        for (name, values) in attributes {
                            s.appendConstructedNode(identifier: .sequence) { s in
                                BERWriter.octetString(&s, Array(name.utf8))
                                s.appendConstructedNode(identifier: .set) { s in for value in values { BERWriter.octetString(&s, value) } }
                            }
                        }
                    }
                }
            }
        }

        /// Hands each LDAPMessage the decoder framed to the server.
        final class Handler: ChannelInboundHandler {
            typealias InboundIn = [UInt8]
            let onRequest: (ChannelHandlerContext, [UInt8]) -> Void
            init(_ onRequest: @escaping (ChannelHandlerContext, [UInt8]) -> Void) { self.onRequest = onRequest }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) { onRequest(context, unwrapInboundIn(data)) }
        }
    }

    @Test("a run whose answer breaks off fails and keeps the old cookie; the next run from it brings the rest, no one created twice",
          arguments: SyncTestTenant.databases)
    func brokenAnswer(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<3, cookie: Array("cookie-1".utf8)),  // the first (full) run
            Answer(users: 3..<8, cookie: nil),                      // a delta: five new users, then the connection ends
            Answer(users: 3..<10, cookie: Array("cookie-2".utf8)),  // the same delta again, whole, and two more users
        ])
        let start = try await SyncTestTenant.make(database)
        let clock = start.clock, directory = start.directory, tenant = start.tenant
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let cycle = SyncCycle(directory: directory, clock: clock)
        func cookie() async throws -> [UInt8]? { try await Self.cookie(start) }
        func syncedUsers() async throws -> [String] { try await Self.syncedUsers(start) }

        // Pages of two entries, so the broken answer has pages staged and exported before it breaks.
        try await SyncCycle.$pageSize.withValue(2) {
            let first = try #require(try await cycle.run(tenant: tenant).first)
            #expect(first.status == "success" && first.added == 3, "\(first.errors)")
            #expect(try await cookie() == Array("cookie-1".utf8))

            let broken = try #require(try await cycle.run(tenant: tenant).first)
            #expect(broken.status == "failed")
            #expect(broken.errors.first?["code"]?.stringValue == "ConnectorError")
            // The cookie is the one before the broken answer: the next run asks for those changes again.
            #expect(try await cookie() == Array("cookie-1".utf8))
            // What the run staged and exported before the break stays: its two whole pages (the fifth entry's page
            // never filled), entries that arrived before the connection ended reaching the run first.
            let partial = try await syncedUsers()
            #expect(broken.added == 4 && broken.imported == 4)
            #expect(partial == (0..<7).map { "u\($0)@contoso.test" }.sorted())

            let rerun = try #require(try await cycle.run(tenant: tenant).first)
            #expect(rerun.status == "success")
            #expect(rerun.added == 3)
            #expect(try await cookie() == Array("cookie-2".utf8))
            #expect(try await syncedUsers() == (0..<10).map { "u\($0)@contoso.test" }.sorted())
        }
        // The first run sent no cookie (everything), the broken run and the rerun both sent the first answer's.
        #expect(server.cookiesSent.withLock { $0 } == [[], Array("cookie-1".utf8), Array("cookie-1".utf8)])
        try await start.close()
    }

    /// The tenant's connector `corp` on `server` (OU=Staff), its bind password in a new file, whose URL is returned.
    static func connector(_ server: DirSyncServer, tenant start: SyncTestTenant) async throws -> URL {
        let passwordFile = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dirsync-\(UUID().uuidString)")
        try Data("secret".utf8).write(to: passwordFile)
        var settings = SyncSettings()
        settings.connectors = [SyncConnector(name: "corp", ldapURL: server.url, bindDN: "CN=sync,DC=corp,DC=example,DC=test",
                                             bindPasswordFile: passwordFile.path, baseDN: "OU=Staff,DC=corp,DC=example,DC=test", startTLS: false)]
        try await settings.save(tenant: start.tenant.id, store: start.store)
        return passwordFile
    }

    /// The connector's stored DirSync cookie.
    static func cookie(_ start: SyncTestTenant) async throws -> [UInt8]? {
        try await SyncSettings.load(tenant: start.tenant.id, store: start.store).connectors.first?.cookie
    }

    /// The synced users' names, sorted (a name twice would be a user created twice).
    static func syncedUsers(_ start: SyncTestTenant) async throws -> [String] {
        try await start.store.read { tx in
            try await tx.query(ObjectQuery(tenant: start.tenant.id, kinds: [.user], filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true))))
        }.compactMap { $0.body["userPrincipalName"]?.stringValue }.sorted()
    }

    static func names(_ users: Range<Int>) -> [String] { users.map { "u\($0)@contoso.test" }.sorted() }

    /// The audit log's events of sync runs, oldest first.
    static func runEvents(_ start: SyncTestTenant) async throws -> [ChangeRecord] {
        try await start.store.read { tx in try await tx.changes(tenant: start.tenant.id, kinds: nil, after: 0, limit: 10_000) }
            .filter { $0.activity == "Directory synchronization run" }
    }

    /// A node's end without a drain (SIGKILL, power loss): its run stops where it is and writes nothing more.
    struct Killed: Error {}

    /// What the client sent on the connection of an answer it stopped reading: bind, the search, an AbandonRequest for
    /// that search's message id (a message id of its own), then the unbind.
    static func expectAbandoned(_ requests: [DirSyncServer.Request]) {
        #expect(requests.map(\.operation) == [0, 3, 16, 2], "requests: \(requests)")
        guard requests.count == 4 else { return }
        #expect(requests[2].abandons == requests[1].id, "the abandon names message \(requests[2].abandons ?? -1), the search was \(requests[1].id)")
        #expect(Set(requests.map(\.id)).count == 4, "each message has an id of its own: \(requests)")
    }

    /// A node of `start`'s deployment whose drain a test starts (as SIGTERM's drain service marks the node).
    final class DrainSwitch: Sendable {
        private let on = Atomic(false)

        func start() { on.store(true, ordering: .relaxed) }

        func node(_ start: SyncTestTenant) -> SyncCycle {
            var node = SyncCycle(directory: start.directory, clock: start.clock)
            node.isDraining = { self.on.load(ordering: .relaxed) }
            return node
        }
    }

    @Test("a node that starts draining inside a DirSync answer stops within a page: the search is abandoned, the pages staged stay, the cookie stays; the run is handed back and the node that resumes it asks for the answer again and adds only what is missing",
          arguments: SyncTestTenant.databases)
    func drainInsideAnAnswer(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<10, cookie: nil, holds: true),      // a first sync: the domain, still arriving when the node drains
            Answer(users: 0..<10, cookie: Array("cookie-1".utf8)), // the resumed run asks again and gets it whole
        ])
        let start = try await SyncTestTenant.make(database)
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let draining = DrainSwitch()
        let node = draining.node(start)

        try await SyncCycle.$pageSize.withValue(2) {
            // SIGTERM arrives while the answer's first page (two entries) is being staged.
            let handed = try await SyncCycle.$answerPageStaged.withValue({ staged in if staged == 2 { draining.start() } }) {
                try #require(try await node.run(tenant: start.tenant).first)
            }
            #expect(handed.status == "handed-back" && handed.handedBackAt != nil, "the run read on past the page: \(handed.json)")
            #expect(handed.stopReason?.contains("inside a DirSync answer after 2 of its entries") == true, "\(handed.stopReason ?? "no reason")")
            #expect(handed.imported == 2 && handed.added == 2, "\(handed.json)")
            #expect(try await Self.syncedUsers(start) == Self.names(0..<2), "the staged page stays, nothing past it")
            #expect(try await Self.cookie(start) == nil, "no cookie: the answer never ended")
            let record = try #require(try await SyncSettings.load(tenant: start.tenant.id, store: start.store).runs.compactMap(SyncRun.init(json:)).first)
            #expect(record.id == handed.id && record.status == "handed-back" && record.stopReason == handed.stopReason)
            let leases = try await SyncRunLeases.all(store: start.store)
            #expect(leases.count == 1 && leases.allSatisfy { $0.handedBack != nil }, "the lease was not handed back: \(leases)")
            try await server.connectionsEnded()
            Self.expectAbandoned(server.requests.withLock { $0 })

            // Another node (here the same store, not draining) takes the run up.
            let resumed = try #require(try await SyncCycle(directory: start.directory, clock: start.clock).run(tenant: start.tenant).first)
            #expect(resumed.id == handed.id && resumed.status == "success" && resumed.resumedAt != nil, "\(resumed.json)")
            #expect(resumed.added == 10 && resumed.updated == 0 && resumed.deleted == 0, "\(resumed.json)")
            #expect(try await Self.cookie(start) == Array("cookie-1".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(0..<10), "each user once")
            #expect(try await SyncRunLeases.all(store: start.store).isEmpty)
        }
        // Both asked with the cookie the run began from (none: everything).
        #expect(server.cookiesSent.withLock { $0 } == [[], []])
        try await start.close()
    }

    @Test("a delta resumed inside its answer reads that answer's entries again: a user who left the scope is deleted once, counted once",
          arguments: SyncTestTenant.databases)
    func resumedDeltaDeletesOnce(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<3, cookie: Array("cookie-1".utf8)),
            // The delta: u0 moved out of scope, u3–u5 new; the node drains after its first page (u0, u1).
            Answer(users: 0..<6, cookie: nil, holds: true, movedOut: [0]),
            Answer(users: 0..<6, cookie: Array("cookie-2".utf8), movedOut: [0]),
        ])
        let start = try await SyncTestTenant.make(database)
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let draining = DrainSwitch()
        let node = draining.node(start)

        try await SyncCycle.$pageSize.withValue(2) {
            #expect(try await node.run(tenant: start.tenant).first?.added == 3)
            let handed = try await SyncCycle.$answerPageStaged.withValue({ _ in draining.start() }) {
                try #require(try await node.run(tenant: start.tenant).first)
            }
            #expect(handed.status == "handed-back" && handed.deleted == 0, "\(handed.json)")
            #expect(try await Self.cookie(start) == Array("cookie-1".utf8))

            let resumed = try #require(try await SyncCycle(directory: start.directory, clock: start.clock).run(tenant: start.tenant).first)
            #expect(resumed.id == handed.id && resumed.status == "success", "\(resumed.json)")
            #expect(resumed.deleted == 1 && resumed.added == 3, "\(resumed.json)")
            #expect(try await Self.cookie(start) == Array("cookie-2".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(1..<6))
        }
        #expect(server.cookiesSent.withLock { $0 } == [[], Array("cookie-1".utf8), Array("cookie-1".utf8)])
        try await start.close()
    }

    @Test("a node whose run's lease runs out and is taken inside a DirSync answer stops within a page and writes nothing more: the search is abandoned, the pages staged stay, the cookie stays; the next run adds only what is missing",
          arguments: SyncTestTenant.databases)
    func leaseLostInsideAnAnswer(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<10, cookie: nil, holds: true),
            Answer(users: 0..<10, cookie: Array("cookie-1".utf8)),
        ])
        let start = try await SyncTestTenant.make(database)
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let node = SyncCycle(directory: start.directory, clock: start.clock)
        let store = start.store, clock = start.clock, tenant = start.tenant.id

        try await SyncCycle.$pageSize.withValue(2) {
            // While the first page is staged, the node's renewals stop reaching the database (paused, cut off) for longer
            // than the lease lasts, and another node takes the run.
            let taken = Mutex<SyncRunLease?>(nil)
            let lost = try await SyncCycle.$answerPageStaged.withValue({ staged in
                guard staged == 2 else { return }
                clock.advance(SyncRunLeases.duration + 1)
                let other = try await SyncRunLeases.take(store: store, tenant: tenant, work: SyncCycle.work(connector: "corp"), now: clock.now)
                taken.withLock { $0 = other?.0 }
            }) {
                try #require(try await node.run(tenant: start.tenant).first)
            }
            #expect(taken.withLock { $0 } != nil, "the other node could not take the run")
            #expect(lost.status == "lease-lost", "the run read on past the page: \(lost.json)")
            #expect(lost.stopReason?.contains("inside a DirSync answer, after 2 of its entries") == true, "\(lost.stopReason ?? "no reason")")
            #expect(lost.added == 2)
            #expect(try await SyncSettings.load(tenant: tenant, store: store).runs.isEmpty, "a node that lost the lease records nothing")
            // Only an audit event says this node stopped its part of the run, and why.
            let stopped = try await Self.runEvents(start)
            #expect(stopped.count == 1, "events: \(stopped)")
            #expect(stopped.first?.objectId == lost.id && stopped.first?.details["status"]?.stringValue == "lease-lost")
            #expect(stopped.first?.details["stopReason"]?.stringValue == lost.stopReason && stopped.first?.details["added"] == .int(2))
            #expect(try await Self.syncedUsers(start) == Self.names(0..<2), "the staged page stays, nothing past it")
            #expect(try await Self.cookie(start) == nil)
            try await server.connectionsEnded()
            Self.expectAbandoned(server.requests.withLock { $0 })

            // The other node stops too (killed); once its lease runs out a node runs the connector from the old cookie.
            clock.advance(SyncRunLeases.duration + 1)
            let rerun = try #require(try await node.run(tenant: start.tenant).first)
            #expect(rerun.status == "success" && rerun.added == 8 && rerun.updated == 0, "\(rerun.json)")
            #expect(try await Self.runEvents(start).map { $0.details["status"]?.stringValue } == ["lease-lost", "success"])
            #expect(try await Self.cookie(start) == Array("cookie-1".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(0..<10), "each user once")
        }
        #expect(server.cookiesSent.withLock { $0 } == [[], []])
        try await start.close()
    }

    @Test("a node killed inside a DirSync answer (no drain: its run ends where it is, its connection goes) leaves the checkpoint of the last page it staged; a new engine resumes the run from it once the lease runs out, asks for the answer again and adds only what is missing: every object once, the run's counts whole, a deletion counted once",
          arguments: SyncTestTenant.databases)
    func killedInsideAnAnswer(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<10, cookie: nil, holds: true),         // a first sync: the domain, still arriving when the node is killed
            Answer(users: 0..<10, cookie: Array("cookie-1".utf8)),   // the resumed run asks again and gets it whole
            // A delta: u0 left the scope, u10 and u11 are new; the node is killed inside it, then the resumed run gets it whole.
            Answer(users: 0..<12, cookie: nil, holds: true, movedOut: [0]),
            Answer(users: 0..<12, cookie: Array("cookie-2".utf8), movedOut: [0]),
        ])
        let start = try await SyncTestTenant.make(database)
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let clock = start.clock

        /// Runs a node whose pages each take a checkpoint interval, killed right after the checkpoint of its second page
        /// of the answer (or, with no checkpoint inside an answer, at its third page), then lets its lease run out;
        /// returns the run a new engine resumes.
        func killedThenResumed() async throws -> SyncRun {
            await #expect(throws: Killed.self) {
                try await SyncCycle.$pageCommitted.withValue({ pages in if pages == 2 { throw Killed() } }) {
                    try await SyncCycle.$answerPageStaged.withValue({ staged in
                        if staged == 6 { throw Killed() }
                        clock.advance(SyncCycle.answerCheckpointInterval)
                    }) {
                        _ = try await SyncCycle(directory: start.directory, clock: clock).run(tenant: start.tenant)
                    }
                }
            }
            // The killed node handed nothing back: its lease holds until it runs out.
            let leases = try await SyncRunLeases.all(store: start.store)
            #expect(leases.count == 1 && leases.allSatisfy { $0.handedBack == nil }, "\(leases)")
            await #expect(throws: SyncRunInProgress.self) { _ = try await SyncCycle(directory: start.directory, clock: clock).run(tenant: start.tenant) }
            clock.advance(SyncRunLeases.duration + 1)
            let engine = SyncCycle(directory: DirectoryService(store: start.store, clock: clock), clock: clock)
            return try #require(try await engine.run(tenant: start.tenant).first)
        }

        try await SyncCycle.$pageSize.withValue(2) {
            let first = try await killedThenResumed()
            #expect(first.status == "success" && first.resumedAt != nil && first.handedBackAt == nil, "not resumed from a checkpoint: \(first.json)")
            #expect(first.added == 10 && first.updated == 0 && first.imported == 10, "\(first.json)")
            #expect(try await Self.cookie(start) == Array("cookie-1".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(0..<10), "each user once")
            #expect(try await Self.runEvents(start).count == 1)

            let delta = try await killedThenResumed()
            #expect(delta.status == "success" && delta.resumedAt != nil, "not resumed from a checkpoint: \(delta.json)")
            #expect(delta.added == 2 && delta.deleted == 1 && delta.updated == 0 && delta.imported == 12, "\(delta.json)")
            #expect(try await Self.cookie(start) == Array("cookie-2".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(1..<12))
            #expect(try await SyncRunLeases.all(store: start.store).isEmpty)
            let runs = try await SyncSettings.load(tenant: start.tenant.id, store: start.store).runs.compactMap(SyncRun.init(json:))
            #expect(Set(runs.map(\.id)) == [first.id, delta.id], "a run recorded twice: \(runs.map(\.json))")
        }
        // Each answer asked for twice, from the cookie the run began with.
        #expect(server.cookiesSent.withLock { $0 } == [[], [], Array("cookie-1".utf8), Array("cookie-1".utf8)])
        try await start.close()
    }

    @Test("a node that starts draining at a DirSync answer's last page reads the answer's end: the run is handed back with that answer's cookie, and the node that resumes it finishes it without asking for the answer again",
          arguments: SyncTestTenant.databases)
    func drainAtAnAnswersLastPage(_ database: String) async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<5, cookie: Array("cookie-1".utf8)),  // pages of 2, 2 and 1
            Answer(users: 0..<5, cookie: Array("cookie-1".utf8)),  // the answer again, were it asked for
        ])
        let start = try await SyncTestTenant.make(database)
        let passwordFile = try await Self.connector(server, tenant: start)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        let draining = DrainSwitch()

        try await SyncCycle.$pageSize.withValue(2) {
            let handed = try await SyncCycle.$answerPageStaged.withValue({ staged in if staged == 5 { draining.start() } }) {
                try #require(try await draining.node(start).run(tenant: start.tenant).first)
            }
            #expect(handed.status == "handed-back" && handed.imported == 5 && handed.added == 5, "\(handed.json)")
            #expect(try await Self.cookie(start) == nil, "the connector's cookie is stored at the run's end")
            try await server.connectionsEnded()
            #expect(server.requests.withLock { $0 }.map(\.operation) == [0, 3, 2], "the answer was read to its end: nothing to abandon")

            let resumed = try #require(try await SyncCycle(directory: start.directory, clock: start.clock).run(tenant: start.tenant).first)
            #expect(resumed.id == handed.id && resumed.status == "success" && resumed.resumedAt != nil, "\(resumed.json)")
            #expect(resumed.added == 5 && resumed.imported == 5 && resumed.updated == 0, "\(resumed.json)")
            #expect(try await Self.cookie(start) == Array("cookie-1".utf8))
            #expect(try await Self.syncedUsers(start) == Self.names(0..<5))
        }
        #expect(server.cookiesSent.withLock { $0 } == [[]], "the answer was asked for again")
        try await start.close()
    }
}
