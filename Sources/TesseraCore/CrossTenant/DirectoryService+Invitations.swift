/// B2B invitations and their redemption: the invited user is created in the inviting tenant (`userType` Guest or
/// Member, `externalUserState` PendingAcceptance, `creationType` Invitation, `identities` naming the home issuer), and
/// linked to the home tenant's user when that user redeems the invitation by signing in at home.
extension DirectoryService {
    /// Invites `request.email`, a user of `home` (a tenant of this deployment), into `tenant`; a second invitation of
    /// the same address reuses the user it created.
    public func invite(tenant: TenantRecord, request: InvitationRequest, home: TenantRecord, homeIssuer: String,
                       actor: Actor) async throws -> Invitation {
        guard home.id != tenant.id else {
            throw DirectoryError.badRequest("'\(request.email)' is in this tenant's own domain; invite users of other organizations.")
        }
        return try await invite(tenant: tenant, request: request, homeTenantID: home.id, homeIssuer: homeIssuer, providerID: nil, actor: actor)
    }

    /// Invites `request.email`, a user of another deployment that `provider` signs in, into `tenant`; the home tenant is
    /// learnt at redemption, from the provider's ID token.
    public func invite(tenant: TenantRecord, request: InvitationRequest, provider: OpenIDIdentityProvider, actor: Actor) async throws -> Invitation {
        try await invite(tenant: tenant, request: request, homeTenantID: "", homeIssuer: provider.issuer, providerID: provider.id, actor: actor)
    }

    func invite(tenant: TenantRecord, request: InvitationRequest, homeTenantID: String, homeIssuer: String, providerID: String?,
                actor: Actor) async throws -> Invitation {
        let now = self.now
        let local = request.email.split(separator: "@").first.map(String.init) ?? request.email
        let upn = "\(local)_\(request.domain)#EXT#@\(tenant.domain)"
        let displayName = request.displayName ?? request.email
        let invitationID = Identifier.make()
        return try await write(tenant.id) { tx in
            let guestID: String
            if let existing = try await tx.holder(tenant: tenant.id, key: UniqueKey("userPrincipalName", upn)) {
                guestID = existing
            } else {
                let body: [String: JSONValue] = [
                    "accountEnabled": true, "displayName": .string(displayName), "mail": .string(request.email),
                    "mailNickname": .string("\(local)_\(request.domain)#EXT#"), "userPrincipalName": .string(upn),
                    "userType": .string(request.userType), "externalUserState": .string(Invitation.pending),
                    "externalUserStateChangeDateTime": .string(now), "creationType": "Invitation",
                    "identities": [["signInType": "federated", "issuer": .string(homeIssuer), "issuerAssignedId": nil]],
                ]
                guestID = try await Self.insert(kind: .user, body: body, id: Identifier.make(), tenant: tenant.id, actor: actor, now: now,
                                                allowReadOnly: true, tx: tx).id
            }
            let invitation = Invitation(id: invitationID, request: request, userID: guestID, displayName: displayName,
                                        homeTenantID: homeTenantID, identityProviderID: providerID)
            try await tx.insert(StoredObject(tenant: tenant.id, id: invitationID, kind: .invitation, body: invitation.stored))
            try await tx.record(ChangeRecord(tenant: tenant.id, objectId: guestID, kind: .user, operation: "update",
                                             activity: "Invite external user", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": .string(displayName), "invitedUserEmailAddress": .string(request.email),
                                                       "homeTenantId": .string(homeTenantID)]))
            return invitation
        }
    }

    /// An invitation of `tenant`, nil when there is none by that id.
    public func invitation(tenant: String, id: String) async throws -> Invitation? {
        guard Identifier.isGUID(id) else { return nil }
        let stored = try await store.read { tx in try await tx.object(tenant: tenant, id: id.lowercased()) }
        guard let stored, stored.kind == .invitation else { return nil }
        return try Invitation(stored: stored.body)
    }

    /// Redeems an invitation for `homeUser` (the home tenant's user who signed in there): the invited user becomes
    /// `Accepted`, names its home identity, and is linked to `homeUser`; all in one transaction, once. A link that
    /// account has to a user since deleted goes, so a deleted guest can be invited again.
    @discardableResult
    public func redeem(tenant: String, invitation id: String, homeUserID: String, actor: Actor) async throws -> ExternalUserLink {
        try await redeem(tenant: tenant, invitation: id, homeUserID: homeUserID, federated: nil, actor: actor)
    }

    /// Redeems an invitation for a user of another deployment, signed in by the invitation's OpenID Connect provider:
    /// the guest is linked to (`issuer`, `subject`), and `homeTenantID` (the ID token's `tid`, when it has one) is
    /// the tenant the cross-tenant access settings know it by.
    @discardableResult
    public func redeem(tenant: String, invitation id: String, issuer: String, subject: String, homeTenantID: String?,
                       actor: Actor) async throws -> ExternalUserLink {
        try await redeem(tenant: tenant, invitation: id, homeUserID: subject, federated: (issuer, homeTenantID ?? ""), actor: actor)
    }

    func redeem(tenant: String, invitation id: String, homeUserID: String, federated: (issuer: String, tenantID: String)?,
                actor: Actor) async throws -> ExternalUserLink {
        let now = self.now
        return try await write(tenant) { tx in
            guard let stored = try await tx.object(tenant: tenant, id: id), stored.kind == .invitation else { throw DirectoryError.notFound(id) }
            let invitation = try Invitation(stored: stored.body)
            guard (invitation.identityProviderID != nil) == (federated != nil) else {
                throw DirectoryError(.conflict, "This invitation is redeemed by signing in with \(federated == nil ? "its identity provider" : "a tenant of this deployment").")
            }
            guard let guest = try await tx.object(tenant: tenant, id: invitation.userID), guest.deletedAt == nil else {
                throw DirectoryError.notFound(invitation.userID)
            }
            let candidate = ExternalUserLink(guestID: guest.id, homeTenantID: federated?.tenantID ?? invitation.homeTenantID, homeUserID: homeUserID,
                                             invitationID: invitation.id, redeemedDateTime: now, issuer: federated?.issuer)
            let key = candidate.key
            let linkID = ExternalUserLink.objectID(guest: guest.id)
            if let holder = try await tx.holder(tenant: tenant, key: key), holder != linkID {
                let earlier = try await tx.object(tenant: tenant, id: holder).flatMap { ExternalUserLink(stored: $0.body) }
                if let earlier, try await tx.object(tenant: tenant, id: earlier.guestID)?.deletedAt == nil {
                    throw DirectoryError(.conflict, "That account already redeemed an invitation to this organization as another user.")
                }
                try await tx.purge(tenant: tenant, id: holder)
            }
            if let existing = try await tx.object(tenant: tenant, id: linkID).flatMap({ ExternalUserLink(stored: $0.body) }) {
                guard existing.key == key else {
                    throw DirectoryError(.conflict, "This invitation was already redeemed by another account.")
                }
                return existing
            }
            let link = candidate
            try await tx.claim(tenant: tenant, object: linkID, keys: [key])
            try await tx.insert(StoredObject(tenant: tenant, id: linkID, kind: .externalUserLink, body: link.stored))
            var body = guest.body
            body["externalUserState"] = .string("Accepted")
            body["externalUserStateChangeDateTime"] = .string(now)
            if var identity = body["identities"]?.arrayValue?.first?.objectValue {
                identity["issuerAssignedId"] = .string(link.homeUserID)
                body["identities"] = [.object(identity)]
            }
            var updated = guest
            updated.body = body
            updated.version = guest.version + 1
            try await tx.update(updated, expectedVersion: guest.version)
            var completed = invitation
            completed.status = Invitation.completed
            try await tx.put(StoredObject(tenant: tenant, id: invitation.id, kind: .invitation, body: completed.stored), over: stored)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: guest.id, kind: .user, operation: "update",
                                             activity: "Redeem external user invite", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": guest.body["displayName"] ?? nil,
                                                       "modifiedProperties": .array(Self.modified(guest.body, body))]))
            return link
        }
    }

    /// Records that an external user pending acceptance (a synchronized B2B user, whose home identity is already linked)
    /// accepted the consent prompt: `externalUserState` becomes Accepted, with the time. Nothing changes for a user in
    /// any other state; returns whether it was pending.
    @discardableResult
    public func acceptExternalUser(tenant: String, userID: String, actor: Actor) async throws -> Bool {
        let now = self.now
        return try await write(tenant) { tx in
            guard let user = try await tx.object(tenant: tenant, id: userID), user.kind == .user, user.deletedAt == nil else {
                throw DirectoryError.notFound(userID)
            }
            guard user.body["externalUserState"]?.stringValue == Invitation.pending else { return false }
            var updated = user
            updated.body["externalUserState"] = "Accepted"
            updated.body["externalUserStateChangeDateTime"] = .string(now)
            updated.version = user.version + 1
            try await tx.update(updated, expectedVersion: user.version)
            try await tx.record(ChangeRecord(tenant: tenant, objectId: user.id, kind: .user, operation: "update",
                                             activity: "Redeem external user invite", actor: actor.initiatedBy, at: now,
                                             details: ["displayName": user.body["displayName"] ?? nil,
                                                       "modifiedProperties": .array(Self.modified(user.body, updated.body))]))
            return true
        }
    }

    /// The home identity of an invited user who redeemed, nil for anyone else.
    public func externalUserLink(tenant: String, userID: String) async throws -> ExternalUserLink? {
        try await store.read { tx in
            try await tx.object(tenant: tenant, id: ExternalUserLink.objectID(guest: userID)).flatMap { ExternalUserLink(stored: $0.body) }
        }
    }

    /// The user of `tenant` that the provider's user (`issuer`, `subject`) redeemed an invitation as, if any.
    public func externalUser(tenant: String, issuer: String, subject: String) async throws -> String? {
        try await externalUser(tenant: tenant, key: ExternalUserLink.key(issuer: issuer, subject: subject))
    }

    /// The user of `tenant` that `homeUser` of `homeTenant` redeemed an invitation as, if any.
    public func externalUser(tenant: String, homeTenant: String, homeUser: String) async throws -> String? {
        try await externalUser(tenant: tenant, key: ExternalUserLink.key(homeTenant: homeTenant, homeUser: homeUser))
    }

    func externalUser(tenant: String, key: UniqueKey) async throws -> String? {
        try await store.read { tx in
            guard let linkID = try await tx.holder(tenant: tenant, key: key),
                  let link = try await tx.object(tenant: tenant, id: linkID).flatMap({ ExternalUserLink(stored: $0.body) }) else { return nil }
            return link.guestID
        }
    }
}
