import Foundation
import TesseraCore

/// A Conditional Access policy (Graph's JSON) described for people: whom it targets, which resources, under which
/// conditions, and what it grants or controls, with ids replaced by the names the admin center could find. Every
/// string returned is HTML, escaped here.
struct PolicyDescription {
    /// Display names by object id (users, groups, service principals), by named location id, and by application id.
    struct Names: Sendable {
        var objects: [String: String] = [:]
        var locations: [String: String] = [:]
        var applications: [String: String] = [:]
    }

    let policy: JSONValue
    let names: Names

    var conditions: JSONValue? { policy["conditions"] }

    /// `On`, `Report-only` or `Off`, as a pill.
    static func state(_ state: String?) -> String {
        switch state {
        case "enabled": "<span class=\"pill\">On</span>"
        case "enabledForReportingButNotEnforced": "<span class=\"pill\">Report-only</span>"
        default: "<span class=\"pill off\">Off</span>"
        }
    }

    /// Who the policy is for: users, groups, roles, guests or workload identities, and who it leaves out.
    var targets: String {
        let users = conditions?["users"]
        var include = strings(users?["includeUsers"]).map(user) + strings(users?["includeGroups"]).map { "group " + object($0) }
        include += strings(users?["includeRoles"]).map(role)
        if let guests = users?["includeGuestsOrExternalUsers"]?["guestOrExternalUserTypes"]?.stringValue { include.append("guests: " + h(guests)) }
        var exclude = strings(users?["excludeUsers"]).map(user) + strings(users?["excludeGroups"]).map { "group " + object($0) }
        exclude += strings(users?["excludeRoles"]).map(role)
        if let guests = users?["excludeGuestsOrExternalUsers"]?["guestOrExternalUserTypes"]?.stringValue { exclude.append("guests: " + h(guests)) }
        let principals = conditions?["clientApplications"]
        include += strings(principals?["includeServicePrincipals"]).map {
            $0 == "ServicePrincipalsInMyTenant" ? "every service principal" : "service principal " + object($0)
        }
        exclude += strings(principals?["excludeServicePrincipals"]).map { "service principal " + object($0) }
        return Self.list(include, exclude)
    }

    /// Which resources, user actions or authentication contexts.
    var resources: String {
        let apps = conditions?["applications"]
        var include = strings(apps?["includeApplications"]).map(application)
        include += strings(apps?["includeUserActions"]).map {
            switch $0 {
            case UserAction.registerSecurityInformation.rawValue: "register security information"
            case UserAction.registerOrJoinDevices.rawValue: "register or join devices"
            default: h($0)
            }
        }
        include += strings(apps?["includeAuthenticationContextClassReferences"]).map { "authentication context " + h($0) }
        return Self.list(include, strings(apps?["excludeApplications"]).map(application))
    }

    /// The other conditions: platforms, locations, client apps, risks, devices and flows ("Any" when none).
    var otherConditions: String {
        var parts: [String] = []
        if let platforms = conditions?["platforms"], platforms != .null {
            parts.append("Platforms: " + Self.list(strings(platforms["includePlatforms"]).map { h($0) },
                                                   strings(platforms["excludePlatforms"]).map { h($0) }))
        }
        if let locations = conditions?["locations"], locations != .null {
            parts.append("Locations: " + Self.list(strings(locations["includeLocations"]).map(location),
                                                   strings(locations["excludeLocations"]).map(location)))
        }
        let clients = strings(conditions?["clientAppTypes"])
        if !clients.isEmpty, clients != ["all"] { parts.append("Client apps: " + clients.map { h($0) }.joined(separator: ", ")) }
        for (key, label) in [("userRiskLevels", "User risk"), ("signInRiskLevels", "Sign-in risk"),
                             ("servicePrincipalRiskLevels", "Service principal risk")] {
            let levels = strings(conditions?[key])
            if !levels.isEmpty { parts.append("\(label): " + levels.map { h($0) }.joined(separator: ", ")) }
        }
        if let insider = conditions?["insiderRiskLevels"]?.stringValue { parts.append("Insider risk: " + h(insider)) }
        if let filter = conditions?["devices"]?["deviceFilter"], filter != .null {
            parts.append("Devices \(h(filter["mode"]?.stringValue)) <code>\(h(filter["rule"]?.stringValue))</code>")
        }
        if let flows = conditions?["authenticationFlows"]?["transferMethods"]?.stringValue { parts.append("Flows: " + h(flows)) }
        return parts.isEmpty ? "<span class=\"muted\">Any</span>" : parts.joined(separator: "<br>")
    }

    /// The grant controls, joined by their operator ("Block access" for a block).
    var grant: String {
        guard let grant = policy["grantControls"], grant != .null else { return "<span class=\"muted\">None</span>" }
        var controls = strings(grant["builtInControls"])
        if controls.contains("block") { return "<strong>Block access</strong>" }
        controls = controls.map { Self.controlNames[$0] ?? $0 }
        if let strength = grant["authenticationStrength"], strength != .null {
            controls.append("authentication strength “\(strength["displayName"]?.stringValue ?? strength["id"]?.stringValue ?? "")”")
        }
        controls += strings(grant["termsOfUse"]).map { "terms of use \($0)" }
        controls += strings(grant["customAuthenticationFactors"]).map { "custom control \($0)" }
        let joiner = grant["operator"]?.stringValue == "AND" ? " and " : " or "
        return controls.isEmpty ? "<span class=\"muted\">None</span>" : "Require " + controls.map { h($0) }.joined(separator: joiner)
    }

    /// The session controls that are set.
    var session: String {
        guard let session = policy["sessionControls"], session != .null else { return "<span class=\"muted\">None</span>" }
        var parts: [String] = []
        if let frequency = session["signInFrequency"], frequency != .null, frequency["isEnabled"]?.boolValue != false {
            if frequency["frequencyInterval"]?.stringValue == "everyTime" {
                parts.append("sign-in frequency: every time")
            } else {
                parts.append("sign-in frequency: \(frequency["value"]?.intValue.map(String.init) ?? "?") \(frequency["type"]?.stringValue ?? "")")
            }
        }
        if let browser = session["persistentBrowser"], browser != .null, browser["isEnabled"]?.boolValue != false {
            parts.append("persistent browser: \(browser["mode"]?.stringValue ?? "?")")
        }
        if session["applicationEnforcedRestrictions"]?["isEnabled"]?.boolValue == true { parts.append("app enforced restrictions") }
        if session["cloudAppSecurity"]?["isEnabled"]?.boolValue == true { parts.append("conditional access app control") }
        if session["disableResilienceDefaults"]?.boolValue == true { parts.append("resilience defaults off") }
        return parts.isEmpty ? "<span class=\"muted\">None</span>" : parts.map { h($0) }.joined(separator: "<br>")
    }

    /// Graph's built-in grant control names, in words.
    static let controlNames = [
        "mfa": "multifactor authentication", "compliantDevice": "a compliant device", "domainJoinedDevice": "a hybrid joined device",
        "approvedApplication": "an approved client app", "compliantApplication": "an app protection policy",
        "passwordChange": "a password change",
    ]

    // MARK: Pieces

    private func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }

    private func object(_ id: String) -> String {
        guard let name = names.objects[id.lowercased()] else { return "<span class=\"mono\">\(h(id))</span>" }
        return h(name)
    }

    private func user(_ id: String) -> String {
        switch id {
        case "All": "all users"
        case "None": "nobody"
        case "GuestsOrExternalUsers": "guests and external users"
        default: object(id)
        }
    }

    private func role(_ id: String) -> String {
        "role " + h(BuiltInRoles.byTemplateId(id)?.displayName ?? id)
    }

    private func application(_ id: String) -> String {
        switch id {
        case "All": return "all resources"
        case "None": return "none"
        case "Office365": return "Office 365"
        case "MicrosoftAdminPortals": return "Microsoft admin portals"
        default:
            guard let name = names.applications[id.lowercased()] else { return "<span class=\"mono\">\(h(id))</span>" }
            return h(name)
        }
    }

    private func location(_ id: String) -> String {
        switch id {
        case "All": return "any location"
        case "AllTrusted": return "all trusted locations"
        default:
            guard let name = names.locations[id.lowercased()] else { return "<span class=\"mono\">\(h(id))</span>" }
            return h(name)
        }
    }

    /// Included items, then what is excluded.
    private static func list(_ include: [String], _ exclude: [String]) -> String {
        var out = include.isEmpty ? "<span class=\"muted\">nothing</span>" : include.joined(separator: ", ")
        if !exclude.isEmpty { out += "<br><span class=\"muted\">except</span> " + exclude.joined(separator: ", ") }
        return out
    }
}

extension PolicyDescription.Names {
    /// The names of everything `policies` refer to, found through Graph as the signed-in administrator (what cannot
    /// be read stays an id).
    static func lookUp(_ policies: [JSONValue], admin: AdminRequest) async -> Self {
        var names = Self()
        var objects = Set<String>(), applications = Set<String>()
        let keywords: Set = ["All", "None", "GuestsOrExternalUsers", "Office365", "MicrosoftAdminPortals", "ServicePrincipalsInMyTenant"]
        func ids(_ value: JSONValue?) -> [String] {
            (value?.arrayValue?.compactMap(\.stringValue) ?? []).filter { !keywords.contains($0) && Identifier.isGUID($0) }
        }
        for policy in policies {
            let c = policy["conditions"]
            for key in ["includeUsers", "excludeUsers", "includeGroups", "excludeGroups"] { objects.formUnion(ids(c?["users"]?[key])) }
            for key in ["includeServicePrincipals", "excludeServicePrincipals"] { objects.formUnion(ids(c?["clientApplications"]?[key])) }
            for key in ["includeApplications", "excludeApplications"] { applications.formUnion(ids(c?["applications"]?[key])) }
        }
        if !objects.isEmpty, case .success(let found) = await admin.graph("POST", "directoryObjects/getByIds",
                                                                          body: ["ids": .strings(Array(objects.prefix(1000)))]) {
            for object in found["value"]?.arrayValue ?? [] {
                guard let id = object["id"]?.stringValue else { continue }
                names.objects[id.lowercased()] = object["displayName"]?.stringValue ?? object["userPrincipalName"]?.stringValue
            }
        }
        if !applications.isEmpty {
            let list = applications.prefix(100).map(AdminRequest.literal).joined(separator: ",")
            if case .success(let found) = await admin.graph("GET", "servicePrincipals", query: [
                ("$filter", "appId in (\(list))"), ("$select", "appId,displayName"), ("$top", "100")]) {
                for sp in found["value"]?.arrayValue ?? [] {
                    guard let appID = sp["appId"]?.stringValue else { continue }
                    names.applications[appID.lowercased()] = sp["displayName"]?.stringValue
                }
            }
        }
        if case .success(let found) = await admin.graph("GET", "identity/conditionalAccess/namedLocations", query: [("$top", "999")]) {
            for location in found["value"]?.arrayValue ?? [] {
                guard let id = location["id"]?.stringValue else { continue }
                names.locations[id.lowercased()] = location["displayName"]?.stringValue
            }
        }
        return names
    }
}
