import Foundation
import NIOCore
import NIOPosix
import SwiftASN1
import Synchronization
import Testing
import LDAP

/// The streamed search against a tiny LDAP responder on loopback that answers one search with entries at a pace
/// the test sets: the way Samba answers a first DirSync (every entry of the domain in one answer, ignoring the
/// control's size limit), only smaller. The search's deadline is on silence, not on the whole answer, and a
/// consumer slower than the server keeps the client's memory bounded (the server waits on TCP instead).
@Suite("LDAP client: a search's entries stream, with back pressure and a deadline on silence", .timeLimit(.minutes(10)))
struct LDAPStreamTests {
    /// Answers the first search on each connection by running `script` with a writer for its messages, on a thread of
    /// its own: a full test run keeps Swift's cooperative threads busy for seconds at a time, and the pace the test
    /// sets (gaps shorter or longer than the client's timeout, which NIO's event loop keeps on time) must not depend on
    /// when a task gets a thread.
    final class Responder: Sendable {
        /// A message the client sent: its id, its operation (application tag: search 3, unbind 2, abandon 16), and the
        /// operation's contents (an AbandonRequest's: the message id it abandons).
        struct Request: Sendable {
            var id: Int
            var operation: UInt
            var contents: ASN1Node.Content
            /// The request's controls ([0]), if any.
            var controls: ASN1Node?
            /// For an abandon: the message id it abandons.
            var abandons: Int? {
                guard operation == 16, case .primitive(let bytes) = contents, !bytes.isEmpty, bytes.count <= 8 else { return nil }
                return bytes.reduce(bytes.first! & 0x80 != 0 ? -1 : 0) { $0 << 8 | Int($1) }
            }
        }

        let channel: any Channel
        /// How many messages the responder has handed to the kernel.
        let written = Atomic<Int>(0)
        /// Every message the client sent, in order, and each connection's end.
        let requests = Mutex<[Request]>([])
        let closed = Mutex<[EventLoopFuture<Void>]>([])
        var port: Int { channel.localAddress!.port! }

        /// Whether the client has abandoned search `id`.
        func abandoned(_ id: Int) -> Bool { requests.withLock { $0.contains { $0.abandons == id } } }

        /// Waits until every connection so far has ended (the client closed it), so all it sent is in ``requests``.
        func connectionsEnded() async throws {
            for end in closed.withLock({ $0 }) { try await end.get() }
        }

        typealias Script = @Sendable (Responder, _ send: @escaping @Sendable ([UInt8]) throws -> Void, _ id: Int) throws -> Void

        init(_ script: @escaping Script) async throws {
            let box = Mutex<Responder?>(nil)
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                // A small send buffer, so what the kernel holds for a client that does not read is small beside the answer.
                .childChannelOption(.socketOption(.so_sndbuf), value: 64 << 10)
                .childChannelInitializer { child in
                    box.withLock { $0 }?.closed.withLock { $0.append(child.closeFuture) }
                    return child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(RequestReader { request in
                            guard let responder = box.withLock({ $0 }) else { return }
                            responder.requests.withLock { $0.append(request) }
                            // Each search is answered by the script.
                            guard request.operation == 3 else { return }
                            let id = request.id
                            let send: @Sendable ([UInt8]) throws -> Void = { bytes in
                                try child.writeAndFlush(child.allocator.buffer(bytes: bytes)).wait()
                                responder.written.add(1, ordering: .relaxed)
                            }
                            Thread { try? script(responder, send, id) }.start()
                        })
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            box.withLock { $0 = self }
        }

        deinit { channel.close(promise: nil) }

        /// A SearchResultEntry `CN=u<index>` with a `description` of `size` bytes.
        static func entry(id: Int, index: Int, size: Int = 16) throws -> [UInt8] {
            try message(id: id) { s in
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 4, tagClass: .application)) { s in
                    try ASN1OctetString(contentBytes: ArraySlice("CN=u\(index),DC=test".utf8)).serialize(into: &s)
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try ASN1OctetString(contentBytes: ArraySlice("description".utf8)).serialize(into: &s)
                            try s.appendConstructedNode(identifier: .set) { s in
                                try ASN1OctetString(contentBytes: ArraySlice(repeating: UInt8(ascii: "x"), count: size)).serialize(into: &s)
                            }
                        }
                    }
                }
            }
        }

        /// A SearchResultDone with success.
        static func done(id: Int) throws -> [UInt8] {
            try message(id: id) { s in
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 5, tagClass: .application)) { s in
                    s.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }
                    try ASN1OctetString(contentBytes: []).serialize(into: &s)
                    try ASN1OctetString(contentBytes: []).serialize(into: &s)
                }
            }
        }

        static func message(id: Int, _ body: (inout DER.Serializer) throws -> Void) throws -> [UInt8] {
            var s = DER.Serializer()
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(id)
                try body(&s)
            }
            return s.serializedBytes
        }
    }

    /// Reads the client's LDAPMessages and hands each on: its message id, operation and the operation's contents.
    final class RequestReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let onRequest: (Responder.Request) -> Void
        var received: [UInt8] = []
        init(_ onRequest: @escaping (Responder.Request) -> Void) { self.onRequest = onRequest }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received += buffer.readBytes(length: buffer.readableBytes) ?? []
            // One message at a time: a SEQUENCE with a definite length (short form, or long form of up to 4 bytes).
            while received.count >= 2 {
                var length = Int(received[1]), header = 2
                if received[1] & 0x80 != 0 {
                    let count = Int(received[1] & 0x7f)
                    guard received.count >= 2 + count else { return }
                    length = received[2..<2 + count].reduce(0) { $0 << 8 | Int($1) }
                    header += count
                }
                guard received.count >= header + length else { return }
                let message = Array(received[..<(header + length)])
                received.removeFirst(header + length)
                guard let node = try? BER.parse(message), case .constructed(let nodes) = node.content else { continue }
                let parts = Array(nodes)
                guard parts.count >= 2, let id = try? Int(derEncoded: parts[0]) else { continue }
                onRequest(Responder.Request(id: id, operation: parts[1].identifier.tagNumber, contents: parts[1].content,
                                            controls: parts.count > 2 ? parts[2] : nil))
            }
        }
    }

    /// `count` entries 150 ms apart, then the end of the search.
    static func steady(_ count: Int) -> Responder.Script {
        { _, send, id in
            for index in 0..<count {
                Thread.sleep(forTimeInterval: 0.15)
                try send(try Responder.entry(id: id, index: index))
            }
            try send(try Responder.done(id: id))
        }
    }

    @Test("an answer that takes longer than the timeout in all, but never goes silent that long, arrives whole")
    func slowButSteady() async throws {
        // 15 entries 150 ms apart: 2.25 s in all against a 1 s timeout (the whole-request deadline failed this).
        let responder = try await Responder(Self.steady(15))
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .seconds(1))
        var names: [String] = []
        try await connection.closing { connection in
            _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 5) { names += $0.map(\.dn) }
        }
        #expect(names == (0..<15).map { "CN=u\($0),DC=test" })
        // An answer read to its end is not abandoned: the search, then the unbind.
        try await responder.connectionsEnded()
        #expect(responder.requests.withLock { $0.map(\.operation) } == [3, 2])
    }

    /// Entries for as long as the client has not abandoned the search (a first DirSync of a large domain): the
    /// responder stops sending once the AbandonRequest arrives, or when the connection is gone.
    static let untilAbandoned: Responder.Script = { responder, send, id in
        var index = 0
        while !responder.abandoned(id) {
            try send(try Responder.entry(id: id, index: index))
            index += 1
        }
    }

    /// What a client that stopped reading an answer sent: the search, an AbandonRequest naming it (with a message id
    /// of its own), then the unbind.
    static func expectAbandoned(_ requests: [Responder.Request]) {
        #expect(requests.map(\.operation) == [3, 16, 2], "operations: \(requests.map(\.operation))")
        guard requests.count == 3 else { return }
        #expect(requests[1].abandons == requests[0].id, "the abandon names \(requests[1].abandons ?? -1), the search was \(requests[0].id)")
        #expect(requests[1].id != requests[0].id && requests[2].id != requests[1].id)
    }

    struct Enough: Error {}

    @Test("a reader that stops mid-answer (it throws) abandons the search: the server gets an AbandonRequest for the search's message id before the unbind, and stops sending")
    func throwingReaderAbandons() async throws {
        let responder = try await Responder(Self.untilAbandoned)
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .seconds(30))
        var seen = 0
        await #expect(throws: Enough.self) {
            try await connection.closing { connection in
                _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 10) { entries in
                    seen += entries.count
                    throw Enough()
                }
            }
        }
        #expect(seen == 10)
        try await responder.connectionsEnded()
        Self.expectAbandoned(responder.requests.withLock { $0 })
    }

    @Test("a search whose task is cancelled mid-answer is abandoned the same way")
    func cancelledReaderAbandons() async throws {
        let responder = try await Responder(Self.untilAbandoned)
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .seconds(30))
        let seen = Atomic(0)
        let search = Task {
            try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 10) { entries in
                seen.add(entries.count, ordering: .relaxed)
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        await #expect(throws: CancellationError.self) { _ = try await search.value }
        await connection.close()
        #expect(seen.load(ordering: .relaxed) >= 10)
        try await responder.connectionsEnded()
        Self.expectAbandoned(responder.requests.withLock { $0 })
    }

    /// A paged-results control's size and cookie, from a request's controls.
    static func pagedControl(_ controls: ASN1Node?) -> (size: Int, cookie: [UInt8])? {
        guard let controls, case .constructed(let list) = controls.content else { return nil }
        for control in list {
            guard case .constructed(let fields) = control.content else { continue }
            let parts = Array(fields)
            guard let oid = try? ASN1OctetString(derEncoded: parts[0]), String(decoding: oid.bytes, as: UTF8.self) == LDAPControl.pagedResultsOID,
                  let value = try? ASN1OctetString(derEncoded: parts[parts.count - 1]), let node = try? BER.parse(Array(value.bytes)),
                  case .constructed(let items) = node.content else { continue }
            let pair = Array(items)
            guard pair.count == 2, let size = try? Int(derEncoded: pair[0]), let cookie = try? ASN1OctetString(derEncoded: pair[1]) else { continue }
            return (size, Array(cookie.bytes))
        }
        return nil
    }

    @Test("a paged search whose reader stops between pages is abandoned as RFC 2696 says: a request of size 0 with the server's last cookie")
    func pagedSearchAbandoned() async throws {
        // Pages of two entries for ever: page n's cookie is "p<n>"; a request of size 0 ends the search.
        let responder = try await Responder { responder, send, id in
            guard let request = responder.requests.withLock({ $0.last { $0.id == id } }), let (size, cookie) = Self.pagedControl(request.controls)
            else { return }
            let page = Int(String(decoding: cookie.dropFirst(), as: UTF8.self)) ?? 0
            if size > 0 { for index in 0..<2 { try send(try Responder.entry(id: id, index: page * 2 + index)) } }
            try send(try Responder.message(id: id) { s in
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 5, tagClass: .application)) { s in
                    s.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }
                    try ASN1OctetString(contentBytes: []).serialize(into: &s)
                    try ASN1OctetString(contentBytes: []).serialize(into: &s)
                }
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try ASN1OctetString(contentBytes: ArraySlice(LDAPControl.pagedResultsOID.utf8)).serialize(into: &s)
                        var value = DER.Serializer()
                        try value.appendConstructedNode(identifier: .sequence) { v in
                            try v.serialize(0)
                            try ASN1OctetString(contentBytes: size > 0 ? ArraySlice("p\(page + 1)".utf8) : []).serialize(into: &v)
                        }
                        try ASN1OctetString(contentBytes: ArraySlice(value.serializedBytes)).serialize(into: &s)
                    }
                }
            })
        }
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .seconds(30))
        var pages: [[String]] = []
        await #expect(throws: Enough.self) {
            try await connection.closing { connection in
                try await connection.searchPaged(base: "DC=test", filter: "(objectClass=*)", pageSize: 2) { page in
                    pages.append(page.map(\.dn))
                    if pages.count == 2 { throw Enough() }
                }
            }
        }
        #expect(pages == [["CN=u0,DC=test", "CN=u1,DC=test"], ["CN=u2,DC=test", "CN=u3,DC=test"]])
        try await responder.connectionsEnded()
        let requests = responder.requests.withLock { $0 }
        #expect(requests.map(\.operation) == [3, 3, 3, 2], "operations: \(requests.map(\.operation))")
        let paged = requests.filter { $0.operation == 3 }.map { Self.pagedControl($0.controls) }
        #expect(paged.map { $0?.size } == [2, 2, 0])
        #expect(paged.map { $0.map { String(decoding: $0.cookie, as: UTF8.self) } } == ["", "p1", "p2"])
    }

    @Test("the collecting search has the same deadline on silence")
    func collectingSearch() async throws {
        let responder = try await Responder(Self.steady(8))
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .milliseconds(800))
        let result = try await connection.closing { connection in
            try await connection.search(base: "DC=test", filter: "(objectClass=*)")
        }
        #expect(result.entries.count == 8)
    }

    @Test("a server that goes silent mid-answer for longer than the timeout fails the search with a clear error")
    func silenceMidAnswer() async throws {
        let responder = try await Responder { _, send, id in
            for index in 0..<3 { try send(try Responder.entry(id: id, index: index)) }
            // and then nothing more
        }
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .milliseconds(300))
        var seen = 0
        await #expect {
            try await connection.closing { connection in
                _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 1) { seen += $0.count }
            }
        } throws: { error in
            (error as? LDAPError)?.message == "the search request got nothing from the server for 300 ms"
        }
        #expect(seen == 3)
    }

    @Test("a server that works out the whole answer before sending any (Samba's DirSync) has firstAnswer to begin, not the timeout")
    func firstAnswer() async throws {
        let script: Responder.Script = { _, send, id in
            Thread.sleep(forTimeInterval: 1.2)
            for index in 0..<5 { try send(try Responder.entry(id: id, index: index)) }
            try send(try Responder.done(id: id))
        }
        let patient = try await Responder(script), hasty = try await Responder(script)
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(patient.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .milliseconds(400))
        var count = 0
        try await connection.closing { connection in
            _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", firstAnswer: .seconds(5)) { count += $0.count }
        }
        #expect(count == 5)
        let other = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(hasty.port)", tls: LDAPTLS(mode: .none),
                                                     timeout: .milliseconds(400))
        await #expect {
            try await other.closing { connection in
                _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)") { _ in }
            }
        } throws: { error in
            (error as? LDAPError)?.message == "the search request got nothing from the server for 400 ms"
        }
    }

    @Test("once the server has begun, its silence is limited by the timeout, not by the longer wait for the first answer")
    func silenceAfterTheFirstAnswer() async throws {
        // Three entries at once, then silence until the client goes (or, if it waits, the end of the search 20 s later:
        // well before the first answer's minute, long after the timeout).
        let responder = try await Responder { responder, send, id in
            for index in 0..<3 { try send(try Responder.entry(id: id, index: index)) }
            let gone = DispatchSemaphore(value: 0)
            responder.closed.withLock { $0.last }?.whenComplete { _ in gone.signal() }
            _ = gone.wait(timeout: .now() + 20)
            try send(try Responder.done(id: id))
        }
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .milliseconds(300))
        var seen = 0
        await #expect {
            try await connection.closing { connection in
                _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 1, firstAnswer: .seconds(60)) { seen += $0.count }
            }
        } throws: { error in
            (error as? LDAPError)?.message == "the search request got nothing from the server for 300 ms"
        }
        #expect(seen == 3)
    }

    @Test("a consumer slower than the server holds back reading: the server waits on TCP, and every entry arrives after")
    func backPressure() async throws {
        let total = 3_000, size = 16 << 10  // 48 MB in all
        let responder = try await Responder { _, send, id in
            let entry = try Responder.entry(id: id, index: 0, size: size)
            for _ in 0..<total { try send(entry) }
            try send(try Responder.done(id: id))
        }
        // A timeout shorter than the consumer's pause: waiting for the consumer is not the server's silence.
        let connection = try await LDAPConnection.connect(url: "ldap://127.0.0.1:\(responder.port)", tls: LDAPTLS(mode: .none),
                                                          timeout: .seconds(2))
        var received = 0, writtenWhilePaused = -1
        try await connection.closing { connection in
            _ = try await connection.search(base: "DC=test", filter: "(objectClass=*)", chunk: 10) { entries in
                if received == 0 {
                    // Stay in the first chunk until the responder has written all it can (its count stops rising for
                    // 3 s, longer than the timeout).
                    var last = -1
                    var steady = 0
                    while steady < 30 {
                        try await Task.sleep(for: .milliseconds(100))
                        let now = responder.written.load(ordering: .relaxed)
                        steady = now == last ? steady + 1 : 0
                        last = now
                    }
                    writtenWhilePaused = last
                }
                received += entries.count
            }
        }
        #expect(received == total)
        // Without back pressure the client reads the whole answer into memory at once and the responder writes
        // all 3,000 entries; with it, the client holds two chunks and the kernel's socket buffers hold the rest.
        #expect(writtenWhilePaused >= 10 && writtenWhilePaused < total / 2, "written while the consumer paused: \(writtenWhilePaused)")
    }
}
