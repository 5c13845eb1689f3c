import Foundation
import Logging
import TesseraCore

/// A sign-in to an application, or a token issued without one, as the sign-in log records it: Graph's `signIn`, with
/// the fields of its beta version that say how it was authenticated (`signInEventTypes`, `authenticationRequirement`,
/// `authenticationDetails`, `authenticationMethodsUsed`, each applied policy's conditions), and the Conditional Access
/// decision behind it.
struct SignInEvent {
    /// Graph's `signInEventTypes`.
    enum Kind: String {
        /// A user at a browser: `/authorize` and the device login page.
        case interactiveUser
        /// A client on the user's behalf, without the user: the refresh token grant.
        case nonInteractiveUser
        /// A client for itself: the client credentials grant.
        case servicePrincipal
    }

    var kind: Kind
    /// The user who signed in; for `servicePrincipal`, the client's service principal; nil for a device's own sign-in
    /// (``device``).
    var principal: StoredObject?
    /// The client application's appId and name.
    var appID: String
    var appDisplayName: String?
    /// The resource the token is for (its appId) and its name, when there is one.
    var resourceID: String?
    var resourceDisplayName: String?
    /// The methods of the session (its `amr`) and when it authenticated.
    var amr: [String] = []
    var authTime: Int64?
    /// Conditional Access's decision; nil only when it was not asked.
    var decision: ConditionalAccessDecision?
    /// Why the sign-in failed (Entra's AADSTS number and reason); nil when it succeeded.
    var failure: (code: Int, reason: String)?
    /// Graph's `clientAppUsed`.
    var clientAppUsed: String?
    /// A device signing in as itself: Graph's `deviceDetail` for it.
    var device: DeviceDetail?
    /// A sign-in across tenants by a user with no object in the tenant logging it (B2B direct connect): the access
    /// type and both tenants, as each tenant's log names them.
    var crossTenant: (accessType: String, homeTenantID: String, resourceTenantID: String)? = nil

    /// Graph's `deviceDetail` of a registered device.
    struct DeviceDetail {
        var deviceId: String
        var displayName: String?
        var operatingSystem: String?
        var trustType: String?
        var isManaged: Bool?
        var isCompliant: Bool?

        /// What the sign-in log says of `device` (a Graph `device` object).
        init(device: StoredObject) {
            let body = device.body
            deviceId = body["deviceId"]?.stringValue ?? ""
            displayName = body["displayName"]?.stringValue
            operatingSystem = body["operatingSystem"]?.stringValue
            trustType = Self.trustTypeName(body["trustType"]?.stringValue)
            // A hybrid joined device is managed by its domain, as Entra counts it; otherwise the device's own flag.
            isManaged = body["isManaged"] == .bool(true) || body["trustType"]?.stringValue?.lowercased() == "serverad"
            isCompliant = body["isCompliant"] == .bool(true)
        }

        /// A device known only by its id (it no longer exists).
        init(deviceId: String) {
            self.deviceId = deviceId
        }

        /// The device object's `trustType` as the sign-in log spells it.
        static func trustTypeName(_ trustType: String?) -> String? {
            switch trustType?.lowercased() {
            case "serverad": "Hybrid Azure AD joined"
            case "azuread": "Azure AD joined"
            case "workplace": "Azure AD registered"
            default: nil
            }
        }

        var json: JSONValue {
            ["deviceId": .string(deviceId), "displayName": .optional(displayName), "operatingSystem": .optional(operatingSystem),
             "trustType": .optional(trustType), "isManaged": isManaged.map(JSONValue.bool) ?? .null,
             "isCompliant": isCompliant.map(JSONValue.bool) ?? .null]
        }
    }

    /// Graph's `signIn` body (without `id` and `createdDateTime`, which the log sets).
    func entry(request: APIRequest, tenantID: String) -> [String: JSONValue] {
        let isUser = kind != .servicePrincipal
        var entry: [String: JSONValue] = [
            "appId": .string(appID), "appDisplayName": .optional(appDisplayName),
            "resourceId": .optional(resourceID), "resourceDisplayName": .optional(resourceDisplayName),
            "resourceTenantId": .string(tenantID), "homeTenantId": .string(tenantID),
            "correlationId": .string(request.requestID), "ipAddress": .optional(request.clientAddress),
            "userAgent": .optional(request.header("user-agent")), "clientAppUsed": .optional(clientAppUsed),
            "isInteractive": .bool(kind == .interactiveUser), "signInEventTypes": [.string(kind.rawValue)],
            "status": [
                "errorCode": .int(Int64(failure?.code ?? 0)), "failureReason": .optional(failure?.reason),
                "additionalDetails": .optional(failure == nil ? nil : "Correlation id \(request.requestID)"),
            ],
            "deviceDetail": device?.json ?? [
                "operatingSystem": .optional(request.header("user-agent").flatMap(DevicePlatform.init(userAgent:))?.rawValue),
            ],
        ]
        if isUser {
            entry["userId"] = .optional(principal?.id)
            entry["userPrincipalName"] = .optional(principal?.body["userPrincipalName"]?.stringValue)
            entry["userDisplayName"] = .optional(principal?.body["displayName"]?.stringValue)
        } else {
            // A service principal's (or a device's) sign-in has no user; Graph's userId is not nullable, so it is empty.
            entry["userId"] = ""
            entry["servicePrincipalId"] = .optional(principal?.id)
            entry["servicePrincipalName"] = .optional(principal?.body["displayName"]?.stringValue)
        }
        if let crossTenant {
            entry["crossTenantAccessType"] = .string(crossTenant.accessType)
            entry["homeTenantId"] = .string(crossTenant.homeTenantID)
            entry["resourceTenantId"] = .string(crossTenant.resourceTenantID)
        }
        let applied = decision?.policies ?? []
        entry["appliedConditionalAccessPolicies"] = .array(applied.map(Self.render))
        entry["conditionalAccessStatus"] = .string(decision?.status ?? "notApplied")
        // What the policies asked of this sign-in, not what the user happened to do: multifactor when an enforced policy
        // that applied demanded a method (mfa or an authentication strength).
        let demandsMethod = applied.contains { policy in
            (policy.result == .success || policy.result == .failure)
                && policy.enforcedGrantControls.contains { $0 == "mfa" || $0 == "authenticationStrength" }
        }
        if isUser {
            entry["authenticationRequirement"] = .string(demandsMethod ? "multiFactorAuthentication" : "singleFactorAuthentication")
            let methods = Self.methodNames(amr)
            entry["authenticationMethodsUsed"] = .strings(methods)
            let when = authTime.map { JSONValue.string(Timestamp.format(Date(timeIntervalSince1970: TimeInterval($0)))) } ?? .null
            entry["authenticationDetails"] = .array(kind == .nonInteractiveUser
                ? [["authenticationMethod": "Previously satisfied", "authenticationStepDateTime": when, "succeeded": true,
                    "authenticationStepResultDetail": "First factor requirement satisfied by claim in the token"]]
                : methods.map { method in
                    ["authenticationMethod": .string(method), "authenticationStepDateTime": when, "succeeded": true,
                     "authenticationStepRequirement": "Primary authentication",
                     "authenticationStepResultDetail": "MFA completed in Tessera"]
                })
        }
        return entry
    }

    /// An `appliedConditionalAccessPolicy`, with beta's `conditionsSatisfied` / `conditionsNotSatisfied` flags.
    static func render(_ policy: AppliedPolicy) -> JSONValue {
        var body: [String: JSONValue] = [
            "id": .string(policy.id), "displayName": .string(policy.displayName), "result": .string(policy.result.rawValue),
            "enforcedGrantControls": .strings(policy.enforcedGrantControls),
            "enforcedSessionControls": .strings(policy.enforcedSessionControls),
            "conditionsSatisfied": .string(policy.conditionsSatisfied.names.isEmpty ? "none" : policy.conditionsSatisfied.names.joined(separator: ",")),
            "conditionsNotSatisfied": .string(policy.conditionsNotSatisfied.names.isEmpty ? "none" : policy.conditionsNotSatisfied.names.joined(separator: ",")),
        ]
        if let reason = policy.failedClosedBecause { body["failedClosedBecause"] = .string(reason) }
        return .object(body)
    }

    /// The methods a session's `amr` stands for, as the sign-in log names them.
    static func methodNames(_ amr: [String]) -> [String] {
        var names: [String] = []
        if amr.contains("fido") { names.append("Passkey") }
        if amr.contains("tap") { names.append("Temporary Access Pass") }
        return names
    }
}

extension SignInLog {
    /// Records a sign-in or token request. The log must not decide whether a token is issued: when it cannot take the
    /// record (its store is failing), that is logged as an error and the caller goes on.
    func record(_ event: SignInEvent, request: APIRequest) async {
        do {
            var entry = event.entry(request: request, tenantID: tenant)
            // Graph's signInLocation, as far as the IP-to-country database places the client.
            if let country = app.countries.country(for: request.clientAddress) { entry["location"] = ["countryOrRegion": .string(country)] }
            // An external user's sign-in names the tenant it came from (Graph's homeTenantId; beta's crossTenantAccessType).
            if event.kind != .servicePrincipal, let user = event.principal,
               let link = try await CrossTenantSignIn(app: app).link(tenant: tenant, user: user) {
                entry["homeTenantId"] = .string(link.homeTenantID)
                entry["crossTenantAccessType"] = "b2bCollaboration"
            }
            try await app.directory.recordSignIn(tenant: tenant, entry: entry)
        } catch {
            app.logger.error("Could not record a sign-in", metadata: [
                "tenant": .string(tenant), "request-id": .string(request.requestID), "error": .string(String(describing: error))])
        }
    }
}
