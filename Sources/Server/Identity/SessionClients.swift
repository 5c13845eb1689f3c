import Crypto
import Foundation
import TesseraCore

/// That a browser session signed in to a client app: recorded when `/authorize` issues the app a code or an ID token
/// for the session, so that ending the session (RP-initiated logout, `revokeSignInSessions`) can tell every app it
/// signed into, by front-channel and back-channel logout. Kept in the credential store beside the session, in the
/// session's family and owned by its user, and swept when the session would have expired.
struct SessionClientRecord: CredentialRecord, Hashable {
    enum State: String, Codable, Sendable { case active }
    static let kind = CredentialKind(rawValue: "sessionClient")

    /// Derived from the session and the client, so a second sign-in of the same app in the same session adds nothing.
    var id: String
    var sessionID: String
    var userID: String
    var clientID: String
    var expires: Date
    var state: State = .active
    /// The URL the app's sign-in came by (one of `--public-url`), whose issuer its ID tokens carry: a logout token for
    /// the app must carry the same `iss` (Back-Channel Logout 1.0 §2.4), whatever host the logout itself came by.
    /// Nil in records made before it was kept.
    var baseURL: String? = nil
    /// The tenant the app belongs to and whose tokens it got, when not the session's: a B2B direct connect sign-in
    /// (``DirectConnect``) is a session of the home tenant, recorded there, for an app of the resource tenant. Nil for
    /// the session's own tenant.
    var resourceTenant: String? = nil

    init(sessionID: String, userID: String, clientID: String, expires: Date, baseURL: String? = nil, resourceTenant: String? = nil) {
        id = Self.id(sessionID: sessionID, clientID: clientID)
        self.sessionID = sessionID
        self.userID = userID
        self.clientID = clientID
        self.expires = expires
        self.baseURL = baseURL
        self.resourceTenant = resourceTenant
    }

    /// The tenant whose app this is and whose issuer, `sub` and `tid` its tokens carry, for a session of `tenant`.
    func issuingTenant(session tenant: String) -> String { resourceTenant ?? tenant }

    var owner: String? { userID }
    var family: String? { sessionID }

    /// A lowercase GUID-shaped digest of the session and client ids (the table's key is per tenant, across kinds).
    /// Written byte by byte into one buffer (the hex string, its five slices and their join were about 0.5% of a sign-in's
    /// CPU): the text is the one `Hex.encode` of the digest's first 16 bytes cut 8-4-4-4-12 gives.
    static func id(sessionID: String, clientID: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("session-client:".utf8))
        hasher.update(data: Array(sessionID.utf8))
        hasher.update(data: [UInt8(ascii: ":")])
        hasher.update(data: Array(clientID.lowercased().utf8))
        let digest = hasher.finalize()
        return digest.withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                let digits: StaticString = "0123456789abcdef"
                var n = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[n] = UInt8(ascii: "-")
                        n += 1
                    }
                    out[n] = digits.utf8Start[Int(bytes[i] >> 4)]
                    out[n + 1] = digits.utf8Start[Int(bytes[i] & 15)]
                    n += 2
                }
                return n
            }
        }
    }
}

extension SessionClientRecord: HandCodedCredential {
    var jsonMembers: [String: JSONValue] {
        var members: [String: JSONValue] = [
            "id": .string(id), "sessionID": .string(sessionID), "userID": .string(userID), "clientID": .string(clientID),
            "expires": .double(expires.timeIntervalSince1970), "state": .string(state.rawValue),
        ]
        if let baseURL { members["baseURL"] = .string(baseURL) }
        if let resourceTenant { members["resourceTenant"] = .string(resourceTenant) }
        return members
    }

    init?(jsonMembers m: [String: JSONValue]) {
        guard let id = m["id"]?.stringValue, let sessionID = m["sessionID"]?.stringValue, let userID = m["userID"]?.stringValue,
              let clientID = m["clientID"]?.stringValue, let expires = m["expires"]?.doubleValue,
              let state = m["state"]?.stringValue.flatMap(State.init(rawValue:))
        else { return nil }
        func optional(_ key: String) -> String?? {
            guard let value = m[key], value != .null else { return .some(nil) }
            return value.stringValue.map { .some($0) }
        }
        guard case .some(let baseURL) = optional("baseURL"), case .some(let resourceTenant) = optional("resourceTenant") else { return nil }
        self.init(sessionID: sessionID, userID: userID, clientID: clientID, expires: Date(timeIntervalSince1970: expires), baseURL: baseURL,
                  resourceTenant: resourceTenant)
        self.id = id
        self.state = state
    }
}

/// The apps each session signed into.
struct SessionClients {
    let app: TesseraApp

    /// Notes that `session` (of `tenant`) signed in to `clientID` at `baseURL`: nothing when this process recorded or
    /// found it before, else the record is queued to be written with the next batch of sign-in records
    /// (`DirectoryService.queueCredential`: no transaction of its own, and one already stored by another request or node
    /// is left as it is). Everything that reads these records flushes the queue first (`of`, `forget`), so a logout or
    /// revocation on this node right after the sign-in still finds the app; on another node it may miss a record made in
    /// the last 100 ms (the batch's delay). `resourceTenant` is the app's tenant when it is not the session's (B2B
    /// direct connect).
    func record(_ session: SignInSessions.Session, clientID: String, tenant: String, baseURL: String, resourceTenant: String? = nil) async throws {
        let id = SessionClientRecord.id(sessionID: session.id, clientID: clientID)
        // Records leave with their session (sign-out, revocation, expiry), after which no request names the session again.
        let seen = "\(tenant)|\(id)"
        if app.recordedSessionClients[seen] != nil { return }
        let expires = Date(timeIntervalSince1970: TimeInterval(session.authTime)).addingTimeInterval(SignInSessions.lifetime)
        let record = SessionClientRecord(sessionID: session.id, userID: session.userID, clientID: clientID, expires: expires, baseURL: baseURL,
                                         resourceTenant: resourceTenant)
        try await app.directory.queueCredential(try record.row(tenant: tenant))
        app.recordedSessionClients.set(true, for: seen)
    }

    /// The apps a session signed into (the records still queued written first).
    func of(session sessionID: String, tenant: String) async throws -> [SessionClientRecord] {
        try await app.directory.flushSignIns()
        return try await app.store.read { tx in try await tx.credentials(SessionClientRecord.self, tenant: tenant, family: sessionID) }
    }

    /// Every session of a user with the apps it signed into (the records still queued written first).
    func of(user userID: String, tenant: String) async throws -> [SessionClientRecord] {
        try await app.directory.flushSignIns()
        return try await app.store.read { tx in try await tx.credentials(SessionClientRecord.self, tenant: tenant, userID: userID) }
    }

    /// Forgets what a session signed into (it ended); a record still queued is written first, so it goes too.
    func forget(session sessionID: String, tenant: String) async throws {
        try await app.directory.flushSignIns()
        _ = try await app.store.write { tx in try await tx.deleteCredentials(tenant: tenant, kind: SessionClientRecord.kind, family: sessionID) }
    }
}
