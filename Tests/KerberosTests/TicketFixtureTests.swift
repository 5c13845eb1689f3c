import Crypto
import Foundation
import Testing

@testable import Kerberos

/// Real tickets from Samba's KDC (Fixtures/README.md): decoded, validated, and refused when tampered with.
@Suite struct TicketFixtureTests {
    let keys = try! ServiceKeys(keytab: Fixtures.keytab)
    let spn = PrincipalName(Fixtures.metadata.servicePrincipal)

    func validator(
        spn: PrincipalName? = nil, realm: String? = nil, keys: ServiceKeys? = nil, cache: any ReplayCache = InMemoryReplayCache()
    ) -> APRequestValidator {
        APRequestValidator(
            servicePrincipal: spn ?? self.spn, realm: realm ?? Fixtures.metadata.realm, keys: keys ?? self.keys,
            replayCache: cache, randomBytes: { [UInt8](repeating: 7, count: $0) })
    }

    func expectError(_ code: KerberosError.Code, _ windowsName: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("accepted; expected \(code)")
        } catch let error as KerberosError {
            #expect(error.code == code, "\(error.message)")
            #expect(error.message.contains(windowsName), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// The ticket's decrypted part and the authenticator, through the library's internals.
    func open(_ token: [UInt8]) throws -> (EncTicketPart, Authenticator) {
        let request = try APRequest(token: token)
        let serviceKey = try #require(keys.keys.first { $0.encryptionType == request.ticket.encryptedPart.encryptionType })
        let profile = try serviceKey.encryptionType.profile()
        let ticketPart = try EncTicketPart(
            derEncoded: profile.decrypt(request.ticket.encryptedPart.cipher, keys: profile.usageKeys(serviceKey.key, usage: 2)))
        let session = ticketPart.sessionKey
        let sessionProfile = try session.encryptionType.profile()
        let authenticator = try Authenticator(
            derEncoded: sessionProfile.decrypt(request.authenticator.cipher, keys: sessionProfile.usageKeys(session.key, usage: 11)))
        return (ticketPart, authenticator)
    }

    @Test func theKeytabGivesTheAESKeysOfItsKeyVersion() {
        let types = keys.keys.map(\.encryptionType).sorted { $0.rawValue < $1.rawValue }
        #expect(types == [.aes128CtsHmacSha196, .aes256CtsHmacSha196])
        #expect(keys.keys.allSatisfy { $0.version == 2 })
    }

    @Test func aTruncatedOrForeignKeytabIsRefused() {
        #expect(throws: KerberosError(.malformed, "")) { try ServiceKeys(keytab: Fixtures.keytab.dropLast(7)) }
        #expect(throws: KerberosError(.malformed, "")) { try ServiceKeys(keytab: [0x05, 0x01, 0, 0, 0, 0]) }
    }

    @Test func aSIDPrintsInItsStringForm() throws {
        // S-1-5-21-1-2-3: revision 1, 3 sub-authorities after 21, authority 5 (big-endian), sub-authorities LE.
        let bytes: [UInt8] = [1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
        let sid = try SecurityIdentifier(bytes: bytes)
        #expect(sid.description == "S-1-5-21-1-2-3")
        #expect(sid.appending(1104).description == "S-1-5-21-1-2-3-1104")
    }

    @Test(arguments: ["ws01-spnego.b64", "ws01-krb5.b64"])
    func aComputersTicketValidatesWithItsPAC(_ file: String) async throws {
        let accepted = try await validator().validate(Fixtures.token(file), now: Fixtures.captureTime)
        #expect(accepted.client.description == "WS01$")
        #expect(accepted.clientRealm == "CORP.EXAMPLE.TEST")
        let info = accepted.pac.logonInfo
        #expect(info.userName == "WS01$")
        #expect(info.domainName == "CORP")
        let domainSid = try SecurityIdentifier(bytes: [UInt8](Data(base64Encoded: Fixtures.metadata.domainSidBase64)!))
        #expect(info.domainSid == domainSid)
        #expect(info.userSid == domainSid.appending(info.userId))
        #expect(info.userId >= 1000)
        #expect(info.primaryGroupId == 515)  // Domain Computers
        #expect(info.groups.count >= 2)  // Domain Computers and Tessera Devices
        #expect(info.groupSids.first == domainSid.appending(515))
        #expect(accepted.pac.clientName == "WS01$")
        #expect(accepted.pac.clientTime == accepted.authTime)
        #expect(accepted.pac.kdcSignature.type == 16)
        #expect(accepted.endTime > accepted.authTime)
    }

    @Test func theMutualAuthenticationReplyIsAnAPREPInSPNEGOUnderTheSessionKey() async throws {
        let token = Fixtures.token("ws01-spnego.b64")
        let accepted = try await validator().validate(token, now: Fixtures.captureTime)
        let reply = try #require(accepted.replyToken)

        // NegTokenResp [1] { negState [0] accept-completed, supportedMech [1] krb5, responseToken [2] }.
        var root = DERReader(reply[...], what: "the reply")
        let (negState, supportedMech, responseToken) = try root.field(1) { negTokenResp in
            try negTokenResp.sequence { fields in
                (
                    try fields.field(0) { Array(try $0.element(0x0A)) },  // ENUMERATED
                    try fields.field(1) { GSSToken.Mechanism(encoded: try $0.objectIdentifier()) },
                    try fields.field(2) { try $0.octets() }
                )
            }
        }
        #expect(root.isAtEnd)
        #expect(negState == [0])
        #expect(supportedMech == .kerberos)
        let (mech, inner) = try GSSToken.unwrap(responseToken)
        #expect(mech == .kerberos)
        #expect(Array(inner.prefix(2)) == [0x02, 0x00])

        // Decrypt the AP-REP with the session key from the ticket and find the authenticator's time in it.
        let (ticketPart, authenticator) = try open(token)
        let session = ticketPart.sessionKey
        let sessionProfile = try session.encryptionType.profile()
        var apRep = DERReader(inner.dropFirst(2), what: "the AP-REP")
        let encrypted = try apRep.applicationSequence(15) { fields in
            #expect(try fields.field(0) { try $0.int32() } == 5)
            #expect(try fields.field(1) { try $0.int32() } == 15)
            return try fields.field(2) { try EncryptedData(from: &$0) }
        }
        let part = try sessionProfile.decrypt(encrypted.cipher, keys: sessionProfile.usageKeys(session.key, usage: 12))
        var partReader = DERReader(part, what: "the EncAPRepPart")
        let (ctime, cusec) = try partReader.applicationSequence(27) { fields in
            let time = try fields.field(0) { try $0.time() }
            let usec = try fields.field(1) { try $0.int32() }
            _ = try fields.optionalField(3) { try $0.uint32() }
            return (time, usec)
        }
        #expect(ctime == authenticator.time)
        #expect(cusec == authenticator.microseconds)
    }

    @Test func aFlippedBitInTheTicketsCiphertextFailsIntegrity() async throws {
        var token = Fixtures.token("ws01-krb5.b64")
        let request = try APRequest(token: token)
        let range = try #require(token.firstRange(of: Array(request.ticket.encryptedPart.cipher)))
        token[range.lowerBound + 100] ^= 0x04
        let cache = InMemoryReplayCache()
        await expectError(.integrityFailure, "SEC_E_MESSAGE_ALTERED") {
            _ = try await validator(cache: cache).validate(token, now: Fixtures.captureTime)
        }
        #expect(cache.count == 0)
    }

    @Test func aPACWithAnAlteredServerChecksumIsRefused() async throws {
        var token = Fixtures.token("ws01-krb5.b64")
        let request = try APRequest(token: token)
        let cipher = Array(request.ticket.encryptedPart.cipher)
        let key = try #require(keys.keys.first { $0.encryptionType == request.ticket.encryptedPart.encryptionType })
        let profile = try key.encryptionType.profile()
        let usage = try profile.usageKeys(key.key, usage: 2)
        var plain = try profile.decrypt(cipher[...], keys: usage)
        let ticketPart = try EncTicketPart(derEncoded: plain)
        let pacBytes = try #require(try AuthorizationElement.pac(in: ticketPart.authorizationData))
        let pac = try PAC(bytes: pacBytes)
        let pacStart = try #require(plain.firstRange(of: Array(pacBytes))).lowerBound
        plain[pacStart + pac.serverSignature.range.lowerBound] ^= 0x80
        let forged = try profile.encrypt(Array(plain), keys: usage, confounder: [UInt8](repeating: 1, count: 16))
        let range = try #require(token.firstRange(of: cipher))
        token.replaceSubrange(range, with: forged)
        await expectError(.pacInvalid, "KRB_AP_ERR_MODIFIED") {
            _ = try await validator().validate(token, now: Fixtures.captureTime)
        }
    }

    @Test func anAuthenticatorNamingAnotherClientIsABadMatch() async throws {
        // Re-encrypt the authenticator (with the session key, as only the client could) naming WS02$ instead.
        var token = Fixtures.token("ws01-krb5.b64")
        let request = try APRequest(token: token)
        let (ticketPart, _) = try open(token)
        let session = ticketPart.sessionKey
        let profile = try session.encryptionType.profile()
        let keys = try profile.usageKeys(session.key, usage: 11)
        let cipher = Array(request.authenticator.cipher)
        var plain = try profile.decrypt(cipher[...], keys: keys)
        let name = try #require(plain.firstRange(of: Array("WS01$".utf8)))
        plain.replaceSubrange(name, with: Array("WS02$".utf8))
        let forged = try profile.encrypt(Array(plain), keys: keys, confounder: [UInt8](repeating: 3, count: 16))
        token.replaceSubrange(try #require(token.firstRange(of: cipher)), with: forged)
        await expectError(.clientMismatch, "KRB_AP_ERR_BADMATCH") {
            _ = try await validator().validate(token, now: Fixtures.captureTime)
        }
    }

    @Test func aKerberosTokenGetsItsReplyAsAKerberosToken() async throws {
        let accepted = try await validator().validate(Fixtures.token("ws01-krb5.b64"), now: Fixtures.captureTime)
        let reply = try #require(accepted.replyToken)
        let (mech, inner) = try GSSToken.unwrap(reply[...])
        #expect(mech == .kerberos)
        #expect(Array(inner.prefix(3)) == [0x02, 0x00, 0x6F])  // TOK_ID 02 00, then [APPLICATION 15]
    }

    /// The PAC is read from memory lent to its reader: every truncation and many flipped bits of a real one are either
    /// read or refused as a Kerberos error, never read past its end.
    @Test func truncatedAndAlteredPACsAreReadWithinTheirBytes() throws {
        let (ticketPart, _) = try open(Fixtures.token("ws01-krb5.b64"))
        let pac = Array(try #require(try AuthorizationElement.pac(in: ticketPart.authorizationData)))
        #expect(try PAC(bytes: pac[...]).clientName == "WS01$")
        var refused = 0
        func check(_ bytes: [UInt8]) {
            do {
                _ = try PAC(bytes: bytes[...])
            } catch let error as KerberosError {
                #expect(error.code == .pacInvalid)
                refused += 1
            } catch {
                Issue.record("an altered PAC gave \(error)")
            }
        }
        for length in 0..<pac.count { check(Array(pac.prefix(length))) }
        for index in pac.indices {
            for bit: UInt8 in [0x01, 0x10, 0x80] {
                var altered = pac
                altered[index] ^= bit
                check(altered)
            }
        }
        #expect(refused >= pac.count)  // every truncation at least
        // A PAC inside a larger buffer is read at its own offsets.
        let framed = [0xEE, 0xEE, 0xEE] + pac
        #expect(try PAC(bytes: framed[3...]).logonInfo.userName == "WS01$")
    }

    @Test func pacNamesDecodeFromUTF16LittleEndian() {
        #expect(LogonInfo.utf16LittleEndian([0x57, 0, 0x53, 0, 0x30, 0, 0x31, 0, 0x24, 0][...]) == "WS01$")
        #expect(LogonInfo.utf16LittleEndian([0x5A, 0, 0x6F, 0, 0xEB, 0][...]) == "Zo\u{EB}")
        #expect(LogonInfo.utf16LittleEndian([0x22, 0x6F, 0x41, 0][...]) == "\u{6F22}A")
        #expect(LogonInfo.utf16LittleEndian([0x3D, 0xD8, 0x00, 0xDE][...]) == "\u{1F600}")  // a surrogate pair
        #expect(LogonInfo.utf16LittleEndian([][...]) == "")
    }

    @Test func kerberosTimesRoundTrip() throws {
        for seconds: Int64 in [0, 951_782_400, 1_796_535_311, 4_102_444_799] {
            var reader = DERReader(([0x18, 15] + KerberosTime.bytes(seconds))[...], what: "a time")
            #expect(try reader.time() == seconds)
        }
        #expect(String(decoding: KerberosTime.bytes(1_796_535_311), as: UTF8.self) == "20261206053511Z")
        #expect(KerberosTime.seconds(Array("20261306053511Z".utf8)[...]) == nil)  // month 13
        #expect(KerberosTime.seconds(Array("2026120605351Z".utf8)[...]) == nil)  // a digit short
    }

    @Test func aTicketForAnotherServiceIsTargetUnknown() async {
        await expectError(.targetUnknown, "SEC_E_TARGET_UNKNOWN") {
            _ = try await validator(spn: PrincipalName("HTTP/tessera.corp.example.test"))
                .validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime)
        }
    }

    @Test func aTicketFromAnotherRealmIsRefused() async {
        await expectError(.wrongRealm, "SEC_E_WRONG_PRINCIPAL") {
            _ = try await validator(realm: "OTHER.EXAMPLE.TEST").validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime)
        }
    }

    @Test func aKeyVersionTheServiceDoesNotHaveIsLogonDenied() async throws {
        let other = try KerberosKey(encryptionType: .aes256CtsHmacSha196, version: 3, bytes: [UInt8](repeating: 9, count: 32))
        let rotated = try ServiceKeys(keys: [other])
        await expectError(.unknownKeyVersion, "SEC_E_LOGON_DENIED") {
            _ = try await validator(keys: rotated).validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime)
        }
    }

    @Test func afterARotationThePreviousKeyVersionStillValidatesItsTickets() async throws {
        let next = try KerberosKey(encryptionType: .aes256CtsHmacSha196, version: 3, bytes: [UInt8](repeating: 9, count: 32))
        let both = try ServiceKeys(keys: [next] + keys.keys)
        let accepted = try await validator(keys: both).validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime)
        #expect(accepted.client.description == "WS01$")
    }

    @Test func anExpiredTicketIsRefused() async throws {
        let later = Fixtures.captureTime.addingTimeInterval(11 * 3_600)  // AD's tickets last 10 hours
        await expectError(.ticketExpired, "SEC_E_CONTEXT_EXPIRED") {
            _ = try await validator().validate(Fixtures.token("ws01-spnego.b64"), now: later)
        }
    }

    /// Our clock `offset` seconds from the authenticator's ctime.
    func clock(_ offset: Int64, from token: [UInt8]) throws -> Date {
        Date(timeIntervalSince1970: TimeInterval(try open(token).1.time + offset))
    }

    @Test(arguments: [-301, 301] as [Int64])
    func anAuthenticatorBeyondFiveMinutesOfSkewIsRefused(_ offset: Int64) async throws {
        let token = Fixtures.token("ws01-spnego.b64")
        let now = try clock(offset, from: token)
        await expectError(.clockSkew, "SEC_E_TIME_SKEW") { _ = try await validator().validate(token, now: now) }
    }

    @Test(arguments: [-300, 300] as [Int64])
    func anAuthenticatorWithinFiveMinutesOfSkewIsAccepted(_ offset: Int64) async throws {
        let token = Fixtures.token("ws01-spnego.b64")
        _ = try await validator().validate(token, now: try clock(offset, from: token))
    }

    @Test func aReplayedTokenIsRefusedByTheCache() async throws {
        let cache = InMemoryReplayCache()
        let validator = validator(cache: cache)
        _ = try await validator.validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime)
        await expectError(.replay, "KRB_AP_ERR_REPEAT") {
            _ = try await validator.validate(Fixtures.token("ws01-spnego.b64"), now: Fixtures.captureTime.addingTimeInterval(5))
        }
        #expect(cache.count == 1)
    }

    @Test func replayEntriesHashByEveryField() {
        let entry = ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 5, checksumHash: [1, 2])
        let others = [
            ReplayEntry(client: "WS02$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 5, checksumHash: [1, 2]),
            ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_001, microseconds: 5, checksumHash: [1, 2]),
            ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 6, checksumHash: [1, 2]),
            ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 5, checksumHash: [1, 3]),
        ]
        let same = ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 5, checksumHash: [1, 2])
        #expect(same.hashValue == entry.hashValue)
        #expect(Set([entry, same] + others).count == 1 + others.count)
    }

    @Test func theReplayCacheForgetsAuthenticatorsOutsideTheSkewWindow() async throws {
        let cache = InMemoryReplayCache()
        let entry = ReplayEntry(client: "WS01$@CORP.EXAMPLE.TEST", time: 1_000, microseconds: 5, checksumHash: [1, 2])
        #expect(cache.insert(entry, expires: 1_300, now: 1_000))
        #expect(!cache.insert(entry, expires: 1_300, now: 1_200))
        #expect(cache.insert(entry, expires: 1_700, now: 1_400))
    }

    @Test func anRC4TicketIsRefusedByName() async {
        await expectError(.unsupportedEncryptionType, "SEC_E_ETYPE_NOT_SUPP") {
            _ = try await validator(spn: PrincipalName(Fixtures.metadata.rc4ServicePrincipal))
                .validate(Fixtures.token("ws01-rc4.b64"), now: Fixtures.captureTime)
        }
    }

    @Test(arguments: [[], [0x60, 0x03, 0x06, 0x01, 0x00], Array("Negotiate".utf8), [0x6E, 0x00]] as [[UInt8]])
    func garbageIsAnInvalidToken(_ token: [UInt8]) async {
        await expectError(.malformed, "SEC_E_INVALID_TOKEN") {
            _ = try await validator().validate(token, now: Fixtures.captureTime)
        }
    }

    @Test func aTruncatedTokenIsAnInvalidToken() async {
        let token = Fixtures.token("ws01-spnego.b64")
        await expectError(.malformed, "SEC_E_INVALID_TOKEN") {
            _ = try await validator().validate(token.dropLast(10), now: Fixtures.captureTime)
        }
    }
}
