public import NIOCore
public import NIOPosix
import NIOSSL
import NIOConcurrencyHelpers
import NIOTLS
import Foundation

/// How a connection is protected.
public struct LDAPTLS: Sendable {
    public enum Mode: Sendable { case none, ldaps, startTLS }
    public var mode: Mode
    /// PEM file of the certificate authorities to trust; the system's when nil.
    public var caFile: String?
    /// Accept any certificate (for tests against a server with a self-made certificate; never in production).
    public var insecureSkipVerify: Bool

    public init(mode: Mode, caFile: String? = nil, insecureSkipVerify: Bool = false) {
        self.mode = mode
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// A result of a search: the entries, referrals, and the controls on its SearchResultDone.
public struct LDAPSearchResult: Sendable {
    public var entries: [LDAPEntry]
    public var references: [String]
    public var controls: [LDAPControl]
}

/// The end of a streamed search (its entries went to the caller as they arrived): referrals, and the controls on its
/// SearchResultDone (a paged-results or DirSync cookie).
public struct LDAPSearchDone: Sendable {
    public var references: [String]
    public var controls: [LDAPControl]
}

/// An LDAP v3 client connection (RFC 4511) over SwiftNIO, with LDAPS or StartTLS through swift-nio-ssl and BER
/// through swift-asn1. Requests may be sent from any task; each waits for its own response.
///
/// Every network wait has a deadline of `timeout`: the TCP connect, the TLS handshake, each request's response
/// (a bind, a modify) and the unbind on close. A search's entries are streamed (``search(base:scope:filter:attributes:controls:sizeLimit:chunk:_:)``),
/// so its deadline is on silence: it fails when the server sends nothing for `timeout`, not when a long answer that
/// keeps arriving takes longer than that in all (Samba answers a first DirSync with the whole domain at once,
/// ignoring the control's size limit). A wait that reaches its deadline fails with an error and closes the
/// connection; nothing here can wait for ever on a server that stops answering or a connection that is gone.
public final class LDAPConnection: Sendable {
    let channel: any Channel
    /// Message ids, shared with the channel's handler (which writes an AbandonRequest when a search's reader stops).
    let ids: LDAPMessageIDs
    let timeout: TimeAmount

    init(channel: any Channel, ids: LDAPMessageIDs, timeout: TimeAmount) {
        self.channel = channel
        self.ids = ids
        self.timeout = timeout
    }

    /// Connects to `ldap://host[:port]` or `ldaps://host[:port]` (StartTLS with `tls.mode == .startTLS` on `ldap://`).
    public static func connect(url: String, tls: LDAPTLS, timeout: TimeAmount = .seconds(30),
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> LDAPConnection {
        let (secure, host, port) = try parse(url)
        let mode: LDAPTLS.Mode = secure ? .ldaps : tls.mode
        guard !(secure && tls.mode == .startTLS) else { throw LDAPError("StartTLS is for ldap:// URLs; ldaps:// is already TLS") }
        let context = mode == .none ? nil : try makeContext(tls)
        let serverName = host.isIPAddress ? nil : host
        let handshake = group.next().makePromise(of: Void.self)
        let ids = LDAPMessageIDs()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if mode == .ldaps, let context {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
                            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(handshake))
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LDAPFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(LDAPClientHandler(ids: ids))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw error
        }
        let connection = LDAPConnection(channel: channel, ids: ids, timeout: timeout)
        do {
            if mode == .startTLS, let context {
                let reply = try await connection.send(.extended(oid: "1.3.6.1.4.1.1466.20037"), controls: [])
                guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, "StartTLS refused: \(reply.message)") }
                // In one turn of the event loop, so the waiter is in place before the handshake can end.
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(handshake), position: .first)
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName),
                                                                   position: .first)
                }.get()
            } else if mode == .none {
                handshake.succeed(())
            }
            // A certificate that is not trusted fails here, at connect, not in whichever request comes first.
            try await connection.deadline(handshake, "the TLS handshake")
        } catch {
            handshake.fail(error)
            await connection.close()
            throw error
        }
        return connection
    }

    /// Waits for `promise` until the connection's timeout; past it, fails the wait with a clear error and closes the
    /// connection (which fails every other request on it too).
    func deadline<Value: Sendable>(_ promise: EventLoopPromise<Value>, _ what: String) async throws -> Value {
        let channel = self.channel, timeout = self.timeout
        let guardTask = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(LDAPError("\(what) took longer than \(timeout.nanoseconds / 1_000_000) ms"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in guardTask.cancel() }
        return try await promise.futureResult.get()
    }

    static func makeContext(_ tls: LDAPTLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if tls.insecureSkipVerify {
            configuration.certificateVerification = .none
        } else if let caFile = tls.caFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func parse(_ url: String) throws -> (secure: Bool, host: String, port: Int) {
        let secure: Bool
        var rest: Substring
        if url.lowercased().hasPrefix("ldaps://") {
            secure = true
            rest = url.dropFirst(8)
        } else if url.lowercased().hasPrefix("ldap://") {
            secure = false
            rest = url.dropFirst(7)
        } else {
            throw LDAPError("not an LDAP URL: \(url) (use ldap://host[:port] or ldaps://host[:port])")
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host = String(rest), port = secure ? 636 : 389
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {  // [IPv6]:port
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":"), let p = Int(after.dropFirst()) { port = p }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":"), let p = Int(host[host.index(after: colon)...]) {
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw LDAPError("no host in \(url)") }
        return (secure, host, port)
    }

    /// The next message id.
    func messageID() -> Int { ids.next() }

    func send(_ request: LDAPRequest, controls: [LDAPControl]) async throws -> LDAPReply {
        let id = messageID()
        let bytes = try request.encode(messageID: id, controls: controls)
        if case .unbind = request {
            let written = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(LDAPOutgoing(id: id, bytes: bytes, promise: nil), promise: written)
            try await deadline(written, "the unbind")
            return LDAPReply()
        }
        let promise = channel.eventLoop.makePromise(of: LDAPReply.self)
        // A write that fails never reaches the handler that would answer the request (a connection already closed
        // by the server or by a failed TLS handshake): it fails the request itself instead of leaving it waiting.
        channel.writeAndFlush(LDAPOutgoing(id: id, bytes: bytes, promise: promise)).whenFailure { promise.fail($0) }
        return try await deadline(promise, "the \(request.name) request")
    }

    /// A simple bind (RFC 4513 §5.1.3). An empty password is refused here: servers take it as an anonymous bind.
    public func bind(dn: String, password: String) async throws {
        guard !password.isEmpty else { throw LDAPError("an empty password would be an unauthenticated bind") }
        let reply = try await send(.bind(dn: dn, password: password), controls: [])
        guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, reply.message) }
    }

    /// One search request, its entries collected. Result codes other than success are errors, except
    /// sizeLimitExceeded (4) with entries. A large answer is better read with the streaming form below.
    public func search(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = [],
                       controls: [LDAPControl] = [], sizeLimit: Int = 0) async throws -> LDAPSearchResult {
        var entries: [LDAPEntry] = []
        let done = try await search(base: base, scope: scope, filter: filter, attributes: attributes, controls: controls,
                                    sizeLimit: sizeLimit) { entries += $0 }
        return LDAPSearchResult(entries: entries, references: done.references, controls: done.controls)
    }

    /// One search request whose entries are handed to `body` as they arrive, `chunk` at a time (the last chunk may be
    /// smaller), then its end with the SearchResultDone's controls. Memory is bounded by the chunk, not the answer:
    /// while `body` works, the connection buffers at most about two chunks and then stops reading from the socket,
    /// so a server that sends faster than the caller consumes waits (TCP flow control) instead of filling memory.
    /// The deadline is on silence: the search fails when the server sends nothing for the connection's timeout
    /// (time spent waiting for `body` does not count), or, before its first message, for `firstAnswer` (the
    /// connection's timeout when nil): a server may work out a whole answer before sending any of it (Samba does
    /// for DirSync, about 30 s for 100,000 users). Result codes other than success are errors (after `body`
    /// may have seen entries), except sizeLimitExceeded (4) with entries.
    ///
    /// A search whose reader stops before the server has ended it (`body` throws, the task is cancelled) is abandoned:
    /// an AbandonRequest for its message id goes to the server (RFC 4511 §4.11) before this returns, so the server
    /// stops working out and sending the rest of the answer (Samba's first DirSync is the whole domain), and whatever
    /// of it is already on the way is read and dropped. The connection stays usable (a caller then unbinds and
    /// closes it, as ``closing(isolation:_:)`` does).
    public func search(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = [],
                       controls: [LDAPControl] = [], sizeLimit: Int = 0, chunk: Int = 1000, firstAnswer: Duration? = nil,
                       _ body: ([LDAPEntry]) async throws -> Void) async throws -> LDAPSearchDone {
        precondition(chunk > 0, "a chunk holds at least one entry")
        let id = messageID()
        let bytes = try LDAPRequest.search(base: base, scope: scope, filter: try LDAPFilter(filter), attributes: attributes, sizeLimit: sizeLimit)
            .encode(messageID: id, controls: controls)
        let produced = LDAPSearchEvents.makeSequence(backPressureStrategy: .init(lowWatermark: chunk, highWatermark: 2 * chunk),
                                                     finishOnDeinit: true, delegate: LDAPSearchDemand(channel: channel, id: id))
        let source = produced.source
        // As in `send`: a write that fails never reaches the handler, so it ends the search itself.
        channel.writeAndFlush(LDAPOutgoing(id: id, bytes: bytes, promise: nil, stream: LDAPStreamTarget(source: source, silence: timeout,
                                                                                                  firstAnswer: firstAnswer.map(TimeAmount.init) ?? timeout)))
            .whenFailure { source.finish($0) }
        let iterator = produced.sequence.makeAsyncIterator()
        var batch: [LDAPEntry] = [], references: [String] = [], delivered = 0
        batch.reserveCapacity(chunk)
        do {
            while let event = try await iterator.next() {
                switch event {
                case .entry(let entry):
                    batch.append(entry)
                    guard batch.count == chunk else { continue }
                    delivered += batch.count
                    try await body(batch)
                    batch.removeAll(keepingCapacity: true)
                case .reference(let uris):
                    references += uris
                case .done(let reply):
                    guard reply.code == 0 || (reply.code == 4 && delivered + batch.count > 0) else {
                        throw LDAPError(resultCode: reply.code, reply.message)
                    }
                    if !batch.isEmpty { try await body(batch) }
                    return LDAPSearchDone(references: references, controls: reply.controls)
                }
            }
        } catch {
            await stopReading(search: id)
            throw error
        }
        // Cancelled (or the connection closed, which ended the search already).
        await stopReading(search: id)
        try Task.checkCancellation()
        throw LDAPError("the connection closed before the search ended")
    }

    /// Tells the handler that the reader of search `id` is gone, and waits until it has taken that in: the rest of the
    /// answer is dropped, and a search the server has not ended yet is abandoned, its AbandonRequest written before
    /// anything sent after this (an unbind). Nothing happens for a search that already ended. (The same signal comes
    /// again when the search's sequence goes away; the handler acts on the first.)
    func stopReading(search id: Int) async {
        guard channel.isActive else { return }
        try? await channel.triggerUserOutboundEvent(LDAPStreamSignal.gone(id)).get()
    }

    /// A search in pages of `pageSize` (RFC 2696), handing each page to `body` as it arrives. When `body` throws
    /// before the last page, the paged search is abandoned as RFC 2696 §3 says (a request of size 0 with the server's
    /// last cookie, so it lets go of the search's state) before the error is passed on; a page cut off while it
    /// arrives (the task cancelled) is abandoned as any search is (an AbandonRequest).
    public func searchPaged(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = [],
                            controls: [LDAPControl] = [], pageSize: Int = 1000,
                            _ body: ([LDAPEntry]) async throws -> Void) async throws {
        var cookie: [UInt8] = []
        repeat {
            let page = try await search(base: base, scope: scope, filter: filter, attributes: attributes,
                                        controls: controls + [.pagedResults(size: pageSize, cookie: cookie)])
            let next = try page.controls.first(where: { $0.oid == LDAPControl.pagedResultsOID })?.cookie().cookie ?? []
            do {
                try await body(page.entries)
            } catch {
                if !next.isEmpty, !Task.isCancelled {
                    _ = try? await search(base: base, scope: scope, filter: filter, attributes: attributes,
                                          controls: controls + [.pagedResults(size: 0, cookie: next)])
                }
                throw error
            }
            cookie = next
        } while !cookie.isEmpty
    }

    /// Changes attributes of one entry.
    public func modify(dn: String, _ changes: [LDAPModification]) async throws {
        let reply = try await send(.modify(dn: dn, changes: changes), controls: [])
        guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, reply.message) }
    }

    /// Adds an entry.
    public func add(dn: String, _ attributes: [(String, [[UInt8]])]) async throws {
        let reply = try await send(.add(dn: dn, attributes: attributes), controls: [])
        guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, reply.message) }
    }

    /// Renames or moves an entry (`newSuperior`: its new parent).
    public func modifyDN(dn: String, newRDN: String, newSuperior: String? = nil) async throws {
        let reply = try await send(.modifyDN(dn: dn, newRDN: newRDN, newSuperior: newSuperior), controls: [])
        guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, reply.message) }
    }

    /// Deletes an entry.
    public func delete(dn: String) async throws {
        let reply = try await send(.delete(dn: dn), controls: [])
        guard reply.code == 0 else { throw LDAPError(resultCode: reply.code, reply.message) }
    }

    /// Unbinds and closes, within the connection's timeout; when this returns the connection is closed.
    public func close() async {
        if channel.isActive { _ = try? await send(.unbind, controls: []) }
        channel.close(promise: nil)
        try? await channel.closeFuture.get()
    }

    /// Runs `body` with this connection and closes it when `body` returns or throws, waiting for the close.
    public func closing<Result>(isolation: isolated (any Actor)? = #isolation,
                                _ body: (LDAPConnection) async throws -> Result) async throws -> Result {
        do {
            let result = try await body(self)
            await close()
            return result
        } catch {
            await close()
            throw error
        }
    }
}

/// A connection's message ids (RFC 4511 §4.1.1.1: 1 to 2³¹ − 1, then from 1 again), for its requests and the
/// AbandonRequests its handler writes.
final class LDAPMessageIDs: Sendable {
    private let value = NIOLockedValueBox(1)

    func next() -> Int {
        value.withLockedValue { value in
            defer { value = value == Int(Int32.max) ? 1 : value + 1 }
            return value
        }
    }
}

/// Completes its promise when the TLS handler before it has finished the handshake, or fails it with what ended
/// the connection first.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<Void>

    init(_ promise: EventLoopPromise<Void>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(LDAPError("the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}

extension String {
    var isIPAddress: Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, self, &v4) == 1 || inet_pton(AF_INET6, self, &v6) == 1
    }
}

/// What a request gets back: its result, and for a search its entries, referrals and controls.
struct LDAPReply: Sendable {
    var code = 0
    var message = ""
    var entries: [LDAPEntry] = []
    var references: [String] = []
    var controls: [LDAPControl] = []
}

struct LDAPOutgoing: Sendable {
    let id: Int
    let bytes: [UInt8]
    let promise: EventLoopPromise<LDAPReply>?
    /// For a streamed search (then `promise` is nil): where its messages go.
    var stream: LDAPStreamTarget? = nil
}

/// What a streamed search's consumer reads, in order: entries and referrals as they arrive, then its result.
enum LDAPSearchEvent: Sendable {
    case entry(LDAPEntry)
    case reference([String])
    case done(LDAPReply)
}

typealias LDAPSearchEvents = NIOThrowingAsyncSequenceProducer<LDAPSearchEvent, any Error,
                                                              NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, LDAPSearchDemand>

/// A streamed search's sink in the handler, and how long the server may stay silent before the search fails:
/// `firstAnswer` before its first message, `silence` after.
struct LDAPStreamTarget: Sendable {
    let source: LDAPSearchEvents.Source
    let silence: TimeAmount
    let firstAnswer: TimeAmount
}

/// What a streamed search's consumer tells the handler (as an outbound user event, so on the event loop).
enum LDAPStreamSignal: Sendable {
    /// The consumer's buffer ran low: read from the socket again.
    case more(Int)
    /// The consumer is gone (finished, failed or cancelled): drop the rest of the search's answer, and abandon the
    /// search if the server has not ended it.
    case gone(Int)
}

/// The consumer side's back pressure, passed to the channel's handler on its event loop.
struct LDAPSearchDemand: NIOAsyncSequenceProducerDelegate {
    let channel: any Channel
    let id: Int
    func produceMore() { channel.triggerUserOutboundEvent(LDAPStreamSignal.more(id), promise: nil) }
    func didTerminate() { channel.triggerUserOutboundEvent(LDAPStreamSignal.gone(id), promise: nil) }
}

/// Splits the byte stream into LDAPMessages (a BER SEQUENCE each, definite length).
struct LDAPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    /// Larger messages are refused (a server, or something posing as one, cannot make the client buffer more).
    static let maximum = 64 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 2, let tag = buffer.getInteger(at: start, as: UInt8.self),
              let first = buffer.getInteger(at: start + 1, as: UInt8.self) else { return .needMoreData }
        guard tag == 0x30 else { throw LDAPError("the server sent something that is not an LDAPMessage") }
        var length = Int(first), header = 2
        if first >= 0x80 {
            let count = Int(first & 0x7f)
            guard (1...4).contains(count) else { throw LDAPError("unsupported BER length (indefinite or over 4 bytes)") }
            guard buffer.readableBytes >= 2 + count else { return .needMoreData }
            length = 0
            for i in 0..<count { length = length << 8 | Int(buffer.getInteger(at: start + 2 + i, as: UInt8.self)!) }
            header += count
        }
        guard length <= Self.maximum else { throw LDAPError("an LDAPMessage of \(length) bytes is over the limit") }
        guard buffer.readableBytes >= header + length, let bytes = buffer.readBytes(length: header + length) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(bytes))
        return .continue
    }
}

/// Matches responses to requests by message id: a request's reply completes its promise; a streamed search's
/// entries go to its consumer as they arrive. When a consumer's buffer is full, the handler holds back the channel's
/// reads (autoRead asks; this handler does not pass the read on) until the consumer asks for more, so the socket,
/// not memory, holds what the server sends meanwhile. A streamed search fails when the server is silent for its
/// `silence` while the handler is reading.
final class LDAPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundIn = LDAPOutgoing
    typealias OutboundOut = ByteBuffer

    /// The connection's message ids: an AbandonRequest is a message of its own.
    private let ids: LDAPMessageIDs

    init(ids: LDAPMessageIDs) { self.ids = ids }

    private var pending: [Int: (promise: EventLoopPromise<LDAPReply>, reply: LDAPReply)] = [:]

    /// A streamed search in progress: its sink, when the server last sent something for it (and whether it has),
    /// its silence deadline.
    private struct Stream {
        let target: LDAPStreamTarget
        var heard: NIODeadline
        var answered = false
        var watchdog: Scheduled<Void>?
        /// How long the server may be silent now.
        var limit: TimeAmount { answered ? target.silence : target.firstAnswer }
    }
    private var streams: [Int: Stream] = [:]
    /// Streams whose consumer has a full buffer; while any has, reads are held back.
    private var full: Set<Int> = []
    /// A read that was held back.
    private var readHeld = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outgoing = unwrapOutboundIn(data)
        if let reply = outgoing.promise { pending[outgoing.id] = (reply, LDAPReply()) }
        if let target = outgoing.stream {
            streams[outgoing.id] = Stream(target: target, heard: .now())
            watch(context: context, id: outgoing.id, in: target.firstAnswer)
        }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: outgoing.bytes)), promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        if full.isEmpty { context.read() } else { readHeld = true }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let signal = event as? LDAPStreamSignal else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch signal {
        case .more(let id):
            full.remove(id)
        case .gone(let id):
            if let stream = streams.removeValue(forKey: id) {
                stream.watchdog?.cancel()
                // The server has not ended the search (it would have been removed then): ask it to stop (RFC 4511
                // §4.11; no response comes, and what it sends meanwhile for the search is dropped below).
                if let bytes = try? LDAPRequest.abandon(id: id).encode(messageID: ids.next(), controls: []) {
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                }
            }
            full.remove(id)
        }
        if full.isEmpty, readHeld {
            readHeld = false
            // Time spent waiting for the consumer was not the server's silence.
            let now = NIODeadline.now()
            for id in streams.keys { streams[id]!.heard = now }
            context.read()
        }
        promise?.succeed(())
    }

    /// Checks stream `id` for silence after `delay`: the search fails if the server sent nothing for it in its
    /// limit while reads were not held back; otherwise the check moves to the new deadline.
    private func watch(context: ChannelHandlerContext, id: Int, in delay: TimeAmount) {
        streams[id]?.watchdog = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            guard let stream = streams[id] else { return }
            let now = NIODeadline.now()
            if !full.isEmpty || readHeld {
                streams[id]!.heard = now
                watch(context: context, id: id, in: stream.limit)
            } else if now - stream.heard < stream.limit {
                watch(context: context, id: id, in: stream.limit - (now - stream.heard))
            } else {
                streams[id] = nil
                stream.target.source.finish(LDAPError("the search request got nothing from the server for \(stream.limit.nanoseconds / 1_000_000) ms"))
                // As a request's deadline does: the connection is closed, which fails every other request on it.
                context.close(promise: nil)
            }
        }
    }

    /// Passes a streamed search's message to its consumer; false when `id` is not a streamed search.
    private func stream(context: ChannelHandlerContext, id: Int, _ response: LDAPResponse, controls: [LDAPControl]) -> Bool {
        guard let stream = streams[id] else { return false }
        let yielded: LDAPSearchEvents.Source.YieldResult
        if case .result = response {} else {
            streams[id]!.heard = .now()
            if !stream.answered {
                // The server has begun: from now on its silence is limited by `silence`, not by the first answer's
                // wait (the check scheduled for that could be minutes away).
                streams[id]!.answered = true
                stream.watchdog?.cancel()
                watch(context: context, id: id, in: stream.target.silence)
            }
        }
        switch response {
        case .entry(let entry):
            yielded = stream.target.source.yield(.entry(entry))
        case .reference(let uris):
            yielded = stream.target.source.yield(.reference(uris))
        case .result(_, let code, let message):
            streams[id] = nil
            stream.watchdog?.cancel()
            _ = stream.target.source.yield(.done(LDAPReply(code: code, message: message, controls: controls)))
            stream.target.source.finish()
            return true
        }
        if yielded == .stopProducing { full.insert(id) }
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let decoded: (id: Int, response: LDAPResponse, controls: [LDAPControl])
        do {
            decoded = try LDAPResponse.decode(unwrapInboundIn(data))
        } catch {
            failAll(error)
            context.close(promise: nil)
            return
        }
        if decoded.id == 0 {
            // An unsolicited notification (notice of disconnection): the server is going away.
            failAll(LDAPError("the server ended the connection"))
            context.close(promise: nil)
            return
        }
        if stream(context: context, id: decoded.id, decoded.response, controls: decoded.controls) { return }
        guard pending[decoded.id] != nil else { return }
        switch decoded.response {
        case .entry(let entry):
            // In place: copying the reply out and back would copy every entry so far for each new one.
            pending[decoded.id]!.reply.entries.append(entry)
        case .reference(let uris):
            pending[decoded.id]!.reply.references += uris
        case .result(_, let code, let message):
            guard var waiting = pending.removeValue(forKey: decoded.id) else { return }
            waiting.reply.code = code
            waiting.reply.message = message
            waiting.reply.controls = decoded.controls
            waiting.promise.succeed(waiting.reply)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(LDAPError("the connection closed"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        let waiting = pending, streaming = streams
        pending = [:]
        streams = [:]
        full = []
        for (_, entry) in waiting { entry.promise.fail(error) }
        for (_, stream) in streaming {
            stream.watchdog?.cancel()
            stream.target.source.finish(error)
        }
    }
}
