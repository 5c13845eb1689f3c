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

/// An LDAP v3 client connection (RFC 4511) over SwiftNIO, with LDAPS or StartTLS through swift-nio-ssl and BER
/// through swift-asn1. Requests may be sent from any task; each waits for its own response.
///
/// Every network wait has a deadline of `timeout`: the TCP connect, the TLS handshake, each request's response
/// (a bind, one search page) and the unbind on close. A wait that reaches it fails with an error and closes the
/// connection; nothing here can wait for ever on a server that stops answering or a connection that is gone.
public final class LDAPConnection: Sendable {
    let channel: any Channel
    let nextID = NIOLockedValueBox(1)
    let timeout: TimeAmount

    init(channel: any Channel, timeout: TimeAmount) {
        self.channel = channel
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
                        try channel.pipeline.syncOperations.addHandler(LDAPClientHandler())
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw error
        }
        let connection = LDAPConnection(channel: channel, timeout: timeout)
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

    func send(_ request: LDAPRequest, controls: [LDAPControl]) async throws -> LDAPReply {
        let id = nextID.withLockedValue { value in
            defer { value = value == Int(Int32.max) ? 1 : value + 1 }
            return value
        }
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

    /// One search request. Result codes other than success are errors, except sizeLimitExceeded (4) with entries.
    public func search(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = [],
                       controls: [LDAPControl] = [], sizeLimit: Int = 0) async throws -> LDAPSearchResult {
        let reply = try await send(.search(base: base, scope: scope, filter: try LDAPFilter(filter), attributes: attributes, sizeLimit: sizeLimit),
                                   controls: controls)
        guard reply.code == 0 || (reply.code == 4 && !reply.entries.isEmpty) else { throw LDAPError(resultCode: reply.code, reply.message) }
        return LDAPSearchResult(entries: reply.entries, references: reply.references, controls: reply.controls)
    }

    /// A search in pages of `pageSize` (RFC 2696), handing each page to `body` as it arrives.
    public func searchPaged(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = [],
                            controls: [LDAPControl] = [], pageSize: Int = 1000,
                            _ body: ([LDAPEntry]) async throws -> Void) async throws {
        var cookie: [UInt8] = []
        repeat {
            let page = try await search(base: base, scope: scope, filter: filter, attributes: attributes,
                                        controls: controls + [.pagedResults(size: pageSize, cookie: cookie)])
            try await body(page.entries)
            guard let control = page.controls.first(where: { $0.oid == LDAPControl.pagedResultsOID }) else { break }
            cookie = try control.cookie().cookie
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

/// Matches responses to requests by message id, collecting a search's entries until its SearchResultDone.
final class LDAPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundIn = LDAPOutgoing
    typealias OutboundOut = ByteBuffer

    private var pending: [Int: (promise: EventLoopPromise<LDAPReply>, reply: LDAPReply)] = [:]

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outgoing = unwrapOutboundIn(data)
        if let reply = outgoing.promise { pending[outgoing.id] = (reply, LDAPReply()) }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: outgoing.bytes)), promise: promise)
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
        let waiting = pending
        pending = [:]
        for (_, entry) in waiting { entry.promise.fail(error) }
    }
}
