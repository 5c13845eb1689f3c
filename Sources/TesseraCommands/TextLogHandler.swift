import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// `serve --log-format text` (the default): the lines swift-log's `StreamLogHandler` writes to standard output, byte for
/// byte, at less cost a line. `StreamLogHandler` rendered its whole metadata to text whenever a member was set (Hummingbird
/// sets a request id on a copy of its logger for every request, whether anything is logged or not), sorted the members
/// as (key, value) pairs and formatted each through string interpolation, and formatted the time with `localtime` and
/// `strftime` into a fresh 255-byte buffer for each line: together about 2.5% of a `POST /users`' CPU with its one
/// access line a request. Here metadata is rendered only when a line is written, into one string, and the time's text is
/// kept for the second it names. `TextLogHandlerTests` compares the lines with `StreamLogHandler`'s. Unlike
/// `StreamLogHandler`, metadata whose name says it holds a credential is written as `[redacted]`, as the JSON format does
/// (`LogRedaction`).
struct TextLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// Where a finished line goes (standard output, flushed, as `StreamLogHandler.standardOutput` writes).
    let write: @Sendable (String) -> Void

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
         write: @escaping @Sendable (String) -> Void = TextLogHandler.standardOutput) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.write = write
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        write(line(event, timestamp: Self.timestamp()))
    }

    /// The line `StreamLogHandler` writes for `event`, with `timestamp` as its time.
    func line(_ event: LogEvent, timestamp: String) -> String {
        // The members as StreamLogHandler merges them: the handler's, the provider's, the event's, then the error's.
        var merged = metadata
        let provided = metadataProvider?.get() ?? [:]
        if !provided.isEmpty { merged.merge(provided) { _, provided in provided } }
        if let explicit = event.metadata, !explicit.isEmpty { merged.merge(explicit) { _, explicit in explicit } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line = timestamp
        line.reserveCapacity(timestamp.utf8.count + 64 + merged.count * 48)
        line += " "
        line += "\(event.level)"
        if !label.isEmpty { line += " " }
        line += label
        line += ":"
        // Keys sorted as String sorts them (StreamLogHandler's `<` on the keys), each `key=value`, one space apart.
        for key in merged.keys.sorted() {
            line += " "
            line += key
            line += "="
            line += "\(LogRedaction.redacted(merged[key]!, key: key))"
        }
        line += " ["
        line += event.source
        line += "] "
        line += "\(event.message)"
        line += "\n"
        return line
    }

    /// The local time as `StreamLogHandler` writes it (`localtime`, then `strftime` with `%Y-%m-%dT%H:%M:%S%z`), formatted
    /// once a second (a zone's offsets change only at whole seconds). `localtime` is called under the lock: its result is
    /// one buffer for the whole process.
    static func timestamp() -> String {
        var now = time(nil)
        return lastTimestamp.withLock { last in
            if last.second == now { return last.text }
            guard let local = localtime(&now) else { return "<unknown>" }
            var buffer = [Int8](repeating: 0, count: 255)
            strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", local)
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            last = (now, text)
            return text
        }
    }

    private static let lastTimestamp = Mutex<(second: time_t, text: String)>((-1, ""))

    /// Writes a line to standard output in one `write` (as `say` and the JSON handler write; swift-log's stream wrote it
    /// through stdio and flushed it at once, which also came to one `write` a line), the rest again if it is cut short.
    @Sendable static func standardOutput(_ line: String) {
        write(line, to: STDOUT_FILENO)
    }

    /// The same to standard error (`tessera bench signin`'s server, whose standard output is the report).
    @Sendable static func standardError(_ line: String) {
        write(line, to: STDERR_FILENO)
    }

    private static func write(_ line: String, to descriptor: Int32) {
        var line = line
        line.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if written > 0 {
                    done += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
