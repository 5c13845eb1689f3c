import Foundation
import TesseraCore
import WebAuthn

/// Onboarding with a Temporary Access Pass: the user proves the pass once and gets a five-minute enrollment token
/// that registers exactly one passkey (checked against the tenant's passkey profiles like any registration).
/// Every pass attempt goes to the sign-in log.
struct TemporaryAccessPassSignIn {
    let app: TesseraApp
    let tenant: String

    static func purpose(tenant: String, user: String) -> String { "enroll:\(tenant):\(user)" }

    /// Checks the pass; returns the user and an enrollment token.
    func signIn(username: String, passcode: String, ipAddress: String?) async throws -> (user: StoredObject, token: String) {
        let ceremony = PasskeySignIn(app: app, tenant: tenant)
        let user = try await ceremony.user(principalName: username.lowercased())
        func refuse(_ reason: String, _ message: String) async throws -> Never {
            let failure = PasskeySignIn.Failure(reason: reason, message: message)
            try await log(user: user, failure: failure, ipAddress: ipAddress)
            throw failure
        }
        guard let user, user.kind == .user, user.deletedAt == nil else {
            try await refuse("tap.invalid", "The username or Temporary Access Pass is not valid.")
        }
        guard user.body["accountEnabled"]?.boolValue != false else { try await refuse("user.disabled", "The account is disabled.") }
        guard try await app.directory.redeemTemporaryAccessPass(tenant: tenant, userID: user.id, passcode: passcode) else {
            try await refuse("tap.invalid", "The username or Temporary Access Pass is not valid.")
        }
        try await log(user: user, failure: nil, ipAddress: ipAddress)
        let (token, _) = app.passkeyChallenges.issue(Self.purpose(tenant: tenant, user: user.id), now: app.clock.now)
        return (user, WebAuthn.Base64URL.encode(token))
    }

    /// The user an enrollment token was issued for, while it is valid.
    func enrolling(userID: String, token: String) async throws -> StoredObject {
        let tenant = self.tenant
        guard let bytes = WebAuthn.Base64URL.decode(token),
              app.passkeyChallenges.isValid(bytes, purpose: Self.purpose(tenant: tenant, user: userID), now: app.clock.now),
              let user = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: userID) }),
              user.kind == .user, user.deletedAt == nil
        else { throw DirectoryError(.accessDenied, "The enrollment is not valid or has expired; sign in with the Temporary Access Pass again.") }
        return user
    }

    /// Registers the passkey and spends the enrollment token.
    func enroll(userID: String, token: String, credential: JSONValue, baseURL: String) async throws -> StoredObject {
        let user = try await enrolling(userID: userID, token: token)
        try await app.passkeyChallenges.redeem(WebAuthn.Base64URL.decode(token) ?? [], purpose: Self.purpose(tenant: tenant, user: userID),
                                               tenant: tenant, now: app.clock.now, store: app.store)
        return try await PasskeyRegistration(app: app, tenant: tenant).register(
            user: user, body: ["displayName": "Passkey", "publicKeyCredential": credential], baseURL: baseURL,
            actor: Actor(kind: .user, id: user.id, displayName: user.body["displayName"]?.stringValue ?? "",
                         userPrincipalName: user.body["userPrincipalName"]?.stringValue))
    }

    /// Smart lockout locked `username` for this source: one sign-in record says so (Entra's 50053), however many
    /// attempts the lock then refuses unlogged.
    func recordLockout(username: String, until: Date, ipAddress: String?) async throws {
        let user = try await PasskeySignIn(app: app, tenant: tenant).user(principalName: username.lowercased())
        let message = "Account locked after repeated failed Temporary Access Pass attempts from this address, until \(Timestamp.format(until))."
        try await SignInLog(app: app, tenant: tenant).record(
            user: user?.kind == .user ? user : nil, ipAddress: ipAddress, failure: .init(reason: "account.locked", message: message),
            method: "Temporary Access Pass", detail: nil, succeeded: "",
            extra: ["status": ["errorCode": 50053, "failureReason": "account.locked", "additionalDetails": .string(message)],
                    "userPrincipalName": .string(user?.body["userPrincipalName"]?.stringValue ?? username)])
    }

    private func log(user: StoredObject?, failure: PasskeySignIn.Failure?, ipAddress: String?) async throws {
        try await SignInLog(app: app, tenant: tenant).record(user: user, ipAddress: ipAddress, failure: failure,
                                                             method: "Temporary Access Pass", detail: nil,
                                                             succeeded: "Temporary Access Pass accepted")
    }
}
