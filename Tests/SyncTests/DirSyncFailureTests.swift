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
    /// connection closed instead.
    struct Answer: Sendable {
        var users: Range<Int>
        var cookie: [UInt8]?
    }

    /// An LDAP server that accepts any simple bind and answers the n-th search with `answers[n]`; it records the DirSync
    /// cookie each search sent.
    final class DirSyncServer: Sendable {
        let channel: any Channel
        let cookiesSent = Mutex<[[UInt8]]>([])
        var url: String { "ldap://127.0.0.1:\(channel.localAddress!.port!)" }

        init(_ answers: [Answer]) async throws {
            let box = Mutex<DirSyncServer?>(nil)
            let searches = Mutex(0)
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
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
            switch parts[1].identifier.tagNumber {
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
                for index in answer.users { write(context, Self.entry(id: id, index: index)) }
                if let cookie = answer.cookie {
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
            default:  // unbind and anything else: no answer
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

        /// User `u<index>` in OU=Staff, as DirSync sends a user: its GUID (16 bytes, from the index), classes and names.
        static func entry(id: Int, index: Int) -> [UInt8] {
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
                    BERWriter.octetString(&s, Array("CN=u\(index),OU=Staff,DC=corp,DC=example,DC=test".utf8))
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

    @Test("a run whose answer breaks off fails and keeps the old cookie; the next run from it brings the rest, no one created twice")
    func brokenAnswer() async throws {
        let server = try await DirSyncServer([
            Answer(users: 0..<3, cookie: Array("cookie-1".utf8)),  // the first (full) run
            Answer(users: 3..<8, cookie: nil),                      // a delta: five new users, then the connection ends
            Answer(users: 3..<10, cookie: Array("cookie-2".utf8)),  // the same delta again, whole, and two more users
        ])
        let start = try await SyncTestTenant.make()
        let store = start.store, clock = start.clock, directory = start.directory, tenant = start.tenant
        let passwordFile = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dirsync-\(UUID().uuidString)")
        try Data("secret".utf8).write(to: passwordFile)
        defer { try? FileManager.default.removeItem(at: passwordFile) }
        var settings = SyncSettings()
        settings.connectors = [SyncConnector(name: "corp", ldapURL: server.url, bindDN: "CN=sync,DC=corp,DC=example,DC=test",
                                             bindPasswordFile: passwordFile.path, baseDN: "OU=Staff,DC=corp,DC=example,DC=test", startTLS: false)]
        try await settings.save(tenant: tenant.id, store: store)
        let cycle = SyncCycle(directory: directory, clock: clock)
        func cookie() async throws -> [UInt8]? { try await SyncSettings.load(tenant: tenant.id, store: store).connectors.first?.cookie }
        func syncedUsers() async throws -> [String] {
            try await store.read { tx in
                try await tx.query(ObjectQuery(tenant: tenant.id, kinds: [.user], filter: .compare(PropertyPath(["onPremisesSyncEnabled"]), .eq, .bool(true))))
            }.compactMap { $0.body["userPrincipalName"]?.stringValue }.sorted()
        }

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
        try await store.shutdown()
    }
}
