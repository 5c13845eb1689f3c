import TesseraCore

/// The members Microsoft's response examples show for each kind, with the values Graph gives them when nothing
/// set them: an application always has `web.redirectUris`, a group `mail` and `visibility` (null), a policy its
/// exclude lists. Applied when an object is rendered, so objects stored before a default was known get it too;
/// stored values win, and complex values are completed member by member.
extension Renderer {
    static let urls: JSONValue = ["logoUrl": nil, "marketingUrl": nil, "privacyStatementUrl": nil, "supportUrl": nil, "termsOfServiceUrl": nil]
    static let publisher: JSONValue = ["displayName": nil, "verifiedPublisherId": nil, "addedDateTime": nil]

    static let defaults: [ObjectKind: [String: JSONValue]] = [
        .application: [
            "addIns": [], "api": ["acceptMappedClaims": nil, "knownClientApplications": [], "requestedAccessTokenVersion": nil,
                                  "oauth2PermissionScopes": [], "preAuthorizedApplications": []],
            "appRoles": [], "applicationTemplateId": nil, "certification": nil, "defaultRedirectUri": nil, "description": nil,
            "disabledByMicrosoftStatus": nil, "groupMembershipClaims": nil, "identifierUris": [], "info": urls,
            "isDeviceOnlyAuthSupported": nil, "isFallbackPublicClient": nil, "keyCredentials": [], "notes": nil,
            "optionalClaims": nil, "parentalControlSettings": ["countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"],
            "passwordCredentials": [], "publicClient": ["redirectUris": []], "requiredResourceAccess": [],
            "samlMetadataUrl": nil, "serviceManagementReference": nil, "signInAudience": "AzureADMyOrg",
            "spa": ["redirectUris": []], "tags": [], "tokenEncryptionKeyId": nil, "verifiedPublisher": publisher,
            "web": ["homePageUrl": nil, "logoutUrl": nil, "redirectUris": [], "redirectUriSettings": [],
                    "implicitGrantSettings": ["enableAccessTokenIssuance": false, "enableIdTokenIssuance": false]],
        ],
        .servicePrincipal: [
            "accountEnabled": true, "addIns": [], "alternativeNames": [], "appDescription": nil, "appRoleAssignmentRequired": false,
            "appRoles": [], "applicationTemplateId": nil, "description": nil, "disabledByMicrosoftStatus": nil, "homepage": nil,
            "info": urls, "keyCredentials": [], "loginUrl": nil, "logoutUrl": nil, "notes": nil, "notificationEmailAddresses": [],
            "oauth2PermissionScopes": [], "passwordCredentials": [], "preferredSingleSignOnMode": nil,
            "preferredTokenSigningKeyThumbprint": nil, "replyUrls": [], "servicePrincipalNames": [], "servicePrincipalType": "Application",
            "samlSingleSignOnSettings": nil, "tags": [], "tokenEncryptionKeyId": nil, "verifiedPublisher": publisher,
        ],
        .group: [
            "classification": nil, "description": nil, "expirationDateTime": nil, "groupTypes": [], "isAssignableToRole": nil,
            "mail": nil, "membershipRule": nil, "membershipRuleProcessingState": nil, "onPremisesDomainName": nil,
            "onPremisesLastSyncDateTime": nil, "onPremisesNetBiosName": nil, "onPremisesProvisioningErrors": [],
            "onPremisesSamAccountName": nil, "onPremisesSecurityIdentifier": nil, "onPremisesSyncEnabled": nil,
            "preferredDataLocation": nil, "preferredLanguage": nil, "proxyAddresses": [], "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": [], "theme": nil, "visibility": nil, "deletedDateTime": nil,
        ],
        .device: [
            "alternativeSecurityIds": [], "approximateLastSignInDateTime": nil, "complianceExpirationDateTime": nil,
            "deviceMetadata": nil, "deviceVersion": nil, "isCompliant": nil, "isManaged": nil, "mdmAppId": nil,
            "onPremisesLastSyncDateTime": nil, "onPremisesSyncEnabled": nil, "operatingSystem": nil,
            "operatingSystemVersion": nil, "physicalIds": [], "profileType": nil, "systemLabels": [], "trustType": nil,
        ],
        .conditionalAccessPolicy: [
            "modifiedDateTime": nil, "sessionControls": nil, "templateId": nil,
            "conditions": [
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"], "servicePrincipalRiskLevels": [],
                "platforms": nil, "locations": nil, "devices": nil, "clientApplications": nil, "times": nil,
                "applications": ["includeApplications": [], "excludeApplications": [], "includeUserActions": [],
                                 "includeAuthenticationContextClassReferences": [], "applicationFilter": nil],
                "users": ["includeUsers": [], "excludeUsers": [], "includeGroups": [], "excludeGroups": [], "includeRoles": [],
                          "excludeRoles": [], "includeGuestsOrExternalUsers": nil, "excludeGuestsOrExternalUsers": nil],
            ],
            "grantControls": nil,
        ],
    ]

    /// The stored property each derived member is computed from.
    static let derivedFrom = ["renewedDateTime": "createdDateTime", "identities": "userPrincipalName"]

    /// Completes `body` with the defaults of `kind` and the members Graph derives (a group's `renewedDateTime`, a
    /// user's `identities`).
    static func withDefaults(_ body: [String: JSONValue], kind: ObjectKind) -> [String: JSONValue] {
        var out = body
        for (name, value) in defaults[kind] ?? [:] { out[name] = completed(out[name], with: value) }
        if kind == .conditionalAccessPolicy, case .object(var grant)? = out["grantControls"] {
            for (name, value) in ["customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": nil] as [String: JSONValue]
            where grant[name] == nil { grant[name] = value }
            out["grantControls"] = .object(grant)
        }
        if kind == .group, out["renewedDateTime"] == nil { out["renewedDateTime"] = out["createdDateTime"] ?? .null }
        if kind == .user, out["identities"] == nil, let upn = out["userPrincipalName"]?.stringValue,
           let domain = upn.split(separator: "@").last {
            out["identities"] = [["signInType": "userPrincipalName", "issuer": .string(String(domain)), "issuerAssignedId": .string(upn)]]
        }
        return out
    }

    /// A stored value completed by a default: missing takes the default; objects are completed member by member.
    static func completed(_ stored: JSONValue?, with fallback: JSONValue) -> JSONValue {
        guard let stored else { return fallback }
        guard case .object(var members) = stored, case .object(let defaults) = fallback else { return stored }
        for (name, value) in defaults { members[name] = completed(members[name], with: value) }
        return .object(members)
    }
}
