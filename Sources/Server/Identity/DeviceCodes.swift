import Foundation
import TesseraCore

/// The device code flow (RFC 8628): a device asks for a code, the user approves it on the device login page after
/// signing in with a passkey, and the device's polling turns into tokens once. Each code is a ``DeviceCodeRecord`` in
/// the credential store, found by its user code.
struct DeviceCodes {
    let app: TesseraApp
    static let lifetime: TimeInterval = 900
    static let interval = 5
    /// Letters and digits that are hard to confuse when read off a screen.
    static let alphabet = Array("BCDFGHJKLMNPQRSTVWXZ23456789")

    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    func start(tenant: TenantRecord, form: [String: String], baseURL: String) async throws -> APIResponse {
        guard let clientID = form["client_id"], !clientID.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'client_id'.")
        }
        guard let scope = form["scope"], !scope.isEmpty else {
            throw OAuthError.invalidRequest(900144, "The request body must contain the following parameter: 'scope'.")
        }
        let tenantID = tenant.id
        guard try await app.application(tenant: tenantID, appID: clientID) != nil else {
            throw OAuthError(error: "unauthorized_client", code: 700016,
                             description: "Application with identifier '\(clientID)' was not found in the directory '\(tenant.domain)'.")
        }
        let id = Identifier.make(), secret = Secrets.randomToken(bytes: 32)
        let expires = app.clock.now.addingTimeInterval(Self.lifetime)
        var userCode = Self.newUserCode()
        // A user code is unique among the tenant's unswept codes (the store's index on the handle); a collision, one in
        // 28⁹ for each live code, takes another.
        for attempt in 1...3 {
            let record = DeviceCodeRecord(id: id, digest: Secrets.digest(secret), userCode: userCode, clientID: clientID, scope: scope,
                                          expires: expires)
            do {
                try await app.store.write { tx in try await tx.insertCredential(record, tenant: tenantID) }
                break
            } catch let error as DirectoryError where error == .duplicate("handle") && attempt < 3 {
                userCode = Self.newUserCode()
            }
        }
        let verification = "\(baseURL)/\(tenantID)/devicelogin"
        return .json([
            "device_code": .string("\(id).\(secret)"), "user_code": .string(userCode), "verification_uri": .string(verification),
            "expires_in": .int(Int64(Self.lifetime)), "interval": .int(Int64(Self.interval)),
            "message": .string("To sign in, use a web browser to open the page \(verification) and enter the code \(userCode) to authenticate."),
        ], headers: [("Cache-Control", "no-store")])
    }

    /// Nine letters and digits from ``alphabet``.
    static func newUserCode() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<9).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    /// The pending, unexpired device code a user code (as typed: any case, with separators) names.
    static func pending(_ userCode: String, tenant: String, now: Date, tx: any CredentialReader) async throws -> DeviceCodeRecord? {
        let code = userCode.uppercased().filter { $0.isLetter || $0.isNumber }
        guard !code.isEmpty, let record = try await tx.credential(DeviceCodeRecord.self, tenant: tenant, handle: code),
              record.state == .pending, record.expires > now
        else { return nil }
        return record
    }

    /// The application a pending, unexpired user code was issued to.
    func pendingClient(tenant: String, userCode: String) async throws -> String? {
        let now = app.clock.now
        return try await app.store.read { tx in try await Self.pending(userCode, tenant: tenant, now: now, tx: tx)?.clientID }
    }

    /// The device login page's approval, by a signed-in user; false when the code is not pending (any more).
    func approve(tenant: String, userCode: String, session: SignInSessions.Session) async throws -> Bool {
        let now = app.clock.now
        return try await app.store.write { tx in
            guard var record = try await Self.pending(userCode, tenant: tenant, now: now, tx: tx) else { return false }
            record.state = .approved
            record.approval = DeviceCodeRecord.Approval(userID: session.userID, sessionID: session.id, authTime: session.authTime,
                                                        amr: session.amr, aaguid: session.aaguid)
            // Two users approving one code at once: the first approval stands.
            return try await tx.replaceCredential(record, tenant: tenant, ifStateIs: .pending)
        }
    }

    /// The device's poll: pending, expired, or (once) what the approval carried.
    func redeem(tenant: String, deviceCode: String, clientID: String?) async throws -> AuthorizationCode {
        let invalid = OAuthError(error: "invalid_grant", code: 70000, description: "The provided device code is invalid.")
        guard let (id, secret) = RefreshTokens.parts(deviceCode) else { throw invalid }
        let now = app.clock.now
        enum Outcome: Sendable { case approved(DeviceCodeRecord, DeviceCodeRecord.Approval), pending, expired, invalid }
        let outcome: Outcome = try await app.store.write { tx in
            guard var record = try await tx.credential(DeviceCodeRecord.self, tenant: tenant, id: id),
                  Secrets.matches(secret, digest: record.digest), clientID == nil || record.clientID == clientID
            else { return .invalid }
            guard record.expires > now else { return .expired }
            switch record.state {
            case .approved:
                guard let approval = record.approval else { return .invalid }
                record.state = .redeemed
                // Two polls at once: the one that redeems gets the tokens, the other finds the code spent.
                return try await tx.replaceCredential(record, tenant: tenant, ifStateIs: .approved) ? .approved(record, approval) : .invalid
            case .pending: return .pending
            case .redeemed: return .invalid
            }
        }
        switch outcome {
        case .pending:
            throw OAuthError(error: "authorization_pending", code: 70016, description: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
        case .expired:
            throw OAuthError(error: "expired_token", code: 70019, description: "Verification code expired.")
        case .invalid:
            throw invalid
        case .approved(let record, let approval):
            return AuthorizationCode(
                tenant: tenant, clientID: record.clientID, redirectURI: "", userID: approval.userID, scope: record.scope, nonce: nil,
                codeChallenge: nil, authTime: approval.authTime, sessionID: approval.sessionID, amr: approval.amr, expires: 0,
                aaguid: approval.aaguid)
        }
    }
}
