import SwiftASN1

/// An LDAP error: a result code the server returned (RFC 4511 §4.1.9), or a protocol problem.
public struct LDAPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's result code; nil for a local or protocol error.
    public var resultCode: Int?
    public var message: String
    public init(resultCode: Int? = nil, _ message: String) {
        self.resultCode = resultCode
        self.message = message
    }
    public var description: String { resultCode.map { "LDAP result \($0): \(message)" } ?? "LDAP: \(message)" }

    /// 49, invalidCredentials.
    public var isInvalidCredentials: Bool { resultCode == 49 }
}

/// A control on a request or response (RFC 4511 §4.1.11).
public struct LDAPControl: Sendable, Hashable {
    public var oid: String
    public var critical: Bool
    public var value: [UInt8]?
    public init(oid: String, critical: Bool = false, value: [UInt8]? = nil) {
        self.oid = oid
        self.critical = critical
        self.value = value
    }

    /// Simple paged results (RFC 2696): page size and the server's cookie.
    public static let pagedResultsOID = "1.2.840.113556.1.4.319"
    /// Active Directory's DirSync (MS-ADTS 3.1.1.3.4.1.3): changes since a cookie.
    public static let dirSyncOID = "1.2.840.113556.1.4.841"
    /// Active Directory's Show Deleted: tombstones in search results.
    public static let showDeletedOID = "1.2.840.113556.1.4.417"

    public static func pagedResults(size: Int, cookie: [UInt8]) -> LDAPControl {
        LDAPControl(oid: pagedResultsOID, critical: false, value: BERWriter.sequence { s in
            BERWriter.integer(&s, size)
            BERWriter.octetString(&s, cookie)
        })
    }

    /// DirSync with `flags` (0x80000000: incremental values; 1: object security), at most `maxBytes` per page.
    public static func dirSync(flags: Int32 = Int32(bitPattern: 0x8000_0000), maxBytes: Int = 1 << 20, cookie: [UInt8]) -> LDAPControl {
        LDAPControl(oid: dirSyncOID, critical: true, value: BERWriter.sequence { s in
            BERWriter.integer(&s, Int(flags))
            BERWriter.integer(&s, maxBytes)
            BERWriter.octetString(&s, cookie)
        })
    }

    public static let showDeleted = LDAPControl(oid: showDeletedOID, critical: true)

    /// A paged-results or DirSync response's cookie (and DirSync's "more data" flag).
    public func cookie() throws -> (more: Bool, cookie: [UInt8]) {
        guard let value else { throw LDAPError("control \(oid) has no value") }
        let node = try BER.parse(value)
        let items = try BERReader.children(node)
        switch oid {
        case Self.pagedResultsOID:
            guard items.count == 2 else { throw LDAPError("malformed paged results control") }
            let cookie = try BERReader.bytes(items[1])
            return (!cookie.isEmpty, cookie)
        case Self.dirSyncOID:
            guard items.count == 3 else { throw LDAPError("malformed DirSync control") }
            return (try BERReader.integer(items[0]) != 0, try BERReader.bytes(items[2]))
        default:
            throw LDAPError("control \(oid) has no cookie")
        }
    }
}

/// One entry of a search result: its distinguished name and attribute values (as bytes; text attributes are UTF-8).
public struct LDAPEntry: Sendable, Hashable {
    public var dn: String
    /// Attribute values by name as the server spelled it; look up with `values(_:)`, which ignores case.
    public var attributes: [String: [[UInt8]]]

    public init(dn: String, attributes: [String: [[UInt8]]]) {
        self.dn = dn
        self.attributes = attributes
    }

    /// Values of an attribute, matched without case (and `member;range=0-0`-style options are kept distinct).
    public func values(_ name: String) -> [[UInt8]] {
        if let exact = attributes[name] { return exact }
        let lower = name.lowercased()
        return attributes.first { $0.key.lowercased() == lower }?.value ?? []
    }

    /// The first value as text.
    public func string(_ name: String) -> String? { values(name).first.map { String(decoding: $0, as: UTF8.self) } }
    /// Every value as text.
    public func strings(_ name: String) -> [String] { values(name).map { String(decoding: $0, as: UTF8.self) } }
}

/// The scope of a search.
public enum LDAPScope: Int, Sendable { case base = 0, oneLevel = 1, subtree = 2 }

/// A modification of one attribute (RFC 4511 §4.6).
public struct LDAPModification: Sendable, Hashable {
    public enum Operation: Int, Sendable { case add = 0, delete = 1, replace = 2 }
    public var operation: Operation
    public var attribute: String
    public var values: [[UInt8]]
    public init(_ operation: Operation, _ attribute: String, _ values: [[UInt8]]) {
        self.operation = operation
        self.attribute = attribute
        self.values = values
    }
}

/// Requests the client sends.
enum LDAPRequest {
    case bind(dn: String, password: String)
    case search(base: String, scope: LDAPScope, filter: LDAPFilter, attributes: [String], sizeLimit: Int)
    case modify(dn: String, changes: [LDAPModification])
    case add(dn: String, attributes: [(String, [[UInt8]])])
    case delete(dn: String)
    case modifyDN(dn: String, newRDN: String, newSuperior: String?)
    case extended(oid: String)
    case unbind
    /// Asks the server to stop the operation with message id `id` (RFC 4511 §4.11); it gets no response.
    case abandon(id: Int)

    /// The operation's name, for errors.
    var name: String {
        switch self {
        case .bind: "bind"
        case .search: "search"
        case .modify: "modify"
        case .add: "add"
        case .delete: "delete"
        case .modifyDN: "modify DN"
        case .extended: "extended"
        case .unbind: "unbind"
        case .abandon: "abandon"
        }
    }

    /// The complete LDAPMessage.
    func encode(messageID: Int, controls: [LDAPControl]) throws -> [UInt8] {
        try BERWriter.message(id: messageID, controls: controls) { s in
            switch self {
            case .bind(let dn, let password):
                s.appendConstructedNode(identifier: .application(0)) { s in
                    BERWriter.integer(&s, 3)
                    BERWriter.octetString(&s, Array(dn.utf8))
                    s.appendPrimitiveNode(identifier: .context(0)) { $0.append(contentsOf: password.utf8) }
                }
            case .search(let base, let scope, let filter, let attributes, let sizeLimit):
                try s.appendConstructedNode(identifier: .application(3)) { s in
                    BERWriter.octetString(&s, Array(base.utf8))
                    BERWriter.enumerated(&s, scope.rawValue)
                    BERWriter.enumerated(&s, 0)  // never dereference aliases
                    BERWriter.integer(&s, sizeLimit)
                    BERWriter.integer(&s, 0)
                    s.appendPrimitiveNode(identifier: .boolean) { $0.append(0) }
                    try filter.encode(&s)
                    s.appendConstructedNode(identifier: .sequence) { s in
                        for attribute in attributes { BERWriter.octetString(&s, Array(attribute.utf8)) }
                    }
                }
            case .modify(let dn, let changes):
                s.appendConstructedNode(identifier: .application(6)) { s in
                    BERWriter.octetString(&s, Array(dn.utf8))
                    s.appendConstructedNode(identifier: .sequence) { s in
                        for change in changes {
                            s.appendConstructedNode(identifier: .sequence) { s in
                                BERWriter.enumerated(&s, change.operation.rawValue)
                                s.appendConstructedNode(identifier: .sequence) { s in
                                    BERWriter.octetString(&s, Array(change.attribute.utf8))
                                    s.appendConstructedNode(identifier: .set) { s in
                                        for value in change.values { BERWriter.octetString(&s, value) }
                                    }
                                }
                            }
                        }
                    }
                }
            case .add(let dn, let attributes):
                s.appendConstructedNode(identifier: .application(8)) { s in
                    BERWriter.octetString(&s, Array(dn.utf8))
                    s.appendConstructedNode(identifier: .sequence) { s in
                        for (name, values) in attributes {
                            s.appendConstructedNode(identifier: .sequence) { s in
                                BERWriter.octetString(&s, Array(name.utf8))
                                s.appendConstructedNode(identifier: .set) { s in
                                    for value in values { BERWriter.octetString(&s, value) }
                                }
                            }
                        }
                    }
                }
            case .modifyDN(let dn, let rdn, let superior):
                s.appendConstructedNode(identifier: .application(12)) { s in
                    BERWriter.octetString(&s, Array(dn.utf8))
                    BERWriter.octetString(&s, Array(rdn.utf8))
                    s.appendPrimitiveNode(identifier: .boolean) { $0.append(0xff) }
                    if let superior { BERWriter.octetString(&s, Array(superior.utf8), identifier: .context(0)) }
                }
            case .delete(let dn):
                BERWriter.octetString(&s, Array(dn.utf8), identifier: .application(10))
            case .extended(let oid):
                s.appendConstructedNode(identifier: .application(23)) { s in
                    s.appendPrimitiveNode(identifier: .context(0)) { $0.append(contentsOf: oid.utf8) }
                }
            case .unbind:
                s.appendPrimitiveNode(identifier: .application(2)) { _ in }
            case .abandon(let id):
                // AbandonRequest ::= [APPLICATION 16] MessageID: the INTEGER's contents under an implicit tag.
                BERWriter.integer(&s, id, identifier: .application(16))
            }
        }
    }
}

/// A message the server sends.
enum LDAPResponse: Sendable {
    /// A result (bind, modify, extended, search done): code, matched DN, diagnostic message.
    case result(tag: UInt, code: Int, message: String)
    case entry(LDAPEntry)
    case reference([String])

    /// Decodes one LDAPMessage: its id, what it carries and its controls. Read in one pass over the bytes (``BERCursor``),
    /// with no tree of nodes: a first sync decodes an entry of some twenty attributes for every object in the domain.
    static func decode(_ bytes: [UInt8]) throws -> (id: Int, response: LDAPResponse, controls: [LDAPControl]) {
        try bytes.withUnsafeBufferPointer { buffer in
            var top = BERCursor(buffer)
            var message = try top.constructed(0x30)
            guard top.atEnd else { throw LDAPError("malformed LDAPMessage") }
            let id = try message.integer()
            let (opTag, opStart, opEnd) = try message.next()
            var controls: [LDAPControl] = []
            if !message.atEnd {
                let (tag, start, end) = try message.next()
                if tag == 0xa0 {
                    var list = BERCursor(buffer, start, end)
                    while !list.atEnd {
                        var parts = try list.constructed(0x30)
                        guard !parts.atEnd else { continue }
                        var control = LDAPControl(oid: try parts.string(0x04))
                        while !parts.atEnd {
                            let (tag, start, end) = try parts.next()
                            if tag == 0x01 { control.critical = end > start && buffer[start] != 0 }
                            if tag == 0x04 { control.value = Array(buffer[start..<end]) }
                        }
                        controls.append(control)
                    }
                }
            }
            // An application-class, constructed protocol operation.
            guard opTag & 0xe0 == 0x60 else { throw LDAPError("unexpected protocol operation") }
            var op = BERCursor(buffer, opStart, opEnd)
            switch opTag & 0x1f {
            case 4:
                let dn = try op.string(0x04)
                var list = try op.constructed(0x30)
                guard op.atEnd else { throw LDAPError("malformed SearchResultEntry") }
                var attributes: [String: [[UInt8]]] = [:]
                while !list.atEnd {
                    var pair = try list.constructed(0x30)
                    let name = try pair.string(0x04)
                    var set = try pair.constructed(0x31)
                    guard pair.atEnd else { throw LDAPError("malformed attribute") }
                    var values: [[UInt8]] = []
                    while !set.atEnd { values.append(try set.bytes(0x04)) }
                    if attributes[name] == nil { attributes[name] = values } else { attributes[name]! += values }
                }
                return (id, .entry(LDAPEntry(dn: dn, attributes: attributes)), controls)
            case 19:
                var uris: [String] = []
                while !op.atEnd { uris.append(try op.string(0x04)) }
                return (id, .reference(uris), controls)
            default:
                let code = try op.integer(0x0a)
                _ = try op.next()  // matchedDN
                let text = try op.string(0x04)
                return (id, .result(tag: UInt(opTag & 0x1f), code: code, message: text), controls)
            }
        }
    }
}

/// Reads BER as LDAP writes it (RFC 4511 §5.1: definite lengths; tags of one byte, which every LDAP tag fits) from a
/// range of bytes, one element at a time, each element's contents a range of the same bytes. Every length is checked
/// against the bytes its parent holds, so a malformed message throws instead of reading past its end.
struct BERCursor {
    let buffer: UnsafeBufferPointer<UInt8>
    private(set) var position: Int
    let end: Int

    init(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int = 0, _ end: Int? = nil) {
        self.buffer = buffer
        position = start
        self.end = end ?? buffer.count
    }

    var atEnd: Bool { position >= end }

    /// The next element: its tag and where its contents start and end.
    mutating func next() throws -> (tag: UInt8, start: Int, end: Int) {
        guard end - position >= 2 else { throw LDAPError("truncated BER element") }
        let tag = buffer[position], first = buffer[position + 1]
        guard tag & 0x1f != 0x1f else { throw LDAPError("unsupported BER tag") }
        var length = Int(first), start = position + 2
        if first >= 0x80 {
            let count = Int(first & 0x7f)
            guard (1...4).contains(count) else { throw LDAPError("unsupported BER length (indefinite or over 4 bytes)") }
            guard end - start >= count else { throw LDAPError("truncated BER length") }
            length = 0
            for index in start..<start + count { length = length << 8 | Int(buffer[index]) }
            start += count
        }
        guard length <= end - start else { throw LDAPError("a BER element is longer than what holds it") }
        position = start + length
        return (tag, start, start + length)
    }

    /// The next element, which must have tag `tag`.
    mutating func next(_ tag: UInt8) throws -> (start: Int, end: Int) {
        let element = try next()
        guard element.tag == tag else { throw LDAPError("unexpected BER tag \(element.tag) (expected \(tag))") }
        return (element.start, element.end)
    }

    /// A cursor over the contents of the next element, a constructed one with tag `tag`.
    mutating func constructed(_ tag: UInt8) throws -> BERCursor {
        let (start, end) = try next(tag)
        return BERCursor(buffer, start, end)
    }

    mutating func bytes(_ tag: UInt8) throws -> [UInt8] {
        let (start, end) = try next(tag)
        return Array(buffer[start..<end])
    }

    mutating func string(_ tag: UInt8) throws -> String {
        let (start, end) = try next(tag)
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)
    }

    /// An INTEGER (or, with `tag` 0x0a, an ENUMERATED) of at most 8 bytes.
    mutating func integer(_ tag: UInt8 = 0x02) throws -> Int {
        let (start, end) = try next(tag)
        guard end > start, end - start <= 8 else { throw LDAPError("integer out of range") }
        var value: Int64 = buffer[start] & 0x80 != 0 ? -1 : 0
        for index in start..<end { value = value << 8 | Int64(buffer[index]) }
        return Int(value)
    }
}

extension ASN1Identifier {
    static func application(_ number: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: number, tagClass: .application) }
    static func context(_ number: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific) }
}

/// BER values LDAP uses, written with swift-asn1's serializer (DER is a subset of BER).
enum BERWriter {
    /// An LDAPMessage (RFC 4511 §4.1.1): the message id, the operation `body` writes, then `controls` if any. Requests
    /// are written with it, and tests write a server's answers with it.
    static func message(id: Int, controls: [LDAPControl] = [], _ body: (inout DER.Serializer) throws -> Void) rethrows -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            integer(&s, id)
            try body(&s)
            if !controls.isEmpty {
                s.appendConstructedNode(identifier: .context(0)) { s in
                    for control in controls {
                        s.appendConstructedNode(identifier: .sequence) { s in
                            octetString(&s, Array(control.oid.utf8))
                            if control.critical { s.appendPrimitiveNode(identifier: .boolean) { $0.append(0xff) } }
                            if let value = control.value { octetString(&s, value) }
                        }
                    }
                }
            }
        }
        return s.serializedBytes
    }

    static func integer(_ s: inout DER.Serializer, _ value: Int, identifier: ASN1Identifier = .integer) {
        s.appendPrimitiveNode(identifier: identifier) { bytes in
            // Minimal two's complement, big-endian.
            var v = Int64(value)
            var out: [UInt8] = []
            repeat {
                out.insert(UInt8(truncatingIfNeeded: v), at: 0)
                v >>= 8
            } while !(v == 0 && out[0] & 0x80 == 0) && !(v == -1 && out[0] & 0x80 != 0)
            bytes.append(contentsOf: out)
        }
    }

    static func enumerated(_ s: inout DER.Serializer, _ value: Int) { integer(&s, value, identifier: .enumerated) }

    static func octetString(_ s: inout DER.Serializer, _ value: [UInt8], identifier: ASN1Identifier = .octetString) {
        s.appendPrimitiveNode(identifier: identifier) { $0.append(contentsOf: value) }
    }

    static func sequence(_ body: (inout DER.Serializer) throws -> Void) rethrows -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence, body)
        return s.serializedBytes
    }
}

/// Reading the BER nodes LDAP servers send.
enum BERReader {
    static func children(_ node: ASN1Node) throws -> [ASN1Node] {
        guard case .constructed(let nodes) = node.content else { throw LDAPError("expected a constructed value") }
        return Array(nodes)
    }

    static func bytes(_ node: ASN1Node) throws -> [UInt8] {
        guard case .primitive(let bytes) = node.content else { throw LDAPError("expected a primitive value") }
        return Array(bytes)
    }

    static func integer(_ node: ASN1Node) throws -> Int {
        let bytes = try self.bytes(node)
        guard !bytes.isEmpty, bytes.count <= 8 else { throw LDAPError("integer out of range") }
        var value: Int64 = bytes[0] & 0x80 != 0 ? -1 : 0
        for byte in bytes { value = value << 8 | Int64(byte) }
        return Int(value)
    }
}
