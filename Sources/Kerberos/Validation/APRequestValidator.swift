import Crypto

public import struct Foundation.Date

/// What a validated AP-REQ proves: who the client is, per its ticket and its PAC, and the reply for mutual
/// authentication.
public struct AcceptedRequest: Sendable {
    /// The client principal (`WS01$`) and realm.
    public let client: PrincipalName
    public let clientRealm: String
    /// The ticket's authentication and end times, in seconds since 1970.
    public let authTime: Int64
    public let endTime: Int64
    /// The PAC, with its server signature verified.
    public let pac: PAC
    /// The token to send back in `WWW-Authenticate: Negotiate …` when the client asked for mutual authentication,
    /// framed as the request was (SPNEGO NegTokenResp, GSS-API krb5 token, or bare AP-REP); nil otherwise.
    public let replyToken: [UInt8]?
}

/// Validates Kerberos AP-REQs for one service, as RFC 4120 section 3.2.3 describes the server's checks, with the
/// PAC checks of MS-PAC and MS-KILE. Time comes in with each call; the replay cache and randomness are injected.
public struct APRequestValidator: Sendable {
    /// The service principal tickets must be for (`adrs/tessera.corp.example.test`).
    public let servicePrincipal: PrincipalName
    /// The realm tickets must be from (`CORP.EXAMPLE.TEST`).
    public let realm: String
    public let keys: ServiceKeys
    public let replayCache: any ReplayCache
    /// The allowed difference between the client's clock and ours (RFC 4120 suggests 5 minutes, as AD uses).
    public let clockSkew: Int64
    private let randomBytes: @Sendable (Int) -> [UInt8]

    public init(
        servicePrincipal: PrincipalName, realm: String, keys: ServiceKeys, replayCache: any ReplayCache,
        clockSkew: Duration = .seconds(300),
        randomBytes: (@Sendable (Int) -> [UInt8])? = nil
    ) {
        self.servicePrincipal = servicePrincipal
        self.realm = realm
        self.keys = keys
        self.replayCache = replayCache
        self.clockSkew = clockSkew.components.seconds
        self.randomBytes = randomBytes ?? Self.systemRandomBytes
    }

    /// BoringSSL's RAND_bytes, through swift-crypto, drawn a few kilobytes at a time.
    @Sendable private static func systemRandomBytes(_ count: Int) -> [UInt8] {
        randomPool.bytes(count)
    }
    private static let randomPool = RandomPool()

    /// Validates `token` (the bytes of `Authorization: Negotiate <base64>`, or a bare AP-REQ) at time `now`.
    /// Throws a ``KerberosError`` naming the Windows error on any failure; a token that fails leaves nothing in
    /// the replay cache.
    public func validate(_ token: some Collection<UInt8>, now: Date) async throws -> AcceptedRequest {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        let (accepted, entry, expires) = try check(token, now: seconds)
        // The replay cache, last, so that only accepted authenticators are remembered; the reply made before it is
        // returned only once the authenticator is known to be fresh.
        guard try await replayCache.insert(entry, expires: expires, now: seconds) else {
            throw KerberosError(
                .replay, "KRB_AP_ERR_REPEAT: this authenticator was already presented (a replayed request)")
        }
        return accepted
    }

    /// Every check but the replay cache's, and the reply: what ``validate(_:now:)`` returns, and the replay cache's
    /// entry for the authenticator with the time it may be forgotten. Synchronous, so that nothing it reads is
    /// carried across the replay cache's suspension.
    private func check(_ token: some Collection<UInt8>, now: Int64) throws
        -> (AcceptedRequest, ReplayEntry, expires: Int64)
    {
        let request = try APRequest(token: token)
        let (ticketPart, authenticator, key) = try open(request, now: now)

        // The PAC: present, signed by the KDC for this service, and about this client and this logon.
        guard let pacBytes = try AuthorizationElement.pac(in: ticketPart.authorizationData) else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the ticket carries no PAC (AD-WIN2K-PAC)")
        }
        let pac = try PAC(bytes: pacBytes)
        try pac.verifyServerSignature(with: key)
        guard ticketPart.clientName.matches(text: pac.clientName), pac.clientTime == ticketPart.authTime
        else {
            throw KerberosError(
                .pacInvalid,
                "KRB_AP_ERR_MODIFIED: the PAC's client info (\(pac.clientName)) does not match the ticket's client "
                    + "(\(ticketPart.clientName)) and authentication time")
        }

        var reply: [UInt8]? = nil
        if request.mutualRequired {
            reply = try APReply.encode(
                authenticatorTime: authenticator.time, microseconds: authenticator.microseconds,
                sequenceNumber: authenticator.sequenceNumber, sessionKey: ticketPart.sessionKey,
                confounder: randomBytes(16), framing: request.framing)
        }
        let entry = ReplayEntry(
            client: ticketPart.clientName.qualified(realm: ticketPart.clientRealm), time: authenticator.time,
            microseconds: authenticator.microseconds, checksumHash: Self.sha256(request.authenticator.cipher))
        let accepted = AcceptedRequest(
            client: ticketPart.clientName, clientRealm: ticketPart.clientRealm, authTime: ticketPart.authTime,
            endTime: ticketPart.endTime, pac: pac, replyToken: reply)
        return (accepted, entry, authenticator.time + clockSkew)
    }

    /// SHA-256 of `bytes`, through swift-crypto's buffer interface (its `DataProtocol` one copies).
    private static func sha256(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var hash = SHA256()
        bytes.withUnsafeBytes { hash.update(bufferPointer: $0) }
        return hash.finalize().withUnsafeBytes { Array($0) }
    }

    /// RFC 4120 section 3.2.3's checks up to the authenticator: the ticket's realm, service and key, its
    /// decryption, the authenticator's decryption and client, then time: an expired ticket first (the client's
    /// remedy is a new ticket), the authenticator's skew, and a ticket not yet valid (a postdated one).
    private func open(_ request: APRequest, now: Int64) throws
        -> (EncTicketPart, Authenticator, ServiceKeys.PreparedKey)
    {
        let ticket = request.ticket
        guard ticket.realm == realm else {
            throw KerberosError(
                .wrongRealm, "SEC_E_WRONG_PRINCIPAL: the ticket is from the realm \(ticket.realm), not \(realm)")
        }
        guard ticket.serverName.matches(servicePrincipal) else {
            throw KerberosError(
                .targetUnknown,
                "SEC_E_TARGET_UNKNOWN (KRB_AP_ERR_NOT_US): the ticket is for \(ticket.serverName), not \(servicePrincipal)")
        }
        let encrypted = ticket.encryptedPart
        let profile = try encrypted.encryptionType.profile()
        var opened: (EncTicketPart, ServiceKeys.PreparedKey)?
        for key in try keys.candidates(type: encrypted.encryptionType, version: encrypted.keyVersion) {
            if let plain = try? profile.decrypt(encrypted.cipher, keys: key.ticket) {
                opened = (try EncTicketPart(derEncoded: plain), key)
                break
            }
        }
        guard let (ticketPart, serviceKey) = opened else {
            throw KerberosError.integrity(
                "the ticket does not decrypt with the service key (kvno \(encrypted.keyVersion.map(String.init) ?? "-"))")
        }

        let sessionKey = ticketPart.sessionKey
        let authenticatorEncrypted = request.authenticator
        guard authenticatorEncrypted.encryptionType == sessionKey.encryptionType else {
            throw KerberosError.integrity("the authenticator is not encrypted with the session key's type")
        }
        let authenticator = try Authenticator(
            derEncoded: try sessionKey.decrypt(authenticatorEncrypted.cipher, usage: Authenticator.keyUsage))

        guard authenticator.clientName.matches(ticketPart.clientName), authenticator.clientRealm == ticketPart.clientRealm
        else {
            throw KerberosError(
                .clientMismatch,
                "KRB_AP_ERR_BADMATCH: the authenticator's client \(authenticator.clientName)@\(authenticator.clientRealm) "
                    + "is not the ticket's \(ticketPart.clientName)@\(ticketPart.clientRealm)")
        }
        guard now - clockSkew <= ticketPart.endTime else {
            throw KerberosError(
                .ticketExpired, "SEC_E_CONTEXT_EXPIRED (KRB_AP_ERR_TKT_EXPIRED): the ticket expired; get a new one")
        }
        guard abs(authenticator.time - now) <= clockSkew else {
            throw KerberosError(
                .clockSkew,
                "SEC_E_TIME_SKEW (KRB_AP_ERR_SKEW): the client's clock is \(authenticator.time - now) s from ours "
                    + "(at most \(clockSkew) s allowed)")
        }
        guard (ticketPart.startTime ?? ticketPart.authTime) - clockSkew <= now else {
            throw KerberosError(.ticketNotYetValid, "KRB_AP_ERR_TKT_NYV: the ticket is not yet valid")
        }
        return (ticketPart, authenticator, serviceKey)
    }
}
