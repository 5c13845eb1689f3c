import Testing
@testable import TesseraCore

@Suite("Secrets")
struct SecretsTests {
    @Test("client secrets look like Entra's and verify only against their own digest")
    func clientSecrets() {
        let secret = Secrets.makeClientSecret()
        #expect(secret.count == 40)
        #expect(Array(secret)[3...5] == ["8", "Q", "~"])
        let digest = Secrets.digest(secret)
        #expect(Secrets.matches(secret, digest: digest))
        #expect(!Secrets.matches(secret + "x", digest: digest))
        #expect(!Secrets.matches(Secrets.makeClientSecret(), digest: digest))
    }

    @Test("digests are salted: the same secret never stores the same digest, and digests stored before salts still verify")
    func saltedDigests() {
        let secret = Secrets.makeClientSecret()
        let first = Secrets.digest(secret), second = Secrets.digest(secret)
        #expect(first != second && first.hasPrefix("s1$") && !first.contains(Secrets.fingerprint(secret)))
        #expect(Secrets.matches(secret, digest: first) && Secrets.matches(secret, digest: second))
        #expect(Secrets.matches(secret, digest: Secrets.fingerprint(secret)))
        #expect(!Secrets.matches(secret, digest: "s1$zz$" + Secrets.fingerprint(secret)))
        #expect(!Secrets.matches("", digest: ""))
    }

    @Test("random bytes: exactly as many as asked, fresh each time, spread over every value", arguments: [0, 1, 7, 8, 16, 32, 300])
    func randomBytes(_ count: Int) {
        let first = Secrets.randomBytes(count), second = Secrets.randomBytes(count)
        #expect(first.count == count && second.count == count)
        if count >= 16 { #expect(first != second) }
        // 256 draws of 32 bytes: every byte value appears (a fixed or short fill would not; chance of a miss ≈ 256·e⁻³²).
        if count == 32 {
            var seen = Set<UInt8>()
            for _ in 0..<256 { seen.formUnion(Secrets.randomBytes(32)) }
            #expect(seen.count == 256)
            // The last of many sizes is filled too (a partial fill would leave zeros at the end).
            #expect((0..<200).contains { _ in Secrets.randomBytes(32)[31] != 0 })
        }
    }

    @Test("constant-time comparison compares whole values")
    func constantTime() {
        #expect(Secrets.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Secrets.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Secrets.constantTimeEquals([1, 2], [1, 2, 3]))
    }

    @Test("base64url round-trips with or without padding", arguments: [[UInt8](), [0xff], [0xfb, 0xef], [1, 2, 3, 4, 5]])
    func base64url(_ bytes: [UInt8]) {
        let encoded = Base64URL.encode(bytes)
        #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
        #expect(Base64URL.decode(encoded).map(Array.init) == bytes)
        #expect(Base64URL.decode(encoded + String(repeating: "=", count: (4 - encoded.count % 4) % 4)).map(Array.init) == bytes)
    }

    @Test("user principal names and domains follow Entra's rules", arguments: [
        ("contoso.test", true), ("a.b.c", true), ("localhost", false), ("-bad.test", false), ("ex ample.test", false),
    ])
    func domains(_ domain: String, _ valid: Bool) {
        #expect(TenantProvisioner.isValidDomain(domain) == valid)
    }
}
