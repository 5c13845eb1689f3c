import Foundation
import LDAP

/// Reads LDIF content records (RFC 2849): `dn:` then `attribute: value` lines, `attribute:: base64` for binary
/// values (an objectGUID), long lines folded onto lines that start with a space, `#` comments, records separated by
/// blank lines. A file connector reads its file whole on every run: what is in it exists, what is not is gone.
enum LDIF {
    /// Every record of `text`.
    static func parse(_ text: String) throws -> [LDAPEntry] {
        var reader = Reader(bytes: Array(text.utf8))
        var entries: [LDAPEntry] = []
        while let entry = try reader.next() { entries.append(entry) }
        return entries
    }

    /// Reads records one at a time from a file, a block at a time: memory holds one block and one record, however
    /// large the file.
    struct Reader {
        private let file: FileHandle?
        private var buffer: [UInt8]
        private var position = 0
        private var exhausted: Bool
        /// The physical line last read (1-based), for errors.
        private var lineNumber = 0
        /// A line read ahead to see whether it continues the one before.
        private var lookahead: [UInt8]?
        static let blockSize = 1 << 20

        init(bytes: [UInt8]) {
            file = nil
            buffer = bytes
            exhausted = true
        }

        init(path: String) throws {
            guard let handle = FileHandle(forReadingAtPath: path) else { throw LDAPError("cannot read \(path)") }
            file = handle
            buffer = []
            exhausted = false
        }

        /// The next physical line without its line break, or nil at the end.
        private mutating func physicalLine() throws -> [UInt8]? {
            while true {
                if let newline = Self.newline(in: buffer, from: position) {
                    var line = Array(buffer[position..<newline])
                    position = newline + 1
                    if line.last == UInt8(ascii: "\r") { line.removeLast() }
                    lineNumber += 1
                    return line
                }
                if exhausted {
                    guard position < buffer.count else { return nil }
                    var line = Array(buffer[position...])
                    position = buffer.count
                    if line.last == UInt8(ascii: "\r") { line.removeLast() }
                    lineNumber += 1
                    return line
                }
                buffer.removeFirst(position)
                position = 0
                let block: Data
                do {
                    block = try file?.read(upToCount: Self.blockSize) ?? Data()
                } catch {
                    throw LDAPError("LDIF: reading after line \(lineNumber) failed: \(error.localizedDescription)")
                }
                if block.isEmpty { exhausted = true } else { buffer.append(contentsOf: block) }
            }
        }

        /// The index of the first line feed in `bytes` at or after `start` (memchr: a block holds many lines).
        private static func newline(in bytes: [UInt8], from start: Int) -> Int? {
            guard start < bytes.count else { return nil }
            return bytes.withUnsafeBufferPointer { all -> Int? in
                guard let base = all.baseAddress, let found = memchr(base + start, Int32(UInt8(ascii: "\n")), all.count - start) else { return nil }
                return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            }
        }

        /// Whether `bytes` spell `name`, a lower-case ASCII word, in any case.
        private static func spells(_ bytes: ArraySlice<UInt8>, _ name: [UInt8]) -> Bool {
            bytes.count == name.count && zip(bytes, name).allSatisfy { $0 | 0x20 == $1 }
        }

        private static let version = Array("version:".utf8), dn = Array("dn".utf8), changetype = Array("changetype".utf8)

        /// The next line with the lines folded onto it (those starting with a space) joined, or nil at the end.
        private mutating func logicalLine() throws -> [UInt8]? {
            guard var line = try lookahead.take() ?? physicalLine() else { return nil }
            while let next = try physicalLine() {
                if next.first == UInt8(ascii: " "), !line.isEmpty {
                    line += next.dropFirst()
                } else {
                    lookahead = next
                    break
                }
            }
            return line
        }

        /// The next record, or nil at the end of the input.
        mutating func next() throws -> LDAPEntry? {
            var dn: String?
            var attributes: [String: [[UInt8]]] = [:]
            while let line = try logicalLine() {
                if line.isEmpty {
                    if let dn { return LDAPEntry(dn: dn, attributes: attributes) }
                    if !attributes.isEmpty { throw LDAPError("LDIF line \(lineNumber): a record without a dn") }
                    continue
                }
                if line.first == UInt8(ascii: "#") || line.starts(with: Self.version) { continue }
                let number = lineNumber
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                    throw LDAPError("LDIF line \(number): no ':' in \"\(String(decoding: line.prefix(60), as: UTF8.self))\"")
                }
                let nameBytes = line[..<colon]
                let name = String(decoding: nameBytes, as: UTF8.self)
                var rest = line[(colon + 1)...]
                let value: [UInt8]
                if rest.first == UInt8(ascii: ":") {
                    rest = rest.dropFirst()
                    guard let data = Data(base64Encoded: String(decoding: rest, as: UTF8.self).trimmingCharacters(in: .whitespaces)) else {
                        throw LDAPError("LDIF line \(number): bad base64 for \(name)")
                    }
                    value = Array(data)
                } else if rest.first == UInt8(ascii: "<") {
                    throw LDAPError("LDIF line \(number): URL values are not supported")
                } else {
                    value = Array(rest.drop { $0 == UInt8(ascii: " ") })
                }
                if Self.spells(nameBytes, Self.dn) {
                    guard dn == nil else { throw LDAPError("LDIF line \(number): a second dn in one record") }
                    dn = String(decoding: value, as: UTF8.self)
                } else if Self.spells(nameBytes, Self.changetype) {
                    throw LDAPError("LDIF line \(number): change records are not content: give the directory as it is")
                } else {
                    attributes[name, default: []].append(value)
                }
            }
            if let dn { return LDAPEntry(dn: dn, attributes: attributes) }
            if !attributes.isEmpty { throw LDAPError("LDIF line \(lineNumber): a record without a dn") }
            return nil
        }
    }
}
