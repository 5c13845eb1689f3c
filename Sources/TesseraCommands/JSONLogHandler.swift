import ArgumentParser
import Foundation
import Logging
import TesseraCore

/// One JSON object a line (`serve --log-format json`): `time`, `level`, `logger`, `message` and the metadata, for log
/// shippers. Metadata whose name says it holds a credential is written as `[redacted]` (`LogRedaction`), whoever logged it.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        FileHandle.standardOutput.write(Data(line(event, time: ISO8601DateFormatter().string(from: Date())).utf8))
    }

    /// The line written for `event` at `time`, its newline included.
    func line(_ event: LogEvent, time: String) -> String {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        var object: [String: JSONValue] = [
            "time": .string(time), "level": .string(event.level.rawValue), "logger": .string(label),
            "message": .string(event.message.description),
        ]
        if let error = event.error { object["error"] = .string(String(describing: error)) }
        for (key, value) in merged where object[key] == nil {
            object[key] = Self.json(LogRedaction.redacted(value, key: key))
        }
        return JSONValue.object(object).serialized + "\n"
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let entries):
            .object(entries.mapValues(json))
        }
    }
}

/// How `serve` writes its log.
enum LogFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    case text, json

    /// Sets up the process's logging; once, before anything logs.
    func bootstrap(level: Logger.Level) {
        switch self {
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        case .text:
            // StreamLogHandler.standardOutput's lines, written at less cost (TextLogHandler).
            LoggingSystem.bootstrap { label in TextLogHandler(label: label, level: level) }
        }
    }
}
