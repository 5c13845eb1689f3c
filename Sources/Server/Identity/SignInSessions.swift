import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// Browser sessions after a sign-in: a ``SignInSessionRecord`` per session in the credential store (kept by user, so
/// sign-out everywhere can delete them) and an HttpOnly, SameSite=Lax cookie holding its id and a MAC, so a forged or
/// guessed id is refused without a store read.
struct SignInSessions {
    let app: TesseraApp
    static let lifetime: TimeInterval = 12 * 3600

    struct Session: Sendable {
        let id: String
        let userID: String
        let authTime: Int64
        let amr: [String]
        /// The AAGUID of the passkey the session signed in with (authentication strengths can allow only some models).
        var aaguid: String? = nil
    }

    /// `tessera_session_` and the tenant's id without its hyphens (a hyphen's byte is never part of another character's
    /// UTF-8, so dropping the bytes drops exactly the hyphens).
    static func cookieName(tenant: String) -> String {
        "tessera_session_" + String(decoding: tenant.utf8.lazy.filter { $0 != UInt8(ascii: "-") }, as: UTF8.self)
    }

    /// The `name=value` pair of the `Cookie` header whose name is `name` (given with its `=`), without the optional white
    /// space around it (RFC 6265 §5.4: pairs are separated by `;` and a space).
    static func cookiePair(_ header: String, named name: String) -> Substring? {
        for part in header.split(separator: ";") {
            let pair = part.drop { $0 == " " || $0 == "\t" }
            if pair.hasPrefix(name) {
                var end = pair.endIndex
                while end > pair.startIndex, case let before = pair.index(before: end), pair[before] == " " || pair[before] == "\t" { end = before }
                return pair[..<end]
            }
        }
        return nil
    }

    func tag(_ tenant: String, _ id: String) -> String {
        WebAuthn.Base64URL.encode(app.passkeyChallenges.mac("session:\(tenant)", Array(id.utf8)))
    }

    /// Starts a session; returns it with the `Set-Cookie` header value.
    func start(tenant: String, userID: String, amr: [String], aaguid: String? = nil, baseURL: String) async throws -> (Session, String) {
        try await app.store.write { tx in try await start(tenant: tenant, userID: userID, amr: amr, aaguid: aaguid, baseURL: baseURL, tx: tx) }
    }

    /// Starts a session inside the caller's transaction (a sign-in commits its challenge, counter and session at once).
    func start(tenant: String, userID: String, amr: [String], aaguid: String? = nil, baseURL: String,
               tx: any DirectoryTransaction) async throws -> (Session, String) {
        let (session, row, cookie) = try make(tenant: tenant, userID: userID, amr: amr, aaguid: aaguid, baseURL: baseURL)
        try await tx.insertCredential(row)
        return (session, cookie)
    }

    /// A new session, the row that stores it and its `Set-Cookie` value, not yet written (a passkey sign-in writes the
    /// row with the spend of its challenge: `SingleUseSpends`).
    func make(tenant: String, userID: String, amr: [String], aaguid: String? = nil,
              baseURL: String) throws -> (session: Session, row: CredentialRow, cookie: String) {
        let now = app.clock.now
        let id = Identifier.make()
        let session = Session(id: id, userID: userID, authTime: Int64(now.timeIntervalSince1970), amr: amr, aaguid: aaguid)
        let row = try SignInSessionRecord(id: id, userID: userID, authTime: session.authTime, amr: amr, aaguid: aaguid,
                                          expires: now.addingTimeInterval(Self.lifetime)).row(tenant: tenant)
        let secure = baseURL.hasPrefix("https:") ? "; Secure" : ""
        let cookie = "\(Self.cookieName(tenant: tenant))=\(id).\(tag(tenant, id)); Path=/; HttpOnly; SameSite=Lax; Max-Age=\(Int(Self.lifetime))\(secure)"
        return (session, row, cookie)
    }

    /// The request's session cookie again, as Conditional Access's persistent browser session control wants it:
    /// `never` makes it a browser-session cookie (gone when the browser closes), `always` keeps it for the session's
    /// lifetime. Nil when the request carries no session cookie.
    func cookie(_ request: APIRequest, tenant: String, persistent: Bool) -> String? {
        let name = Self.cookieName(tenant: tenant) + "="
        guard let header = request.header("cookie"), let pair = Self.cookiePair(header, named: name) else { return nil }
        let secure = request.baseURL.hasPrefix("https:") ? "; Secure" : ""
        return "\(pair); Path=/; HttpOnly; SameSite=Lax\(persistent ? "; Max-Age=\(Int(Self.lifetime))" : "")\(secure)"
    }

    /// Keeps a session this process has committed (``make``'s, written with `mark` taken before the commit), so that
    /// the `/authorize` request after the sign-in reads nothing (`SignInSessionCache`).
    func keep(_ session: Session, tenant: String, mark: SignInSessionCache.Mark) {
        app.signInSessionCache.keep(session, expires: Date(timeIntervalSince1970: TimeInterval(session.authTime)).addingTimeInterval(Self.lifetime),
                                    tenant: tenant, mark: mark)
    }

    /// What a session about to be written is kept with: taken before its commit.
    func mark(tenant: String) -> SignInSessionCache.Mark {
        app.signInSessionCache.mark(tenant: tenant, generations: app.directory.generations, now: app.clock.now)
    }

    /// Whether a sign-in at `authTime` (seconds since 1970) came before the user's sign-in sessions were revoked
    /// (`signInSessionsValidFromDateTime`, which `revokeSignInSessions` sets; whole seconds, as the proxy's check of an
    /// access token: a sign-in of that same second stands, while its session was deleted if it came before).
    static func revoked(authTime: Int64, user: StoredObject) -> Bool {
        guard let text = user.body["signInSessionsValidFromDateTime"]?.stringValue, let from = Timestamp.parse(text) else { return false }
        return authTime < Int64(from.timeIntervalSince1970.rounded(.down))
    }

    /// Ends the request's session, if any; returns the `Set-Cookie` value that clears the cookie.
    func end(_ request: APIRequest, tenant: String) async throws -> String {
        if let session = try await current(request, tenant: tenant) {
            // Kept sessions are read again once the deletion has committed (or failed), whatever it ended.
            defer { app.signInSessionCache.revoked() }
            _ = try await app.store.write { tx in try await tx.deleteCredential(tenant: tenant, kind: SignInSessionRecord.kind, id: session.id) }
        }
        let secure = request.baseURL.hasPrefix("https:") ? "; Secure" : ""
        return "\(Self.cookieName(tenant: tenant))=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0\(secure)"
    }

    /// The session a request's cookie names, if it is genuine, current and its user still enabled.
    func current(_ request: APIRequest, tenant: String) async throws -> Session? {
        let name = Self.cookieName(tenant: tenant) + "="
        guard let header = request.header("cookie"), let pair = Self.cookiePair(header, named: name) else { return nil }
        let value = pair.dropFirst(name.count)
        guard let dot = value.firstIndex(of: ".") else { return nil }
        let id = String(value[..<dot]), presented = Array(value[value.index(after: dot)...].utf8)
        guard Identifier.isGUID(id), WebAuthn.constantTimeEquals(presented, Array(tag(tenant, id).utf8)) else { return nil }
        let now = app.clock.now
        // A session this process has just started (the passkey step before this `/authorize`): no read.
        if let kept = app.signInSessionCache.session(tenant: tenant, id: id, generations: app.directory.generations, now: now) {
            return try await app.activeSignInUser(tenant: tenant, id: kept.userID) != nil ? kept : nil
        }
        guard let record = try await app.store.read({ tx in try await tx.credential(SignInSessionRecord.self, tenant: tenant, id: id) }),
              record.expires > now,
              // The user as the sign-in path keeps it: read again after any change to the tenant (disabling, deleting).
              try await app.activeSignInUser(tenant: tenant, id: record.userID) != nil
        else { return nil }
        return Session(id: id, userID: record.userID, authTime: record.authTime, amr: record.amr, aaguid: record.aaguid)
    }
}
