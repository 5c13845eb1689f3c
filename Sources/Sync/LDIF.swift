import Foundation
import LDAP

/// Reads LDIF content records (RFC 2849): `dn:` then `attribute: value` lines, `attribute:: base64` for binary
/// values (an objectGUID), long lines folded onto lines that start with a space, `#` comments, records separated by
/// blank lines. A file connector reads its file whole on every run: what is in it exists, what is not is gone.
enum LDIF {
    static func parse(_ text: String) throws -> [LDAPEntry] {
        // Unfold: a line starting with one space continues the previous one.
        var lines: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            if line.hasPrefix(" "), !lines.isEmpty, !lines[lines.count - 1].isEmpty {
                lines[lines.count - 1] += line.dropFirst()
            } else {
                lines.append(line)
            }
        }
        var entries: [LDAPEntry] = []
        var dn: String?
        var attributes: [String: [[UInt8]]] = [:]
        func finish() throws {
            if let dn { entries.append(LDAPEntry(dn: dn, attributes: attributes)) }
            else if !attributes.isEmpty { throw LDAPError("LDIF: a record without a dn (before line \(entries.count + 1))") }
            dn = nil
            attributes = [:]
        }
        for (number, line) in lines.enumerated() {
            if line.isEmpty {
                try finish()
                continue
            }
            if line.hasPrefix("#") || line.hasPrefix("version:") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw LDAPError("LDIF line \(number + 1): no ':' in \"\(line.prefix(60))\"") }
            let name = String(line[..<colon])
            var rest = line[line.index(after: colon)...]
            let value: [UInt8]
            if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                guard let data = Data(base64Encoded: rest.trimmingCharacters(in: .whitespaces)) else {
                    throw LDAPError("LDIF line \(number + 1): bad base64 for \(name)")
                }
                value = Array(data)
            } else if rest.hasPrefix("<") {
                throw LDAPError("LDIF line \(number + 1): URL values are not supported")
            } else {
                value = Array(String(rest.drop { $0 == " " }).utf8)
            }
            if name.lowercased() == "dn" {
                guard dn == nil else { throw LDAPError("LDIF line \(number + 1): a second dn in one record") }
                dn = String(decoding: value, as: UTF8.self)
            } else if name.lowercased() == "changetype" {
                throw LDAPError("LDIF line \(number + 1): change records are not content: give the directory as it is")
            } else {
                attributes[name, default: []].append(value)
            }
        }
        try finish()
        return entries
    }
}
