import SwiftASN1
import Testing
@testable import LDAP

/// The one-pass decoder of the messages an LDAP server sends (`LDAPResponse.decode` over `BERCursor`): entries with
/// every value as sent, referrals, results with their controls, and malformed messages refused with an error.
@Suite("LDAP client: decoding what the server sends")
struct LDAPDecodeTests {
    static func entry(id: Int, dn: String, _ attributes: [(String, [[UInt8]])]) -> [UInt8] {
        BERWriter.message(id: id) { s in
            s.appendConstructedNode(identifier: .application(4)) { s in
                BERWriter.octetString(&s, Array(dn.utf8))
                s.appendConstructedNode(identifier: .sequence) { s in
                    for (name, values) in attributes {
                        s.appendConstructedNode(identifier: .sequence) { s in
                            BERWriter.octetString(&s, Array(name.utf8))
                            s.appendConstructedNode(identifier: .set) { s in for value in values { BERWriter.octetString(&s, value) } }
                        }
                    }
                }
            }
        }
    }

    @Test("an entry decodes with every value as sent: binary, several values, long values (long-form lengths), an attribute sent twice")
    func entry() throws {
        let guid: [UInt8] = [0x00, 0xff, 0x80, 0x30, 0x84, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a]
        let long = [UInt8](repeating: UInt8(ascii: "m"), count: 70_000)
        let bytes = Self.entry(id: 7, dn: "CN=Ada Lovelace,OU=Staff,DC=corp,DC=example,DC=test", [
            ("objectGUID", [guid]),
            ("objectClass", ["top", "person", "user"].map { Array($0.utf8) }),
            ("description", [long]),
            ("member", [Array("CN=a".utf8)]),
            ("displayName", [Array("Ada Lovelace — née Byron".utf8)]),
            ("member", [Array("CN=b".utf8)]),
            ("proxyAddresses", []),
        ])
        let decoded = try LDAPResponse.decode(bytes)
        #expect(decoded.id == 7 && decoded.controls.isEmpty)
        guard case .entry(let entry) = decoded.response else { Issue.record("\(decoded.response)"); return }
        #expect(entry.dn == "CN=Ada Lovelace,OU=Staff,DC=corp,DC=example,DC=test")
        #expect(entry.attributes == ["objectGUID": [guid], "objectClass": ["top", "person", "user"].map { Array($0.utf8) },
                                     "description": [long], "member": [Array("CN=a".utf8), Array("CN=b".utf8)],
                                     "displayName": [Array("Ada Lovelace — née Byron".utf8)], "proxyAddresses": []])
        #expect(entry.string("displayname") == "Ada Lovelace — née Byron")
    }

    @Test("a referral and a result with a critical control and one without a value decode")
    func referenceAndResult() throws {
        let reference = BERWriter.message(id: 3) { s in
            s.appendConstructedNode(identifier: .application(19)) { s in
                BERWriter.octetString(&s, Array("ldap://dc2/DC=corp".utf8))
                BERWriter.octetString(&s, Array("ldap://dc3/DC=corp".utf8))
            }
        }
        guard case .reference(let uris) = try LDAPResponse.decode(reference).response else { Issue.record("not a reference"); return }
        #expect(uris == ["ldap://dc2/DC=corp", "ldap://dc3/DC=corp"])

        let done = BERWriter.message(id: 4, controls: [.dirSync(cookie: [1, 2, 3]), LDAPControl(oid: "1.2.3", critical: false)]) { s in
            s.appendConstructedNode(identifier: .application(5)) { s in
                BERWriter.enumerated(&s, 53)
                BERWriter.octetString(&s, Array("DC=corp".utf8))
                BERWriter.octetString(&s, Array("unwilling".utf8))
            }
        }
        let decoded = try LDAPResponse.decode(done)
        guard case .result(5, 53, "unwilling") = decoded.response else { Issue.record("\(decoded.response)"); return }
        #expect(decoded.controls == [.dirSync(cookie: [1, 2, 3]), LDAPControl(oid: "1.2.3", critical: false)])
        #expect(try decoded.controls[0].cookie().cookie == [1, 2, 3])
    }

    @Test("malformed messages are refused with an error, never read past their end", arguments: [
        ("an element longer than its parent", [0x30, 0x08, 0x02, 0x01, 0x01, 0x64, 0x03, 0x04, 0x09, 0x41] as [UInt8]),
        ("a truncated length", [0x30, 0x06, 0x02, 0x01, 0x01, 0x64, 0x84, 0x00]),
        ("an indefinite length", [0x30, 0x07, 0x02, 0x01, 0x01, 0x65, 0x80, 0x00, 0x00]),
        ("bytes after the message", [0x30, 0x03, 0x02, 0x01, 0x01, 0x00]),
        ("a primitive operation", [0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00]),
        ("a message id that is not an INTEGER", [0x30, 0x05, 0x04, 0x01, 0x01, 0x65, 0x00]),
        ("an attribute's values not a SET", [0x30, 0x11, 0x02, 0x01, 0x01, 0x64, 0x0c, 0x04, 0x01, 0x41, 0x30, 0x07, 0x30, 0x05, 0x04, 0x01, 0x61, 0x30, 0x00]),
        ("an empty message", []),
        ("a result without its message", [0x30, 0x0a, 0x02, 0x01, 0x01, 0x65, 0x05, 0x0a, 0x01, 0x00, 0x04, 0x00]),
    ])
    func malformed(_ what: String, _ bytes: [UInt8]) {
        #expect(throws: LDAPError.self, "\(what)") { try LDAPResponse.decode(bytes) }
    }
}
