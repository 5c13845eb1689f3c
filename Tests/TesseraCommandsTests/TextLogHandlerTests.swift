import Foundation
import Logging
import Synchronization
import Testing
@testable import TesseraCommands

/// `serve --log-format text` writes with `TextLogHandler`, which must write the lines swift-log's `StreamLogHandler`
/// wrote, byte for byte (operators' parsers and the interop tests read them).
@Suite("Text log lines are StreamLogHandler's, byte for byte")
struct TextLogHandlerTests {
    /// Collects what a `StreamLogHandler` writes.
    final class Captured: Sendable {
        let text = Mutex("")
    }

    struct Stream: TextOutputStream, Sendable {
        let captured: Captured
        mutating func write(_ string: String) { captured.text.withLock { $0 += string } }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "the disk is full\nsecond line" }
    }

    static let provider = Logger.MetadataProvider { ["trace-id": "abc", "request-id": "from the provider"] }

    /// Handlers' own metadata, a provider or none, and events with every kind of value.
    static let cases: [(name: String, label: String, own: Logger.Metadata, provider: Logger.MetadataProvider?, event: LogEvent)] = [
        ("an access line", "tessera", ["hb.request.id": "1f"], nil, LogEvent(
            level: .info, message: "request", metadata: [
                "request-id": "13087b1f-4c3e-46da-9dbe-6796cedef1de", "method": "POST", "route": "/v1.0/users",
                "status": .stringConvertible(201), "duration_ms": .stringConvertible(24), "tenant": "f8b4bb0d", "peer": "127.0.0.1",
            ], source: "Server", file: #fileID, function: #function, line: #line)),
        ("no metadata at all", "tessera", [:], nil,
         LogEvent(level: .notice, message: "started", metadata: nil, source: nil, file: "Server/Server.swift", function: "f", line: 1)),
        ("only the handler's metadata, an empty label", "", ["a": "1", "B": "2", "_x": "3"], nil,
         LogEvent(level: .warning, message: "warned", metadata: [:], source: "S", file: "f", function: "f", line: 2)),
        ("arrays, dictionaries, unicode and a line break", "tessera.tls", ["z": ["nested": ["deep": [.stringConvertible(1), "two"]]]], nil, LogEvent(
            level: .error, message: "Ünïcödé\nsecond line", metadata: [
                "list": ["a", .stringConvertible(3.5), ["k": "v"]], "empty": [], "dict": [:], "é": "acute", "Z": "upper",
                "z": "overrides the handler's", "with space": "a b", "emoji": "👩🏽‍💻",
            ], source: "Mod", file: "f", function: "f", line: 3)),
        ("a provider and an error", "tessera", ["request-id": "the handler's"], provider, LogEvent(
            level: .critical, message: "failed", error: Failure(), metadata: ["status": .stringConvertible(500), "trace-id": "explicit"],
            source: "Server", file: "f", function: "f", line: 4)),
        ("a provider alone", "x", [:], provider,
         LogEvent(level: .debug, message: "", metadata: nil, source: "", file: "f", function: "f", line: 5)),
        ("trace level", "x", ["k": .stringConvertible(Int64.max)], nil,
         LogEvent(level: .trace, message: "t", metadata: ["k2": .stringConvertible(-0.0)], source: "S", file: "f", function: "f", line: 6)),
    ]

    @Test("each line equals StreamLogHandler's but for the time, which TextLogHandler gives as StreamLogHandler does",
          arguments: cases.map(\.name))
    func sameLines(name: String) throws {
        let entry = try #require(Self.cases.first { $0.name == name })
        // A handler's metadata set member by member, as Hummingbird sets its request id.
        var text = TextLogHandler(label: entry.label, level: .trace, metadataProvider: entry.provider, write: { _ in })
        let captured = Captured()
        var stream = StreamLogHandler(label: entry.label, stream: Stream(captured: captured), metadataProvider: entry.provider)
        stream.logLevel = .trace
        for (key, value) in entry.own {
            text[metadataKey: key] = value
            stream[metadataKey: key] = value
        }
        stream.log(event: entry.event)
        let expected = captured.text.withLock { $0 }
        // StreamLogHandler's line starts with its time and a space; the rest must be the same.
        let space = try #require(expected.firstIndex(of: " "))
        let time = String(expected[..<space])
        #expect(text.line(entry.event, timestamp: time) == expected)
        #expect(text.line(entry.event, timestamp: "T").hasPrefix("T "))
    }

    @Test("the time is StreamLogHandler's: local time as %Y-%m-%dT%H:%M:%S%z")
    func timestamp() throws {
        // Both read the clock; across a second's turn they may differ, so they are read again until both name one second.
        var matched = false
        for _ in 0..<5 where !matched {
            let captured = Captured()
            StreamLogHandler(label: "t", stream: Stream(captured: captured)).log(
                event: LogEvent(level: .info, message: "m", metadata: nil, source: "s", file: "f", function: "f", line: 1))
            let ours = TextLogHandler.timestamp()
            let theirs = captured.text.withLock { String($0.prefix { $0 != " " }) }
            matched = ours == theirs
        }
        #expect(matched)
        #expect(TextLogHandler.timestamp().utf8.count == "2026-12-07T21:39:09+0000".utf8.count)
    }

    @Test("the log level and a logger's metadata work through LoggingSystem's Logger as with any handler")
    func throughLogger() {
        let lines = Captured()
        var logger = Logger(label: "tessera") { label in
            TextLogHandler(label: label, level: .info, metadataProvider: nil, write: { line in lines.text.withLock { $0 += line } })
        }
        logger[metadataKey: "hb.request.id"] = "7"
        logger.debug("not written")
        logger.info("written", metadata: ["status": .stringConvertible(201)])
        let text = lines.text.withLock { $0 }
        #expect(!text.contains("not written"))
        #expect(text.hasSuffix(" info tessera: hb.request.id=7 status=201 [TesseraCommandsTests] written\n"), "\(text)")
        #expect(logger.logLevel == .info)
    }
}
