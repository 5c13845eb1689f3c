import Foundation
import TesseraCore

/// How the Graph JSON of each supported kind reads as a Tenant Configuration Management resource: the property names
/// and shapes of Microsoft's resource reference (https://learn.microsoft.com/graph/utcm-entra-resources).
enum ConfigurationMapping {
    /// `displayName` → `DisplayName`.
    static func pascal(_ name: String) -> String {
        guard let first = name.first else { return name }
        return first.uppercased() + name.dropFirst()
    }

    /// A Graph object with every member's name in PascalCase, nested objects too; Tessera's private (`_`) members,
    /// OData annotations and nulls left out.
    static func pascalObject(_ body: [String: JSONValue]) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (name, value) in body where !name.hasPrefix("_") && !name.hasPrefix("@") && value != .null {
            out[pascal(name)] = pascalValue(value)
        }
        return out
    }

    static func pascalValue(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object): .object(pascalObject(object))
        case .array(let items): .array(items.map(pascalValue))
        default: value
        }
    }

    /// Builds a resource's properties from (name, value) pairs, leaving out what is absent.
    static func properties(_ pairs: KeyValuePairs<String, JSONValue?>) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (name, value) in pairs {
            if let value, value != .null { out[name] = value }
        }
        return out
    }

    /// `days` → `Days`, as Microsoft's resource lists the allowed values of a few properties.
    static func capitalized(_ value: JSONValue?) -> JSONValue? {
        value?.stringValue.map { .string(pascal($0)) }
    }

    // MARK: Conditional Access

    static let conditionalAccessPolicy = ConfigurationResourceType(
        name: "microsoft.entra.conditionalAccessPolicy", kind: .conditionalAccessPolicy, key: "DisplayName",
        propertyNames: [
            "DisplayName", "Id", "State", "IncludeApplications", "ApplicationsFilter", "ApplicationsFilterMode", "ExcludeApplications",
            "IncludeUserActions", "IncludeUsers", "ExcludeUsers", "IncludeGroups", "ExcludeGroups", "IncludeRoles", "ExcludeRoles",
            "IncludeGuestOrExternalUserTypes", "IncludeExternalTenantsMembershipKind", "IncludeExternalTenantsMembers",
            "ExcludeGuestOrExternalUserTypes", "ExcludeExternalTenantsMembershipKind", "ExcludeExternalTenantsMembers",
            "IncludePlatforms", "ExcludePlatforms", "IncludeLocations", "ExcludeLocations", "DeviceFilterMode", "DeviceFilterRule",
            "UserRiskLevels", "SignInRiskLevels", "ClientAppTypes", "GrantControlOperator", "BuiltInControls",
            "ApplicationEnforcedRestrictionsIsEnabled", "CloudAppSecurityIsEnabled", "CloudAppSecurityType", "SignInFrequencyValue",
            "TermsOfUse", "CustomAuthenticationFactors", "SignInFrequencyType", "SignInFrequencyIsEnabled", "SignInFrequencyInterval",
            "PersistentBrowserIsEnabled", "PersistentBrowserMode", "AuthenticationStrength", "TransferMethods", "AuthenticationContexts",
        ],
        describe: conditionalAccess)

    static func conditionalAccess(_ b: [String: JSONValue]) -> [String: JSONValue] {
        let conditions = b["conditions"], apps = conditions?["applications"], users = conditions?["users"]
        let grant = b["grantControls"], session = b["sessionControls"]
        let included = users?["includeGuestsOrExternalUsers"], excluded = users?["excludeGuestsOrExternalUsers"]
        /// Graph keeps guest types as one comma-separated string; the resource as a list.
        func guestTypes(_ value: JSONValue?) -> JSONValue? {
            value?["guestOrExternalUserTypes"]?.stringValue.map { text in
                .array(text.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
            }
        }
        let strength = grant?["authenticationStrength"]
        return properties([
            "DisplayName": b["displayName"], "Id": b["id"], "State": b["state"],
            "IncludeApplications": apps?["includeApplications"], "ExcludeApplications": apps?["excludeApplications"],
            "IncludeUserActions": apps?["includeUserActions"],
            "ApplicationsFilter": apps?["applicationFilter"]?["rule"], "ApplicationsFilterMode": apps?["applicationFilter"]?["mode"],
            "AuthenticationContexts": apps?["includeAuthenticationContextClassReferences"],
            "IncludeUsers": users?["includeUsers"], "ExcludeUsers": users?["excludeUsers"],
            "IncludeGroups": users?["includeGroups"], "ExcludeGroups": users?["excludeGroups"],
            "IncludeRoles": users?["includeRoles"], "ExcludeRoles": users?["excludeRoles"],
            "IncludeGuestOrExternalUserTypes": guestTypes(included),
            "IncludeExternalTenantsMembershipKind": included?["externalTenants"]?["membershipKind"],
            "IncludeExternalTenantsMembers": included?["externalTenants"]?["members"],
            "ExcludeGuestOrExternalUserTypes": guestTypes(excluded),
            "ExcludeExternalTenantsMembershipKind": excluded?["externalTenants"]?["membershipKind"],
            "ExcludeExternalTenantsMembers": excluded?["externalTenants"]?["members"],
            "IncludePlatforms": conditions?["platforms"]?["includePlatforms"], "ExcludePlatforms": conditions?["platforms"]?["excludePlatforms"],
            "IncludeLocations": conditions?["locations"]?["includeLocations"], "ExcludeLocations": conditions?["locations"]?["excludeLocations"],
            "DeviceFilterMode": conditions?["devices"]?["deviceFilter"]?["mode"], "DeviceFilterRule": conditions?["devices"]?["deviceFilter"]?["rule"],
            "UserRiskLevels": conditions?["userRiskLevels"], "SignInRiskLevels": conditions?["signInRiskLevels"],
            "ClientAppTypes": conditions?["clientAppTypes"], "TransferMethods": conditions?["authenticationFlows"]?["transferMethods"],
            "GrantControlOperator": grant?["operator"], "BuiltInControls": grant?["builtInControls"],
            "CustomAuthenticationFactors": grant?["customAuthenticationFactors"], "TermsOfUse": grant?["termsOfUse"]?.arrayValue?.first,
            "AuthenticationStrength": strength?["displayName"] ?? strength?["id"],
            "ApplicationEnforcedRestrictionsIsEnabled": session?["applicationEnforcedRestrictions"]?["isEnabled"],
            "CloudAppSecurityIsEnabled": session?["cloudAppSecurity"]?["isEnabled"],
            "CloudAppSecurityType": session?["cloudAppSecurity"]?["cloudAppSecurityType"],
            "SignInFrequencyValue": session?["signInFrequency"]?["value"], "SignInFrequencyType": capitalized(session?["signInFrequency"]?["type"]),
            "SignInFrequencyIsEnabled": session?["signInFrequency"]?["isEnabled"],
            "SignInFrequencyInterval": session?["signInFrequency"]?["frequencyInterval"],
            "PersistentBrowserIsEnabled": session?["persistentBrowser"]?["isEnabled"],
            "PersistentBrowserMode": capitalized(session?["persistentBrowser"]?["mode"]),
        ])
    }

    // MARK: Named locations

    static let namedLocationPolicy = ConfigurationResourceType(
        name: "microsoft.entra.namedLocationPolicy", kind: .namedLocation, key: "DisplayName",
        propertyNames: ["DisplayName", "Id", "OdataType", "IpRanges", "IsTrusted", "CountriesAndRegions", "CountryLookupMethod",
                        "IncludeUnknownCountriesAndRegions"],
        describe: { b in
            properties([
                "DisplayName": b["displayName"], "Id": b["id"], "OdataType": b["@odata.type"], "IsTrusted": b["isTrusted"],
                "IpRanges": b["ipRanges"]?.arrayValue.map { .array($0.compactMap { $0["cidrAddress"] }) },
                "CountriesAndRegions": b["countriesAndRegions"], "CountryLookupMethod": b["countryLookupMethod"],
                "IncludeUnknownCountriesAndRegions": b["includeUnknownCountriesAndRegions"],
            ])
        })

    // MARK: Authentication methods policy

    /// The policy's fixed part, as `GET /policies/authenticationMethodsPolicy` shows it.
    static let authenticationMethodPolicy = ConfigurationResourceType(
        name: "microsoft.entra.authenticationMethodPolicy", kind: .authenticationMethodsPolicy, key: "DisplayName",
        propertyNames: ["DisplayName", "Id", "Description", "PolicyMigrationState", "PolicyVersion", "ReconfirmationInDays",
                        "RegistrationEnforcement", "SystemCredentialPreferences"],
        describe: { _ in
            [
                "DisplayName": "Authentication Methods Policy", "Id": "authenticationMethodsPolicy",
                "Description": "The tenant-wide policy that controls the authentication methods allowed in the tenant, authentication method registration requirements, and self-service password reset settings",
                "PolicyVersion": "1.5", "PolicyMigrationState": "migrationComplete",
            ]
        })

    /// The FIDO2 (passkey) method's configuration within the authentication methods policy.
    static let authenticationMethodPolicyFido2 = ConfigurationResourceType(
        name: "microsoft.entra.authenticationMethodPolicyFido2", kind: .authenticationMethodsPolicy, key: "Id",
        propertyNames: ["Id", "State", "IsAttestationEnforced", "IsSelfServiceRegistrationAllowed", "KeyRestrictions",
                        "IncludeTargets", "ExcludeTargets"],
        describe: { b in
            let configuration = (b["fido2"].flatMap { try? Fido2Configuration(stored: $0).migrated() } ?? .tenantDefault).json
            let targets: (String) -> JSONValue? = { name in
                configuration[name]?.arrayValue.map { .array($0.map { ["Id": $0["id"] ?? .null, "TargetType": $0["targetType"] ?? .null] }) }
            }
            let restrictions = configuration["keyRestrictions"]
            return properties([
                "Id": "Fido2", "State": configuration["state"], "IsAttestationEnforced": configuration["isAttestationEnforced"],
                "IsSelfServiceRegistrationAllowed": configuration["isSelfServiceRegistrationAllowed"],
                "KeyRestrictions": restrictions.map { _ in
                    .object(properties(["AaGuids": restrictions?["aaGuids"], "EnforcementType": restrictions?["enforcementType"],
                                        "IsEnforced": restrictions?["isEnforced"]]))
                },
                "IncludeTargets": targets("includeTargets"), "ExcludeTargets": targets("excludeTargets"),
            ])
        })
}
