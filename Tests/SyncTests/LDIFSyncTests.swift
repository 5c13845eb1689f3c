import Foundation
import Testing
import LDAP
import Store
@testable import Sync
import TesseraCore

@Suite("A file connector: LDIF read whole at each run")
struct LDIFSyncTests {
    static func guid(_ n: UInt8) -> String { Data((0..<16).map { $0 == 15 ? n : UInt8($0) }).base64EncodedString() }

    static func record(_ name: String, _ n: UInt8, title: String = "Engineer", extra: String = "") -> String {
        """
        dn: CN=\(name),OU=Staff,DC=corp,DC=example,DC=test
        objectClass: top
        objectClass: user
        objectGUID:: \(guid(n))
        sAMAccountName: \(name)
        userPrincipalName: \(name)@contoso.test
        displayName: \(name.capitalized)
        title: \(title)
        userAccountControl: 512
        \(extra)
        """
    }

    @Test("values, base64, folded lines and comments parse; change records and records without a dn are refused")
    func parse() throws {
        let text = "version: 1\n# a comment\ndn: CN=a,DC=x\ndescription: one long\n  line\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\n\ndn: CN=b,DC=x\ncn: b\n"
        let entries = try LDIF.parse(text)
        #expect(entries.map(\.dn) == ["CN=a,DC=x", "CN=b,DC=x"])
        #expect(entries[0].string("description") == "one long line" && entries[0].values("objectGUID").first == Array(0..<16))
        #expect(throws: LDAPError.self) { try LDIF.parse("dn: CN=a\nchangetype: delete\n") }
        #expect(throws: LDAPError.self) { try LDIF.parse("cn: nobody\n") }
        #expect(throws: LDAPError.self) { try LDIF.parse("dn: CN=a\nobjectGUID:: !!!\n") }
    }

    @Test("a file connector creates, updates and deletes as the file changes")
    func runs() async throws {
        try await FileConnectorFixture.withTenant { f in
            try f.write(Self.record("ada", 1), Self.record("bob", 2), Self.record("cyd", 3))
            let first = try await f.run()
            #expect(first.full && first.added == 3 && first.status == "success", "\(first.json)")
            #expect(try await f.user("ada@contoso.test")?.body["onPremisesImmutableId"] == .string(Self.guid(1)))

            try f.write(Self.record("ada", 1, title: "Director"), Self.record("bob", 2))
            let second = try await f.run()
            #expect(second.updated == 1 && second.deleted == 1 && second.added == 0, "\(second.json)")
            #expect(try await f.user("ada@contoso.test")?.body["jobTitle"] == "Director")
            #expect(try await f.user("cyd@contoso.test") == nil)

            try f.write("dn: CN=broken\nchangetype: delete\n")
            let broken = try await f.run()
            #expect(broken.status == "failed" && broken.deleted == 0)
            #expect(try await f.user("bob@contoso.test") != nil)  // a bad file deletes nothing
        }
    }
}
