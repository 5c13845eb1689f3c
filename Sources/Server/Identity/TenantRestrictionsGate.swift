import Foundation
import Logging
import TesseraCore

/// Tenant restrictions v2 at the identity platform, as Entra enforces them on the authentication plane: a request to
/// `/authorize` or `/token` carrying `sec-Restrict-Tenant-Access-Policy: <tenant>:<policy id>` (added by a network's
/// proxy or a managed device) signs in with an external account only as far as that restricting tenant's
/// `tenantRestrictions` allow: its partner configuration for the tenant the account belongs to, else its default
/// (which blocks every external account unless changed).
///
/// What counts as external follows Microsoft's split of the settings: an account of the restricting tenant itself is
/// never restricted (its outbound settings govern it, as a B2B guest elsewhere too), and a sign-in to the restricting
/// tenant's own applications is its inbound settings' to decide. Everything else is checked: a user of another
/// tenant signing in to that tenant, or a guest of any tenant whose home is not the restricting one. A header naming no
/// tenant of this deployment is not this deployment's to enforce and is ignored; a header that is not
/// `<GUID>:<GUID>`, or names a tenant with another policy id, is refused (a proxy configured wrongly must not look
/// like one enforcing).
struct TenantRestrictionsGate {
    let app: TesseraApp
    let tenant: TenantRecord
    let request: APIRequest

    /// Entra's code for a sign-in the restricting tenant's policy does not allow.
    static let blockedCode = 5000211
    /// Entra's code for a request it cannot read.
    static let malformedCode = 90023

    /// Why a sign-in may not go on.
    enum Refusal: Error {
        case malformed(String)
        /// The restricting tenant's policy does not allow the sign-in (why is in the server's log, not the user's page).
        case blocked

        var code: Int { if case .malformed = self { TenantRestrictionsGate.malformedCode } else { TenantRestrictionsGate.blockedCode } }
        var message: String {
            switch self {
            case .malformed(let reason): reason
            case .blocked:
                "A tenant restrictions policy added to this request by a device or network administrator does not allow access to this tenant."
            }
        }
    }

    /// The request's header when it names a tenant of this deployment and that tenant's policy; nil without one.
    /// Throws ``Refusal/malformed(_:)`` for a header that is not one.
    func header() async throws -> TenantRestrictionHeader? {
        guard let raw = request.header(TenantRestrictionHeader.name) else { return nil }
        let header: TenantRestrictionHeader
        do {
            header = try TenantRestrictionHeader(parsing: raw)
        } catch {
            throw Refusal.malformed(error.description)
        }
        guard try await app.tenantRecord(header.restrictingTenantID) != nil else { return nil }
        guard header.namesItsTenantsPolicy else {
            throw Refusal.malformed(
                "The \(TenantRestrictionHeader.name) header's policy id is not tenant \(header.restrictingTenantID)'s cross-tenant access policy.")
        }
        return header
    }

    /// Checks the sign-in of `userID` to `clientID`: this tenant's user, or for B2B direct connect (no object here)
    /// `homeTenant`'s.
    func check(userID: String?, clientID: String, homeTenant: String? = nil) async throws {
        guard let header = try await header(), let userID else { return }
        let restricting = header.restrictingTenantID
        guard restricting != tenant.id else { return }
        // The account's own tenant and its id there: a guest's home, else this tenant.
        var home = tenant.id, homeUser = userID, isRemote = false
        if let homeTenant {
            home = homeTenant.lowercased()
        } else if let user = try await app.activeUser(tenant: tenant.id, id: userID),
                  let link = try await CrossTenantSignIn(app: app).link(tenant: tenant.id, user: user) {
            (home, homeUser, isRemote) = (link.homeTenantID, link.homeUserID, link.isRemote)
        }
        guard home != restricting else { return }
        let directory = app.directory, homeID = home, homeUserID = homeUser
        // A user of another deployment brings no groups that this one knows.
        let groups = isRemote ? []
            : Set(try await app.store.read { tx in try await directory.transitiveGroups(tenant: homeID, of: homeUserID, tx: tx) })
        let access = try await directory.crossTenantAccess(tenant: restricting, partner: home)
        if case .blocked(let reason) = access.tenantRestriction(userID: homeUser, groupIDs: groups, applicationID: clientID) {
            app.logger.notice("tenant restrictions refused a sign-in", metadata: [
                "tenant": .string(tenant.id), "restrictingTenant": .string(restricting), "homeTenant": .string(home),
                "client": .string(clientID), "reason": .string(reason), "request-id": .string(request.requestID)])
            throw Refusal.blocked
        }
    }

    /// The token endpoint's first check, before any grant is read: a header that is not one is `invalid_request`.
    func requireReadableHeader() async throws {
        do {
            _ = try await header()
        } catch let refusal as Refusal {
            throw OAuthError.invalidRequest(refusal.code, refusal.message)
        }
    }

    /// `/authorize`'s check: nil when the sign-in may go on, else Entra's page (the refusal is in the sign-in log).
    func authorize(userID: String?, clientID: String, application: StoredObject) async throws -> APIResponse? {
        do {
            try await check(userID: userID, clientID: clientID)
            return nil
        } catch let refusal as Refusal {
            await record(refusal, userID: userID, clientID: clientID, displayName: application.body["displayName"]?.stringValue, interactive: true)
            return page(refusal)
        }
    }

    /// `/token`'s check: throws Entra's OAuth error (the refusal is in the sign-in log).
    func token(userID: String, clientID: String, homeTenant: String? = nil) async throws {
        do {
            try await check(userID: userID, clientID: clientID, homeTenant: homeTenant)
        } catch let refusal as Refusal {
            let name = try await app.application(tenant: tenant.id, appID: clientID)?.body["displayName"]?.stringValue
            await record(refusal, userID: userID, clientID: clientID, displayName: name, interactive: false, homeTenant: homeTenant)
            switch refusal {
            case .malformed(let reason): throw OAuthError.invalidRequest(refusal.code, reason)
            case .blocked: throw OAuthError(error: "invalid_grant", code: refusal.code, description: refusal.message)
            }
        }
    }

    /// The device login page's approval (the device code flow): a refusal is Graph-shaped JSON for the page's script,
    /// in the sign-in log; the device gets nothing.
    func deviceLogin(userID: String, clientID: String) async throws {
        do {
            try await check(userID: userID, clientID: clientID)
        } catch let refusal as Refusal {
            let name = try await app.application(tenant: tenant.id, appID: clientID)?.body["displayName"]?.stringValue
            await record(refusal, userID: userID, clientID: clientID, displayName: name, interactive: true)
            let message = "AADSTS\(refusal.code): \(refusal.message) (correlation id \(request.requestID))."
            switch refusal {
            case .malformed: throw DirectoryError.badRequest(message)
            case .blocked: throw DirectoryError(.accessDenied, message)
            }
        }
    }

    /// The refusal in the sign-in log; a B2B direct connect user's (`homeTenant`'s user) in both tenants' logs, as
    /// Entra keeps that access.
    func record(_ refusal: Refusal, userID: String?, clientID: String, displayName: String?, interactive: Bool, homeTenant: String? = nil) async {
        guard case .blocked = refusal, let userID, let user = try? await app.activeUser(tenant: homeTenant ?? tenant.id, id: userID) else { return }
        var event = SignInEvent(kind: interactive ? .interactiveUser : .nonInteractiveUser, principal: user, appID: clientID,
                                appDisplayName: displayName, failure: (refusal.code, refusal.message),
                                clientAppUsed: interactive ? "Browser" : "Mobile Apps and Desktop clients")
        if let homeTenant { event.crossTenant = ("b2bDirectConnect", homeTenant, tenant.id) }
        await SignInLog(app: app, tenant: tenant.id).record(event, request: request)
        if let homeTenant { await SignInLog(app: app, tenant: homeTenant).record(event, request: request) }
    }

    /// Entra's page for a refused sign-in: who restricted it is the network's business, the code and correlation id
    /// are what an administrator needs.
    func page(_ refusal: Refusal) -> APIResponse {
        AccessBlockedPage.render(title: "Access blocked – \(tenant.name)", heading: "Access is blocked by your organization",
                                 message: refusal.message, code: refusal.code, correlationID: request.requestID,
                                 status: refusal.code == Self.malformedCode ? 400 : 403)
    }
}
