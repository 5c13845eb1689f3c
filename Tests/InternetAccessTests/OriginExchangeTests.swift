import NIOCore
import NIOHTTP1
import Testing
@testable import InternetAccess

/// The decision both proxy paths make when an origin connection closes under a request (``OriginExchange``); the
/// end-to-end behaviour is in `ProxyKeepAliveTests` and `ProxyInspectedStreamingTests`.
@Suite struct OriginExchangeTests {
    private let head = HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat"))
    private let body = HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "{\"prompt\":\"hi\"}")))

    @Test func aWholeRequestOnAReusedConnectionIsSentOnceMore() {
        var exchange = OriginExchange()
        for part in [head, body, .end(nil)] { exchange.sending(part) }
        let after = exchange.originClosed(reused: true, sentWhole: true)
        #expect(after == .resend([head, body, .end(nil)]))
        // The second connection closing too is the origin's answer: no third try.
        for part in [head, body, .end(nil)] { exchange.sending(part) }
        let again = exchange.originClosed(reused: true, sentWhole: true)
        #expect(again == .unanswered)
    }

    @Test func aNewConnectionOrAPartlySentRequestIsNotSentAgain() {
        var fresh = OriginExchange()
        fresh.sending(head)
        let after = fresh.originClosed(reused: false, sentWhole: true)
        #expect(after == .unanswered)
        var partial = OriginExchange()
        partial.sending(head)
        let partly = partial.originClosed(reused: true, sentWhole: false)
        #expect(partly == .unanswered)
    }

    @Test func aStreamedBodyCannotBeSentAgain() {
        var exchange = OriginExchange()
        exchange.sending(head)
        exchange.streamed()
        exchange.sending(body)
        #expect(exchange.replay == nil)
        let after = exchange.originClosed(reused: true, sentWhole: true)
        #expect(after == .unanswered)
    }

    @Test func aCloseDuringTheAnswerCutsItShort() {
        var exchange = OriginExchange()
        exchange.sending(head)
        let first = exchange.beginAnswer(), second = exchange.beginAnswer()
        #expect(first && !second)
        #expect(exchange.replay == nil)
        let after = exchange.originClosed(reused: true, sentWhole: true)
        #expect(after == .cutShort)
    }
}
