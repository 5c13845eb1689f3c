public import Foundation

/// What a grant carries from the sign-in it began with to every token issued from it: who, how and when they signed
/// in, and what was asked for.
public struct SignInGrant: Codable, Sendable, Hashable {
    public var userID: String
    public var clientID: String
    public var redirectURI: String
    public var scope: String
    public var sessionID: String
    /// Seconds since 1970.
    public var authTime: Int64
    public var amr: [String]
    /// The AAGUID of the passkey the session signed in with, when it did.
    public var aaguid: String?
    /// The authentication contexts the sign-in satisfied.
    public var acrs: [String]
    /// The ID token's `acr` of the sign-in, when the authorization request asked for one: every refreshed ID token
    /// carries it again (OpenID Connect Core §12.2).
    public var acr: String?
    /// The grant an authorization code began, named in its access tokens, so that a replay of the code can refuse them.
    public var grantID: String?
    /// The claims the authorization request's `claims` parameter asked userinfo for.
    public var userinfoClaims: [String]?

    public init(userID: String, clientID: String, redirectURI: String, scope: String, sessionID: String, authTime: Int64,
                amr: [String], aaguid: String?, acrs: [String], acr: String? = nil, grantID: String? = nil, userinfoClaims: [String]? = nil) {
        self.userID = userID
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.scope = scope
        self.sessionID = sessionID
        self.authTime = authTime
        self.amr = amr
        self.aaguid = aaguid
        self.acrs = acrs
        self.acr = acr
        self.grantID = grantID
        self.userinfoClaims = userinfoClaims
    }
}

/// A refresh token: `<id>.<secret>` is handed out, only the secret's salted digest is kept. Spending it issues its
/// successor in the same family; a spent token presented again revokes the family.
public struct RefreshTokenRecord: CredentialRecord, Hashable {
    public enum State: String, Codable, Sendable { case unused, used }
    public static let kind = CredentialKind.refreshToken

    public var id: String
    /// `Secrets.digest` of the secret.
    public var digest: String
    public var grant: SignInGrant
    public var confidential: Bool
    /// The family's id: the first token's.
    public var familyID: String
    /// `Secrets.fingerprint` of the authorization code the family began with (on its first token only), so that a
    /// replay of the code revokes the family.
    public var issuedForCode: String?
    public var expires: Date
    public var state: State

    public init(id: String, digest: String, grant: SignInGrant, confidential: Bool, familyID: String, issuedForCode: String?,
                expires: Date, state: State = .unused) {
        self.id = id
        self.digest = digest
        self.grant = grant
        self.confidential = confidential
        self.familyID = familyID
        self.issuedForCode = issuedForCode
        self.expires = expires
        self.state = state
    }

    public var owner: String? { grant.userID }
    public var family: String? { familyID }
    public var handle: String? { issuedForCode }
}

/// A browser session after a sign-in; the cookie holds its id and a MAC.
public struct SignInSessionRecord: CredentialRecord, Hashable {
    public enum State: String, Codable, Sendable { case active }
    public static let kind = CredentialKind.signInSession

    public var id: String
    public var userID: String
    /// Seconds since 1970.
    public var authTime: Int64
    public var amr: [String]
    /// The AAGUID of the passkey the session signed in with (authentication strengths can allow only some models).
    public var aaguid: String?
    public var expires: Date
    public var state: State

    public init(id: String, userID: String, authTime: Int64, amr: [String], aaguid: String?, expires: Date, state: State = .active) {
        self.id = id
        self.userID = userID
        self.authTime = authTime
        self.amr = amr
        self.aaguid = aaguid
        self.expires = expires
        self.state = state
    }

    public var owner: String? { userID }
}

/// A device code (RFC 8628): `<id>.<secret>` for the device, only the secret's salted digest kept; the user code is
/// its handle. Pending until a signed-in user approves it, then redeemed once.
public struct DeviceCodeRecord: CredentialRecord, Hashable {
    public enum State: String, Codable, Sendable { case pending, approved, redeemed }
    public static let kind = CredentialKind.deviceCode

    /// Who approved the code and how they had signed in.
    public struct Approval: Codable, Sendable, Hashable {
        public var userID: String
        public var sessionID: String
        public var authTime: Int64
        public var amr: [String]
        public var aaguid: String?
        public init(userID: String, sessionID: String, authTime: Int64, amr: [String], aaguid: String?) {
            self.userID = userID
            self.sessionID = sessionID
            self.authTime = authTime
            self.amr = amr
            self.aaguid = aaguid
        }
    }

    public var id: String
    /// `Secrets.digest` of the secret.
    public var digest: String
    /// Nine letters and digits, as the user types them (upper case, no separators).
    public var userCode: String
    public var clientID: String
    public var scope: String
    public var approval: Approval?
    public var expires: Date
    public var state: State

    public init(id: String, digest: String, userCode: String, clientID: String, scope: String, approval: Approval? = nil,
                expires: Date, state: State = .pending) {
        self.id = id
        self.digest = digest
        self.userCode = userCode
        self.clientID = clientID
        self.scope = scope
        self.approval = approval
        self.expires = expires
        self.state = state
    }

    public var owner: String? { approval?.userID }
    public var handle: String? { userCode }
}

/// A Temporary Access Pass's secret side, under the id of its Graph object (a `temporaryAccessPassAuthenticationMethod`,
/// which holds Graph's properties only): the passcode's salted digest and whether a one-time pass was used.
public struct TemporaryAccessPassRecord: CredentialRecord, Hashable {
    public enum State: String, Codable, Sendable { case unused, used }
    public static let kind = CredentialKind.temporaryAccessPass

    /// The id of the pass's Graph object.
    public var id: String
    public var userID: String
    /// `Secrets.digest` of the passcode.
    public var digest: String
    /// When the pass's lifetime ends (it is swept after).
    public var expires: Date
    public var state: State

    public init(id: String, userID: String, digest: String, expires: Date, state: State = .unused) {
        self.id = id
        self.userID = userID
        self.digest = digest
        self.expires = expires
        self.state = state
    }

    public var owner: String? { userID }
}

/// A client secret's secret side: the salted digest of an application's or service principal's `passwordCredential`,
/// under the credential's `keyId`, in the family of the object it belongs to. The object lists the credential with
/// Graph's properties only; a secret authenticates while both are there and its `endDateTime` has not passed.
public struct ClientSecretRecord: CredentialRecord, Hashable {
    public enum State: String, Codable, Sendable { case active }
    public static let kind = CredentialKind.clientSecret

    /// The credential's `keyId` (lowercase).
    public var id: String
    /// The id of the application or service principal the secret belongs to.
    public var objectID: String
    /// `Secrets.digest` of the secret.
    public var digest: String
    /// The credential's `endDateTime` (the record is swept after it).
    public var expires: Date
    public var state: State

    public init(id: String, objectID: String, digest: String, expires: Date, state: State = .active) {
        self.id = id.lowercased()
        self.objectID = objectID
        self.digest = digest
        self.expires = expires
        self.state = state
    }

    public var owner: String? { nil }
    public var family: String? { objectID }
}
