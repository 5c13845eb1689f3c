import Foundation
import TesseraCore
import WebAuthn

/// The device code flow (RFC 8628): a device asks for a code, the user approves it on the device login page after
/// signing in with a passkey, and the device's polling turns into tokens once.
struct DeviceCodes {
    let app: TesseraApp
    static let kind = ObjectKind(rawValue: "deviceCode")
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
        var generator = SystemRandomNumberGenerator()
        let userCode = String((0..<9).map { _ in Self.alphabet[Int(generator.next(upperBound: UInt(Self.alphabet.count)))] })
        let id = Identifier.make(), secret = Secrets.randomToken(bytes: 32)
        let expires = app.clock.now.addingTimeInterval(Self.lifetime)
        try await app.store.write { tx in
            try await tx.insert(StoredObject(tenant: tenantID, id: id, kind: Self.kind, body: [
                "id": .string(id), "_digest": .string(Secrets.digest(secret)), "_userCode": .string(userCode), "_clientId": .string(clientID),
                "_scope": .string(scope), "_status": "pending", "_expires": .string(Timestamp.format(expires)),
            ]))
            try await tx.claim(tenant: tenantID, object: id, keys: [UniqueKey("deviceUserCode", userCode)])
        }
        let verification = "\(baseURL)/\(tenantID)/devicelogin"
        return .json([
            "device_code": .string("\(id).\(secret)"), "user_code": .string(userCode), "verification_uri": .string(verification),
            "expires_in": .int(Int64(Self.lifetime)), "interval": .int(Int64(Self.interval)),
            "message": .string("To sign in, use a web browser to open the page \(verification) and enter the code \(userCode) to authenticate."),
        ], headers: [("Cache-Control", "no-store")])
    }

    /// The pending, unexpired device code a user code (as typed: any case, with separators) names.
    static func pending(_ userCode: String, tenant: String, now: Date, tx: any DirectoryReader) async throws -> StoredObject? {
        let code = userCode.uppercased().filter { $0.isLetter || $0.isNumber }
        guard let id = try await tx.holder(tenant: tenant, key: UniqueKey("deviceUserCode", code)),
              let object = try await tx.object(tenant: tenant, id: id), object.kind == Self.kind,
              object.body["_status"]?.stringValue == "pending",
              let expires = object.body["_expires"]?.stringValue.flatMap(Timestamp.parse), expires > now
        else { return nil }
        return object
    }

    /// The application a pending, unexpired user code was issued to.
    func pendingClient(tenant: String, userCode: String) async throws -> String? {
        let now = app.clock.now
        return try await app.store.read { tx in
            try await Self.pending(userCode, tenant: tenant, now: now, tx: tx)?.body["_clientId"]?.stringValue
        }
    }

    /// The device login page's approval, by a signed-in user.
    func approve(tenant: String, userCode: String, session: SignInSessions.Session) async throws -> Bool {
        let now = app.clock.now
        return try await app.store.write { tx in
            guard var object = try await Self.pending(userCode, tenant: tenant, now: now, tx: tx) else { return false }
            let version = object.version
            object.body["_status"] = "approved"
            object.body["_userId"] = .string(session.userID)
            object.body["_sessionId"] = .string(session.id)
            object.body["_authTime"] = .int(session.authTime)
            object.body["_amr"] = .strings(session.amr)
            object.body["_aaguid"] = .optional(session.aaguid)
            object.version = version + 1
            try await tx.update(object, expectedVersion: version)
            return true
        }
    }

    /// The device's poll: pending, expired, or (once) what the approval carried.
    func redeem(tenant: String, deviceCode: String, clientID: String?) async throws -> AuthorizationCode {
        let parts = deviceCode.split(separator: ".", maxSplits: 1).map(String.init)
        let invalid = OAuthError(error: "invalid_grant", code: 70000, description: "The provided device code is invalid.")
        guard parts.count == 2, Identifier.isGUID(parts[0]) else { throw invalid }
        let now = app.clock.now
        enum Outcome: Sendable { case approved(StoredObject), pending, expired, invalid }
        let outcome: Outcome = try await app.store.write { tx in
            guard var object = try await tx.object(tenant: tenant, id: parts[0]), object.kind == Self.kind,
                  let digest = object.body["_digest"]?.stringValue, Secrets.matches(parts[1], digest: digest),
                  clientID == nil || object.body["_clientId"]?.stringValue == clientID
            else { return .invalid }
            guard let expires = object.body["_expires"]?.stringValue.flatMap(Timestamp.parse), expires > now else { return .expired }
            switch object.body["_status"]?.stringValue {
            case "approved":
                let version = object.version
                object.body["_status"] = "redeemed"
                object.version = version + 1
                try await tx.update(object, expectedVersion: version)
                return .approved(object)
            case "pending": return .pending
            default: return .invalid
            }
        }
        switch outcome {
        case .pending:
            throw OAuthError(error: "authorization_pending", code: 70016, description: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
        case .expired:
            throw OAuthError(error: "expired_token", code: 70019, description: "Verification code expired.")
        case .invalid:
            throw invalid
        case .approved(let object):
            let body = object.body
            return AuthorizationCode(
                tenant: tenant, clientID: body["_clientId"]?.stringValue ?? "", redirectURI: "", userID: body["_userId"]?.stringValue ?? "",
                scope: body["_scope"]?.stringValue ?? "", nonce: nil, codeChallenge: nil, authTime: body["_authTime"]?.intValue ?? 0,
                sessionID: body["_sessionId"]?.stringValue ?? "", amr: body["_amr"]?.arrayValue?.compactMap(\.stringValue) ?? [], expires: 0,
                aaguid: body["_aaguid"]?.stringValue)
        }
    }
}
