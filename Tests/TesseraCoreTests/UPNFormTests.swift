import Testing
@testable import TesseraCore

/// A user principal name's form is read by bytes when it is ASCII without a carriage return (`UserRules.asciiDomain`),
/// and by characters otherwise (`UserRules.domainByCharacters`): both must give the same answer for every UPN the bytes
/// read.
@Suite("A user principal name's form, read by bytes")
struct UPNFormTests {
    /// UPNs at every edge of the form: the `@` (none, two, first, last), dots at the ends of the name, the 113-character
    /// limit, every allowed symbol, every other ASCII byte in the name and in the domain, line feeds and carriage returns
    /// (CR LF is one character), and names that are not ASCII (which the bytes leave to the characters).
    static var upns: [String] {
        var out = ["ann@contoso.test", "Ann.Lee@Contoso.Test", "a@b", "@contoso.test", "ann@", "@", "", "ann", "ann@@contoso.test",
                   "a@b@c", ".ann@contoso.test", "ann.@contoso.test", "a.n.n@contoso.test", "a..n@contoso.test",
                   "'.-_!#^~+&@contoso.test", "x'.-_!#^~+&x@contoso.test", "ann@contoso.test\r\n", "ann@contoso\r\n.test",
                   "ann@con\rtoso.test", "ann\r\n@contoso.test", "ann@contoso.test\n", "ann@contoso.test\r", "ännchen@contoso.test",
                   "ann@cöntoso.test", "e\u{301}@contoso.test", "ann@contoso.test\u{301}", "٣@contoso.test", "ⅷ@contoso.test",
                   "ann@contoso.test😀", "😀@contoso.test", "ann@CONTOSO.TEST"]
        for length in 110...116 {
            out.append(String(repeating: "a", count: length - 13) + "@contoso.test")
            out.append(String(repeating: "a", count: length - 15) + "@contoso.test\r\n")
        }
        for byte in UInt8(0)..<0x80 {
            let c = String(UnicodeScalar(byte))
            out += ["a\(c)b@contoso.test", "\(c)@contoso.test", "ab@contoso\(c)test", "ab\(c)@contoso.test"]
        }
        return out
    }

    @Test("the bytes and the characters give the same domain, or the same refusal, for every UPN the bytes read")
    func sameAnswer() throws {
        var readByBytes = 0
        for upn in Self.upns {
            guard let domain = UserRules.asciiDomain(of: upn) else {
                #expect(upn.utf8.contains { $0 >= 0x80 || $0 == 0x0D }, "\(upn.debugDescription)")
                continue
            }
            readByBytes += 1
            #expect(domain == UserRules.domainByCharacters(of: upn), "\(upn.debugDescription)")
        }
        #expect(readByBytes > 500)
        #expect(UserRules.asciiDomain(of: "Ann.Lee@Contoso.Test") == "Contoso.Test")
        #expect(throws: DirectoryError.self) { try UserRules.verifiedDomain(of: ".ann@contoso.test") }
        #expect(try UserRules.verifiedDomain(of: "Ann@Contoso.Test").id == "contoso.test")
        #expect(try UserRules.verifiedDomain(of: "ännchen@Cöntoso.Test").id == "cöntoso.test")
    }
}
