import NIOCore
import Synchronization

/// Bytes through one connection: from the client (`up`) and back to it (`down`).
final class TrafficCounter: Sendable {
    let up = Atomic<Int64>(0)
    let down = Atomic<Int64>(0)
}

/// Joins two channels on the same event loop byte for byte (a tunnel, or a plain request after its rewritten head):
/// what one reads the other writes, reads wait while the other side cannot write (backpressure), a half-close passes
/// through, and either side closing or idling closes both.
final class GlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let counter: TrafficCounter
    /// Whether this side faces the client (its reads count as bytes sent).
    private let facesClient: Bool

    private init(counter: TrafficCounter, facesClient: Bool) {
        self.counter = counter
        self.facesClient = facesClient
    }

    /// The handler for the client's channel and the one for the origin's.
    static func pair(counter: TrafficCounter) -> (client: GlueHandler, origin: GlueHandler) {
        let client = GlueHandler(counter: counter, facesClient: true)
        let origin = GlueHandler(counter: counter, facesClient: false)
        client.partner = origin
        origin.partner = client
        return (client, origin)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }
    private func partnerBecameWritable() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if facesClient {
            counter.up.add(Int64(buffer.readableBytes), ordering: .relaxed)
        } else {
            counter.down.add(Int64(buffer.readableBytes), ordering: .relaxed)
        }
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            partner?.partnerWriteEOF()
        } else if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
