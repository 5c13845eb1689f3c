import SwiftASN1

/// Reading RFC 4120's ASN.1 through swift-asn1: context-tagged fields, KerberosString, KerberosTime. Every
/// swift-asn1 error becomes ``KerberosError/Code/malformed``.
enum DERFields {
    typealias Nodes = ASN1NodeCollection.Iterator

    static func application(_ number: UInt) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: number, tagClass: .application)
    }

    /// Runs `body`, turning swift-asn1's parse errors into a malformed-token error that names `what`.
    static func decoding<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as KerberosError {
            throw error
        } catch {
            throw KerberosError.malformed("\(what) is not valid DER (\(error))")
        }
    }

    /// `[APPLICATION n] SEQUENCE { … }`: the application tag wraps a SEQUENCE.
    static func applicationSequence<T>(_ node: ASN1Node, _ number: UInt, _ body: (inout Nodes) throws -> T) throws -> T {
        try DER.explicitlyTagged(node, tagNumber: number, tagClass: .application) { inner in
            try DER.sequence(inner, identifier: .sequence, body)
        }
    }

    static func field<T>(_ nodes: inout Nodes, _ tag: UInt, _ body: (ASN1Node) throws -> T) throws -> T {
        try DER.explicitlyTagged(&nodes, tagNumber: tag, tagClass: .contextSpecific, body)
    }

    static func optionalField<T>(_ nodes: inout Nodes, _ tag: UInt, _ body: (ASN1Node) throws -> T) throws -> T? {
        try DER.optionalExplicitlyTagged(&nodes, tagNumber: tag, tagClass: .contextSpecific, body)
    }

    /// The elements of a SEQUENCE OF.
    static func sequenceOf(_ node: ASN1Node) throws -> [ASN1Node] {
        guard node.identifier == .sequence, case .constructed(let nodes) = node.content else {
            throw KerberosError.malformed("a SEQUENCE OF is not a constructed SEQUENCE")
        }
        return Array(nodes)
    }

    static func int32(_ node: ASN1Node) throws -> Int32 { try Int32(derEncoded: node) }
    static func uint32(_ node: ASN1Node) throws -> UInt32 {
        // UInt32 fields (kvno, seq-number) arrive as INTEGER; some encoders write them as negative Int32.
        let value = try Int64(derEncoded: node)
        guard value >= Int64(Int32.min), value <= Int64(UInt32.max) else {
            throw KerberosError.malformed("an unsigned 32-bit field is out of range")
        }
        return UInt32(truncatingIfNeeded: value)
    }

    static func octets(_ node: ASN1Node) throws -> ArraySlice<UInt8> { try ASN1OctetString(derEncoded: node).bytes }

    /// KerberosString ::= GeneralString (IA5 in practice).
    static func string(_ node: ASN1Node) throws -> String {
        guard node.identifier == ASN1Identifier(tagWithNumber: 27, tagClass: .universal),
            case .primitive(let bytes) = node.content
        else { throw KerberosError.malformed("a KerberosString is not a GeneralString") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// KerberosTime ::= GeneralizedTime "YYYYMMDDHHMMSSZ", as seconds since 1970.
    static func time(_ node: ASN1Node) throws -> Int64 {
        guard node.identifier == .generalizedTime, case .primitive(let bytes) = node.content, bytes.count == 15,
            bytes.last == UInt8(ascii: "Z")
        else { throw KerberosError.malformed("a KerberosTime is not YYYYMMDDHHMMSSZ") }
        var digits = [Int64]()
        for byte in bytes.dropLast() {
            guard byte >= 0x30, byte <= 0x39 else { throw KerberosError.malformed("a KerberosTime has a non-digit") }
            digits.append(Int64(byte - 0x30))
        }
        func number(_ at: Int, _ count: Int) -> Int64 { digits[at..<(at + count)].reduce(0) { $0 * 10 + $1 } }
        let (year, month, day) = (number(0, 4), number(4, 2), number(6, 2))
        let (hour, minute, second) = (number(8, 2), number(10, 2), number(12, 2))
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            throw KerberosError.malformed("a KerberosTime is out of range")
        }
        return daysFromCivil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    }

    static func timeBytes(_ seconds: Int64) -> [UInt8] {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (year, month, day) = civilFromDays(days)
        let text = pad(year, 4) + pad(month, 2) + pad(day, 2) + pad(rest / 3_600, 2) + pad(rest / 60 % 60, 2)
            + pad(rest % 60, 2) + "Z"
        return Array(text.utf8)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    // Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
    private static func daysFromCivil(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
