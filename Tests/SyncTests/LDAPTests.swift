import Foundation
import SwiftASN1
import Testing
@testable import LDAP

@Suite("LDAP client: BER encoding and filters")
struct LDAPEncodingTests {
    @Test("filters encode as RFC 4511 says", arguments: [
        ("(cn=ada)", "a3 09 04 02 63 6e 04 03 61 64 61"),
        ("(objectClass=*)", "87 0b 6f 62 6a 65 63 74 43 6c 61 73 73"),
        ("(&(a=1)(!(b>=2)))", "a0 12 a3 06 04 01 61 04 01 31 a2 08 a5 06 04 01 62 04 01 32"),
        ("(cn=a*b*c)", "a4 0f 04 02 63 6e 30 09 80 01 61 81 01 62 82 01 63"),
        ("(objectGUID=\\d5\\dc\\00\\2a)", "a3 12 04 0a 6f 62 6a 65 63 74 47 55 49 44 04 04 d5 dc 00 2a"),
    ])
    func filters(_ text: String, _ hex: String) throws {
        var s = DER.Serializer()
        try LDAPFilter(text).encode(&s)
        #expect(s.serializedBytes.map { String(format: "%02x", $0) }.joined(separator: " ") == hex)
    }

    @Test("malformed filters are refused", arguments: ["cn=ada", "(cn=ada", "(&)", "(cn=a\\zz)", "(cn>a)", "(cn=a)(b=c)"])
    func badFilters(_ text: String) {
        #expect(throws: LDAPError.self) { try LDAPFilter(text) }
    }

    @Test("escaping round-trips any bytes")
    func escape() throws {
        let bytes: [UInt8] = [0xd5, 0x2a, 0x28, 0x29, 0x5c, 0x00, 0x41]
        #expect(LDAPFilter.escape(bytes) == "\\d5\\2a\\28\\29\\5c\\00A")
        #expect(try LDAPFilter("(x=\(LDAPFilter.escape(bytes)))") == .equal("x", bytes))
    }

    @Test("a bind request is the LDAPMessage RFC 4511 describes, and integers use the fewest bytes")
    func bindRequest() throws {
        let bytes = try LDAPRequest.bind(dn: "cn=a", password: "pw").encode(messageID: 1, controls: [])
        #expect(bytes == [0x30, 0x12, 0x02, 0x01, 0x01, 0x60, 0x0d, 0x02, 0x01, 0x03, 0x04, 0x04, 0x63, 0x6e, 0x3d, 0x61, 0x80, 0x02, 0x70, 0x77])
        let big = try LDAPRequest.unbind.encode(messageID: 300, controls: [])
        #expect(big == [0x30, 0x06, 0x02, 0x02, 0x01, 0x2c, 0x42, 0x00])
    }

    @Test("responses decode, including AD's four-byte lengths")
    func decodeResponse() throws {
        // SearchResultDone, id 2, success, with a paged-results control whose cookie is "ab"; lengths in long form.
        let control: [UInt8] = [0x30, 0x84, 0, 0, 0, 0x23, 0x04, 0x16] + Array("1.2.840.113556.1.4.319".utf8)
            + [0x04, 0x09, 0x30, 0x07, 0x02, 0x01, 0x00, 0x04, 0x02, 0x61, 0x62]
        let done: [UInt8] = [0x65, 0x84, 0, 0, 0, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]
        let controls: [UInt8] = [0xa0, 0x84, 0, 0, 0, UInt8(control.count)] + control
        let body: [UInt8] = [0x02, 0x01, 0x02] + done + controls
        let message: [UInt8] = [0x30, 0x84, 0, 0, 0, UInt8(body.count)] + body
        let decoded = try LDAPResponse.decode(message)
        #expect(decoded.id == 2)
        guard case .result(5, 0, "") = decoded.response else { Issue.record("\(decoded.response)"); return }
        #expect(try decoded.controls.first?.cookie().cookie == Array("ab".utf8))
    }
}

/// A domain controller from scripts/ad-up, named by TESSERA_TEST_AD_ENV (its env file); scripts/test starts one.
struct DomainController {
    var ldap: String, ldaps: String, base: String, bindDN: String, password: String, caFile: String

    static var fromEnvironment: DomainController? {
        guard let path = ProcessInfo.processInfo.environment["TESSERA_TEST_AD_ENV"], !path.isEmpty,
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.hasPrefix("'"), value.hasSuffix("'") { value = String(value.dropFirst().dropLast()) }
            values[String(line[..<eq])] = value
        }
        guard let ldap = values["AD_LDAP_URI"], let ldaps = values["AD_LDAPS_URI"], let base = values["AD_BASE_DN"],
              let bindDN = values["AD_BIND_DN"], let password = values["AD_BIND_PASSWORD"], let ca = values["AD_CA_FILE"] else { return nil }
        return DomainController(ldap: ldap, ldaps: ldaps, base: base, bindDN: bindDN, password: password, caFile: ca)
    }

    func connect(_ mode: LDAPTLS.Mode = .startTLS) async throws -> LDAPConnection {
        let connection = try await LDAPConnection.connect(url: mode == .ldaps ? ldaps : ldap, tls: LDAPTLS(mode: mode, caFile: caFile))
        try await connection.bind(dn: bindDN, password: password)
        return connection
    }
}

@Suite("LDAP client against a real Samba AD domain controller", .enabled(if: DomainController.fromEnvironment != nil), .timeLimit(.minutes(10)))
struct LDAPLiveTests {
    let dc = DomainController.fromEnvironment!

    @Test("binds over LDAPS and StartTLS with the DC's certificate verified, and plain; a wrong password is result 49")
    func binds() async throws {
        for mode in [LDAPTLS.Mode.ldaps, .startTLS, .none] {
            let connection = try await dc.connect(mode)
            let me = try await connection.search(base: dc.base, filter: "(sAMAccountName=Administrator)", attributes: ["objectGUID", "sAMAccountName"])
            #expect(me.entries.count == 1 && me.entries[0].values("objectGUID").first?.count == 16)
            await connection.close()
        }
        let connection = try await LDAPConnection.connect(url: dc.ldaps, tls: LDAPTLS(mode: .ldaps, caFile: dc.caFile))
        do {
            try await connection.bind(dn: dc.bindDN, password: "wrong")
            Issue.record("a wrong password bound")
        } catch let error as LDAPError {
            #expect(error.isInvalidCredentials)
        }
        await connection.close()
        // A certificate nobody configured is refused at connect, in the handshake (no request is ever sent).
        await #expect(throws: (any Error).self) {
            _ = try await LDAPConnection.connect(url: dc.ldaps, tls: LDAPTLS(mode: .ldaps))
        }
        await #expect(throws: (any Error).self) {
            _ = try await LDAPConnection.connect(url: dc.ldap, tls: LDAPTLS(mode: .startTLS))
        }
    }

    @Test("adds entries, reads them back in pages, finds one by its objectGUID, follows a DirSync delta, deletes")
    func pagesAndDirSync() async throws {
        let connection = try await dc.connect()
        let ou = "OU=LDAPTest\(Int.random(in: 0..<1_000_000)),\(dc.base)"
        try await connection.add(dn: ou, [("objectClass", [Array("organizationalUnit".utf8)])])
        var dns: [String] = []
        for i in 0..<25 {
            let dn = "CN=paged\(i),\(ou)"
            try await connection.add(dn: dn, [("objectClass", [Array("user".utf8)]), ("sAMAccountName", [Array("p\(i)-\(ou.hashValue & 0xffff)".utf8)])])
            dns.append(dn)
        }
        var pages = 0, seen: [LDAPEntry] = []
        try await connection.searchPaged(base: ou, filter: "(objectClass=user)", attributes: ["objectGUID", "uSNChanged"], pageSize: 10) { page in
            pages += 1
            seen += page
        }
        #expect(pages == 3 && seen.count == 25)
        let guid = try #require(seen.first?.values("objectGUID").first)
        let byGUID = try await connection.search(base: dc.base, filter: "(objectGUID=\(LDAPFilter.escape(guid)))", attributes: ["distinguishedName"])
        #expect(byGUID.entries.map(\.dn) == [seen[0].dn])

        // DirSync: everything first, then exactly what changed.
        var cookie: [UInt8] = []
        var more = true
        while more {
            let page = try await connection.search(base: dc.base, filter: "(objectClass=user)", attributes: ["objectGUID", "description"],
                                                   controls: [.dirSync(cookie: cookie)])
            let control = try #require(page.controls.first { $0.oid == LDAPControl.dirSyncOID })
            (more, cookie) = try control.cookie()
        }
        try await connection.modify(dn: dns[3], [LDAPModification(.replace, "description", [Array("changed".utf8)])])
        try await connection.delete(dn: dns[4])
        let delta = try await connection.search(base: dc.base, filter: "(objectClass=user)", attributes: ["objectGUID", "description", "isDeleted"],
                                                controls: [.dirSync(cookie: cookie)])
        let changed = delta.entries.first { $0.string("description") == "changed" }
        #expect(changed != nil)
        #expect(delta.entries.contains { $0.string("isDeleted") == "TRUE" })
        for dn in dns where dn != dns[4] { try await connection.delete(dn: dn) }
        try await connection.delete(dn: ou)
        await connection.close()
    }
}
