import Foundation

extension ObjectKind {
    /// A B2B invitation (`POST /invitations`), kept until it is redeemed.
    public static let invitation = ObjectKind(rawValue: "invitation")
    /// The link between an invited user and the user of its home tenant, made when the invitation is redeemed.
    public static let externalUserLink = ObjectKind(rawValue: "externalUserLink")
}

/// What `POST /invitations` asks for, read strictly from Graph's body.
public struct InvitationRequest: Sendable, Hashable {
    public var email: String
    public var redirectURL: String
    public var displayName: String?
    /// `Guest` (the default) or `Member`.
    public var userType: String
    public var sendInvitationMessage: Bool
    public var messageInfo: JSONValue

    public init(body: [String: JSONValue]) throws(DirectoryError) {
        _ = try CrossTenantJSON.object(.object(body), "invitation", members: [
            "invitedUserEmailAddress", "inviteRedirectUrl", "invitedUserDisplayName", "invitedUserType", "sendInvitationMessage",
            "invitedUserMessageInfo", "resetRedemption", "invitedUser", "status", "inviteRedeemUrl",
        ])
        guard let email = try CrossTenantJSON.string(body["invitedUserEmailAddress"], "invitedUserEmailAddress")?.trimmed,
              Self.isEmail(email) else {
            throw DirectoryError.badRequest("Property 'invitedUserEmailAddress' is required and must be an email address.")
        }
        guard let redirect = try CrossTenantJSON.string(body["inviteRedirectUrl"], "inviteRedirectUrl"),
              let url = URL(string: redirect), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw DirectoryError.badRequest("Property 'inviteRedirectUrl' is required and must be an absolute http or https URL.")
        }
        let type = try CrossTenantJSON.string(body["invitedUserType"], "invitedUserType") ?? "Guest"
        guard let canonical = ["Guest", "Member"].first(where: { $0.lowercased() == type.lowercased() }) else {
            throw DirectoryError.badRequest("Property 'invitedUserType' must be 'Guest' or 'Member'.")
        }
        if try CrossTenantJSON.bool(body["resetRedemption"], "resetRedemption") == true {
            throw DirectoryError.badRequest("Property 'resetRedemption' is not supported: an invited user's redemption cannot be reset here.")
        }
        if let info = body["invitedUserMessageInfo"], info != .null {
            _ = try CrossTenantJSON.object(info, "invitedUserMessageInfo", members: ["ccRecipients", "customizedMessageBody", "messageLanguage"])
        }
        self.email = email
        self.redirectURL = redirect
        self.displayName = try CrossTenantJSON.string(body["invitedUserDisplayName"], "invitedUserDisplayName")
        self.userType = canonical
        self.sendInvitationMessage = try CrossTenantJSON.bool(body["sendInvitationMessage"], "sendInvitationMessage") ?? false
        self.messageInfo = body["invitedUserMessageInfo"] ?? .null
    }

    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && text.count <= 256
            && !text.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" })
    }

    /// The domain of the invited address, lowercased.
    public var domain: String { String(email.split(separator: "@").last ?? "").lowercased() }
}

/// A stored invitation.
public struct Invitation: Sendable, Hashable {
    public static let pending = "PendingAcceptance", completed = "Completed"

    public var id: String
    public var email: String
    public var redirectURL: String
    public var userID: String
    public var userType: String
    public var displayName: String
    /// The home tenant, when it is one of this deployment (empty for a provider's user until redemption names it).
    public var homeTenantID: String
    /// The OpenID Connect provider the invited user signs in with, when the user is of another deployment.
    public var identityProviderID: String?
    public var status: String
    public var sendInvitationMessage: Bool
    public var messageInfo: JSONValue

    init(stored body: [String: JSONValue]) throws {
        guard let id = body["id"]?.stringValue, let email = body["invitedUserEmailAddress"]?.stringValue,
              let user = body["userId"]?.stringValue, let home = body["homeTenantId"]?.stringValue else {
            throw DirectoryError(.internalError, "A stored invitation is incomplete.")
        }
        self.id = id
        self.email = email
        self.redirectURL = body["inviteRedirectUrl"]?.stringValue ?? ""
        self.userID = user
        self.userType = body["invitedUserType"]?.stringValue ?? "Guest"
        self.displayName = body["invitedUserDisplayName"]?.stringValue ?? email
        self.homeTenantID = home
        self.identityProviderID = body["identityProviderId"]?.stringValue
        self.status = body["status"]?.stringValue ?? Self.pending
        self.sendInvitationMessage = body["sendInvitationMessage"]?.boolValue ?? false
        self.messageInfo = body["invitedUserMessageInfo"] ?? .null
    }

    init(id: String, request: InvitationRequest, userID: String, displayName: String, homeTenantID: String, identityProviderID: String?) {
        self.id = id
        self.email = request.email
        self.redirectURL = request.redirectURL
        self.userID = userID
        self.userType = request.userType
        self.displayName = displayName
        self.homeTenantID = homeTenantID
        self.identityProviderID = identityProviderID
        self.status = Self.pending
        self.sendInvitationMessage = request.sendInvitationMessage
        self.messageInfo = request.messageInfo
    }

    var stored: [String: JSONValue] {
        ["id": .string(id), "invitedUserEmailAddress": .string(email), "inviteRedirectUrl": .string(redirectURL), "userId": .string(userID),
         "invitedUserType": .string(userType), "invitedUserDisplayName": .string(displayName), "homeTenantId": .string(homeTenantID),
         "status": .string(status), "sendInvitationMessage": .bool(sendInvitationMessage), "invitedUserMessageInfo": messageInfo,
         "identityProviderId": .optional(identityProviderID)]
    }

    /// Graph's `invitation`, with the URL that redeems it.
    public func graph(redeemURL: String) -> [String: JSONValue] {
        ["id": .string(id), "invitedUserDisplayName": .string(displayName), "invitedUserEmailAddress": .string(email),
         "invitedUserType": .string(userType), "inviteRedirectUrl": .string(redirectURL), "inviteRedeemUrl": .string(redeemURL),
         "sendInvitationMessage": .bool(sendInvitationMessage), "resetRedemption": false, "status": .string(status),
         "invitedUser": ["id": .string(userID)],
         "invitedUserMessageInfo": messageInfo == .null ? ["messageLanguage": nil, "ccRecipients": [], "customizedMessageBody": nil] : messageInfo]
    }
}

/// An invited user linked to the user of its home tenant who redeemed the invitation.
public struct ExternalUserLink: Sendable, Hashable {
    public var guestID: String
    public var homeTenantID: String
    public var homeUserID: String
    public var invitationID: String
    public var redeemedDateTime: String
    /// The issuer of a user of another deployment (an OpenID Connect provider's), whose `homeUserID` is the ID
    /// token's `oid` (or `sub`) and `homeTenantID` its `tid` (empty without one); nil for a tenant of this deployment.
    public var issuer: String?

    public init(guestID: String, homeTenantID: String, homeUserID: String, invitationID: String, redeemedDateTime: String, issuer: String? = nil) {
        self.guestID = guestID
        self.homeTenantID = homeTenantID.lowercased()
        self.homeUserID = issuer == nil ? homeUserID.lowercased() : homeUserID
        self.invitationID = invitationID
        self.redeemedDateTime = redeemedDateTime
        self.issuer = issuer
    }

    /// Whether the home user is of another deployment (signed in through an OpenID Connect provider).
    public var isRemote: Bool { issuer != nil }

    init?(stored body: [String: JSONValue]) {
        guard let guest = body["guestId"]?.stringValue, let home = body["homeTenantId"]?.stringValue, let user = body["homeUserId"]?.stringValue
        else { return nil }
        self.init(guestID: guest, homeTenantID: home, homeUserID: user, invitationID: body["invitationId"]?.stringValue ?? "",
                  redeemedDateTime: body["redeemedDateTime"]?.stringValue ?? "", issuer: body["issuer"]?.stringValue)
    }

    var stored: [String: JSONValue] {
        ["id": .string(Self.objectID(guest: guestID)), "guestId": .string(guestID), "homeTenantId": .string(homeTenantID),
         "homeUserId": .string(homeUserID), "invitationId": .string(invitationID), "redeemedDateTime": .string(redeemedDateTime),
         "issuer": .optional(issuer)]
    }

    static func objectID(guest: String) -> String { "externaluserlink-\(guest.lowercased())" }
    /// The unique key that finds the guest from the home tenant's user.
    static func key(homeTenant: String, homeUser: String) -> UniqueKey { UniqueKey("homeIdentity", "\(homeTenant)/\(homeUser)") }
    /// The unique key that finds the guest from a provider's user: the issuer and the subject, as the ID token names them.
    static func key(issuer: String, subject: String) -> UniqueKey { UniqueKey("federatedIdentity", "\(issuer) \(subject)") }
    /// The key this link holds.
    var key: UniqueKey { issuer.map { Self.key(issuer: $0, subject: homeUserID) } ?? Self.key(homeTenant: homeTenantID, homeUser: homeUserID) }
}
