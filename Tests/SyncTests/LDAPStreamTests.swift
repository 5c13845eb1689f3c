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
        let channel: any Channel
        /// How many messages the responder has handed to the kernel.
        let written = Atomic<Int>(0)
        var port: Int { channel.localAddress!.port! }

        typealias Script = @Sendable (Responder, _ send: @escaping @Sendable ([UInt8]) throws -> Void, _ id: Int) throws -> Void

        init(_ script: @escaping Script) async throws {
            let box = Mutex<Responder?>(nil)
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                // A small send buffer, so what the kernel holds for a client that does not read is small beside the answer.
                .childChannelOption(.socketOption(.so_sndbuf), value: 64 << 10)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(RequestReader { id in
                            guard let responder = box.withLock({ $0 }) else { return }
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

    /// Reads the client's first LDAPMessage and hands its message id on (the rest of the request does not matter here).
    final class RequestReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let onRequest: (Int) -> Void
        var received: [UInt8] = [], answered = false
        init(_ onRequest: @escaping (Int) -> Void) { self.onRequest = onRequest }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received += buffer.readBytes(length: buffer.readableBytes) ?? []
            guard !answered, let node = try? BER.parse(received), case .constructed(let parts) = node.content,
                  let first = parts.first(where: { _ in true }), let id = try? Int(derEncoded: first) else { return }
            answered = true
            onRequest(id)
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
