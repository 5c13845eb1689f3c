import Foundation
import Synchronization
import TesseraCore

/// A grant whose access tokens are refused before they expire: the authorization code it began with was presented
/// again (RFC 6749 §4.1.2). Kept in the credential store until every access token of the grant has expired; every
/// revoked grant of a tenant is in one family, so that one read lists them.
struct RevokedGrantRecord: CredentialRecord, Hashable {
    enum State: String, Codable, Sendable { case revoked }
    static let kind = CredentialKind(rawValue: "revokedGrant")
    static let tenantFamily = "revokedGrants"

    var id: String
    var expires: Date
    var state: State = .revoked

    /// No user: `revokeSignInSessions`, which deletes a user's records, must not bring the grant's tokens back.
    var owner: String? { nil }
    var family: String? { Self.tenantFamily }
}

/// The grants revoked because their authorization code was replayed, and the check that refuses their access tokens at
/// Graph and userinfo. A token names its grant in ``claim`` (tokens from an authorization code, and those of the refresh
/// tokens that code gave, carry the same id); tokens of other grants — another app's, or another code of the same
/// browser session — are untouched, so a replayed code does not sign the user out of anything else.
///
/// Each tenant's list is read at most once a second per node (a revocation on another node takes effect here within
/// a second, as the other cluster caches do); a revocation on this node takes effect here at once.
final class RevokedGrants: Sendable {
    /// The access-token claim naming the grant (Tessera's own; Entra's tokens have none).
    static let claim = "gid"
    static let maxAge: Duration = .seconds(1)

    private struct Entry: Sendable {
        let ids: Set<String>
        let readAt: ContinuousClock.Instant
    }

    private struct State: Sendable {
        /// Moved by every local revocation, so a list read before it is not kept after it.
        var generation: UInt64 = 0
        var entries: [String: Entry] = [:]
    }

    private let state = Mutex(State())

    /// The id of the grant an authorization code begins: a MAC of the code's digest with the deployment key (any node
    /// derives the same id from the code, and nothing of the code can be learnt from it).
    static func grantID(codeDigest: String, app: TesseraApp) -> String {
        Hex.encode(app.passkeyChallenges.mac("grant", Array(codeDigest.utf8)).prefix(16))
    }

    /// Records `grantID` as revoked in the caller's transaction, until the last access token it can have issued has
    /// expired (the token lifetime and the five minutes of clock skew `Caller.verifiedToken` allows, from now: the
    /// grant's refresh tokens are deleted in the same commit, so none is issued later). Revoking it again is no error.
    static func revoke(tenant: String, grantID: String, now: Date, tx: any DirectoryTransaction) async throws {
        let record = RevokedGrantRecord(id: grantID, expires: now.addingTimeInterval(IdentityPlatform.accessTokenLifetime + 600))
        do {
            try await tx.insertCredential(record, tenant: tenant)
        } catch let error as DirectoryError where error == DirectoryError.duplicate("id") {
            // Already revoked (a third presentation of the code, or two at once).
        }
    }

    /// Forgets this node's list of `tenant` after a revocation committed here, so the next check reads it again.
    func revoked(tenant: String) {
        state.withLock { state in
            state.generation &+= 1
            state.entries[tenant] = nil
        }
    }

    /// Why the access token `jwt` (already verified) is refused, when its grant was revoked; nil otherwise.
    func refusal(_ jwt: JWT, app: TesseraApp) async throws -> String? {
        guard let grantID = jwt.claims[Self.claim]?.stringValue, let tenant = jwt.claims["tid"]?.stringValue else { return nil }
        guard try await revokedIDs(tenant: tenant, app: app).contains(grantID) else { return nil }
        return "The authorization code this token was issued from was presented again, so every token issued from it is revoked: sign in again."
    }

    /// The tenant's revoked grants, from this node's list while it is younger than ``maxAge``.
    private func revokedIDs(tenant: String, app: TesseraApp) async throws -> Set<String> {
        let started = ContinuousClock.now
        let (cached, generation) = state.withLock { ($0.entries[tenant], $0.generation) }
        if let cached, started - cached.readAt < Self.maxAge { return cached.ids }
        let records = try await app.store.read { tx in
            try await tx.credentials(RevokedGrantRecord.self, tenant: tenant, family: RevokedGrantRecord.tenantFamily)
        }
        let now = app.clock.now
        let ids = Set(records.filter { $0.expires > now }.map(\.id))
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= 10_000 { state.entries.removeAll(keepingCapacity: true) }
            state.entries[tenant] = Entry(ids: ids, readAt: started)
        }
        return ids
    }
}
