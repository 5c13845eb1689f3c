import Foundation
import Logging
import TesseraCore

/// The passkey (FIDO2) policy: its state, the passkey profiles, who gets which profile (include and exclude
/// targets), and a check of which profiles one user gets. Changes go through the same rules as Graph's PATCH
/// (`Fido2Configuration.validate`), with the same permission.
struct PasskeyPolicyPage {
    let admin: AdminRequest
    var tenant: String { admin.tenant.id }

    func render(failure: String?) async throws -> APIResponse {
        do {
            try admin.caller.require(anyOf: PolicyHandler.readPermissions)
        } catch {
            return admin.page(title: "Passkey policy", section: "passkeys", status: 403, failure: error.message, content: "<h1>Passkey policy</h1>")
        }
        let (configuration, modified) = try await admin.app.directory.fido2Configuration(tenant: tenant)
        let groupNames = try await names(of: configuration)
        let profileName = { (id: String) in configuration.profile(id)?.name ?? id }
        var content = """
        <h1>Passkey (FIDO2) policy</h1>
        <p class="muted">Last changed \(h(modified ?? "never (tenant default)")).</p>
        \(admin.form("/passkeys/settings", """
            <label>State <select name="state">\(option("enabled", configuration.state == .enabled))\(option("disabled", configuration.state == .disabled))</select></label>
            <label><input type="checkbox" name="isSelfServiceRegistrationAllowed" value="true"\(configuration.isSelfServiceRegistrationAllowed ? " checked" : "")> Users may register their own passkeys</label>
            """, button: "Save"))
        <h2>Who gets which profile</h2>
        <p class="muted">Users in several targets may use a passkey that satisfies any one of their profiles. Exclusions win over inclusions.</p>
        <table><thead><tr><th>Included</th><th>Passkey profiles</th><th></th></tr></thead><tbody>
        """
        for (index, target) in configuration.includeTargets.enumerated() {
            let profiles = target.allowedPasskeyProfiles.isEmpty ? [configuration.defaultPasskeyProfile].compactMap { $0 } : target.allowedPasskeyProfiles
            content += "<tr><td>\(targetLabel(target.id, target.targetType, groupNames))</td><td>"
                + profiles.map { "<span class=\"pill\">\(h(profileName($0)))</span>" }.joined()
                + "</td><td>\(admin.form("/passkeys/include/\(index)/remove", "", button: "Remove", confirm: true))</td></tr>"
        }
        if configuration.includeTargets.isEmpty { content += "<tr><td colspan=\"3\" class=\"muted\">Nobody: passkeys are not enabled for any user.</td></tr>" }
        content += "</tbody></table>"
        if !configuration.excludeTargets.isEmpty {
            content += "<table><thead><tr><th>Excluded</th><th></th></tr></thead><tbody>"
            for (index, target) in configuration.excludeTargets.enumerated() {
                content += "<tr><td>\(targetLabel(target.id, target.targetType, groupNames))</td>"
                    + "<td>\(admin.form("/passkeys/exclude/\(index)/remove", "", button: "Remove", confirm: true))</td></tr>"
            }
            content += "</tbody></table>"
        }
        let profileBoxes = configuration.passkeyProfiles.map {
            "<label><input type=\"checkbox\" name=\"profile\" value=\"\(h($0.id))\"> \(h($0.name))</label>"
        }.joined()
        content += admin.form("/passkeys/include", """
            <label>Include <input name="target" required placeholder="all users, or a group's name or id"></label>\(profileBoxes)
            """, button: "Add")
        content += " " + admin.form("/passkeys/exclude", "<label>Exclude <input name=\"target\" required placeholder=\"a group's name or id\"></label>", button: "Exclude")

        content += "<h2>Check a user</h2>" + (try await check())
        content += """
        <form method="get" action="\(h(admin.base))/passkeys"><label>User principal name <input name="check" value="\(h(admin.request.parameter("check")))"></label><button type="submit">Check</button></form>
        """

        content += "<h2>Passkey profiles</h2><p class=\"muted\">At most \(Fido2Configuration.maxProfiles), the default included. Synced passkeys cannot be allowed where attestation is enforced.</p>"
        for profile in configuration.passkeyProfiles {
            let isDefault = profile.id == configuration.defaultPasskeyProfile
            content += "<section class=\"profile\" id=\"profile-\(h(profile.id))\"><h3>\(h(profile.name))\(isDefault ? " <span class=\"pill\">Default</span>" : "")</h3>"
                + admin.form("/passkeys/profiles/\(profile.id)", profileFields(profile), button: "Save profile", style: "block")
            if !isDefault { content += admin.form("/passkeys/profiles/\(profile.id)/delete", "", button: "Delete profile", confirm: true) }
            content += "</section>"
        }
        if configuration.passkeyProfiles.count < Fido2Configuration.maxProfiles {
            content += "<h3>New profile</h3>" + admin.form("/passkeys/profiles/new", profileFields(nil), button: "Add profile", style: "block")
        }
        return admin.page(title: "Passkey policy", section: "passkeys", failure: failure, content: content)
    }

    func option(_ value: String, _ selected: Bool, label: String? = nil) -> String {
        "<option value=\"\(h(value))\"\(selected ? " selected" : "")>\(h(label ?? value))</option>"
    }

    func profileFields(_ profile: PasskeyProfile?) -> String {
        let p = profile ?? PasskeyProfile(id: "", name: "")
        let r = p.keyRestrictions
        return """
        <label>Name <input name="name" required value="\(h(p.name))"></label>
        <fieldset><legend>Passkey types</legend>
        <label><input type="checkbox" name="passkeyType" value="deviceBound"\(p.passkeyTypes.contains(.deviceBound) ? " checked" : "")> Device-bound</label>
        <label><input type="checkbox" name="passkeyType" value="synced"\(p.passkeyTypes.contains(.synced) ? " checked" : "")> Synced</label></fieldset>
        <label>Attestation <select name="attestationEnforcement">\(option("disabled", p.attestationEnforcement == .disabled, label: "Not enforced"))\
        \(option("registrationOnly", p.attestationEnforcement == .registrationOnly, label: "Enforced at registration"))</select></label>
        <label><input type="checkbox" name="keyRestrictionsEnforced" value="true"\(r.isEnforced ? " checked" : "")> Enforce key restrictions</label>
        <label>Restriction <select name="enforcementType">\(option("allow", r.enforcementType == .allow, label: "Allow only these AAGUIDs"))\
        \(option("block", r.enforcementType == .block, label: "Block these AAGUIDs"))</select></label>
        <label>AAGUIDs, one a line <textarea name="aaGuids">\(h(r.aaGuids.joined(separator: "\n")))</textarea></label>
        """
    }

    /// The result of `?check=upn`: the profiles that user gets, or why none.
    func check() async throws -> String {
        guard let upn = admin.request.parameter("check")?.trimmingCharacters(in: .whitespaces), !upn.isEmpty else { return "" }
        guard case .success(let found) = await admin.graph("GET", "users/\(upn)", query: [("$select", "id,displayName")]),
              let userID = found["id"]?.stringValue else { return "<p class=\"banner error\">No user '\(h(upn))' was found.</p>" }
        let (configuration, _) = try await admin.app.directory.fido2Configuration(tenant: tenant)
        let directory = admin.app.directory, tenant = self.tenant
        let groups = try await admin.app.store.read { tx in try await directory.transitiveGroups(tenant: tenant, of: userID, tx: tx) }
        let subject = Fido2Configuration.Subject(userID: userID, groupIDs: Set(groups))
        let who = h(found["displayName"]?.stringValue ?? upn)
        if configuration.state == .disabled { return "<p class=\"banner error\" id=\"check-result\">\(who): passkeys are disabled for the tenant.</p>" }
        switch configuration.profiles(for: subject) {
        case .success(let profiles):
            return "<p class=\"banner ok\" id=\"check-result\">\(who) may use a passkey allowed by: "
                + profiles.map { "<span class=\"pill\">\(h($0.name))</span>" }.joined() + "</p>"
        case .failure(let reason):
            return "<p class=\"banner error\" id=\"check-result\">\(who): \(h(reason.message))</p>"
        }
    }

    /// Display names of the groups the targets name.
    func names(of configuration: Fido2Configuration) async throws -> [String: String] {
        let ids = (configuration.includeTargets.map(\.id) + configuration.excludeTargets.map(\.id)).filter { $0 != Fido2Configuration.allUsers }
        guard !ids.isEmpty else { return [:] }
        let tenant = self.tenant
        let objects = try await admin.app.store.read { tx in try await tx.objects(tenant: tenant, ids: ids.map { $0.lowercased() }) }
        return Dictionary(objects.map { ($0.id, $0.body["displayName"]?.stringValue ?? $0.id) }, uniquingKeysWith: { a, _ in a })
    }

    func targetLabel(_ id: String, _ type: Fido2Configuration.TargetType, _ names: [String: String]) -> String {
        if id == Fido2Configuration.allUsers { return "<strong>All users</strong>" }
        let section = type == .user ? "users" : "groups"
        return "<a href=\"\(h(admin.base))/\(section)/\(h(id))\">\(h(names[id.lowercased()] ?? id))</a> <span class=\"muted\">\(type.rawValue)</span>"
    }

    // MARK: Changes

    func act(_ action: [String]) async -> AdminRequest.Outcome {
        do {
            try admin.caller.require(anyOf: PolicyHandler.writePermissions)
            var next = try await admin.app.directory.fido2Configuration(tenant: tenant).configuration
            let form = admin.form
            switch action {
            case ["settings"]:
                guard let state = form["state"].flatMap(Fido2Configuration.State.init) else { return .failed("Choose enabled or disabled.") }
                next.state = state
                next.isSelfServiceRegistrationAllowed = form["isSelfServiceRegistrationAllowed"] == "true"
            case ["profiles", "new"]:
                next.passkeyProfiles.append(try profile(id: Identifier.make()))
            case let a where a.count == 2 && a[0] == "profiles":
                guard let index = next.passkeyProfiles.firstIndex(where: { $0.id == a[1] }) else { return .failed("No such profile.") }
                next.passkeyProfiles[index] = try profile(id: a[1])
            case let a where a.count == 3 && a[0] == "profiles" && a[2] == "delete":
                next.passkeyProfiles.removeAll { $0.id == a[1] }
            case ["include"]:
                let target = try await resolveTarget(form["target"] ?? "")
                let profiles = admin.formValues("profile")
                if let index = next.includeTargets.firstIndex(where: { $0.id == target.id }) {
                    next.includeTargets[index].allowedPasskeyProfiles = profiles
                } else {
                    next.includeTargets.append(.init(id: target.id, targetType: target.type, allowedPasskeyProfiles: profiles))
                }
            case ["exclude"]:
                let target = try await resolveTarget(form["target"] ?? "")
                guard target.id != Fido2Configuration.allUsers else { return .failed("Exclude groups; to turn passkeys off, set the state to disabled.") }
                if !next.excludeTargets.contains(where: { $0.id == target.id }) {
                    next.excludeTargets.append(.init(id: target.id, targetType: target.type))
                }
            case let a where a.count == 3 && a[0] == "include" && a[2] == "remove":
                guard let index = Int(a[1]), next.includeTargets.indices.contains(index) else { return .failed("No such target.") }
                next.includeTargets.remove(at: index)
            case let a where a.count == 3 && a[0] == "exclude" && a[2] == "remove":
                guard let index = Int(a[1]), next.excludeTargets.indices.contains(index) else { return .failed("No such target.") }
                next.excludeTargets.remove(at: index)
            default:
                return .failed("Unknown action.")
            }
            try await admin.app.directory.replaceFido2Configuration(tenant: tenant, with: next, actor: admin.caller.actor)
            return .done("saved")
        } catch let error as DirectoryError {
            return .failed(error.message)
        } catch {
            admin.app.logger.error("Passkey policy change failed: \(String(describing: error))")
            return .failed("An unexpected error occurred.")
        }
    }

    /// A profile from the posted fields.
    func profile(id: String) throws(DirectoryError) -> PasskeyProfile {
        let form = admin.form
        let name = form["name"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard !name.isEmpty else { throw DirectoryError.badRequest("A passkey profile needs a name.") }
        let types = Set(admin.formValues("passkeyType").compactMap(PasskeyKind.init))
        guard !types.isEmpty else { throw DirectoryError.badRequest("Allow at least one passkey type.") }
        guard let attestation = form["attestationEnforcement"].flatMap(PasskeyProfile.AttestationEnforcement.init),
              let enforcement = form["enforcementType"].flatMap(Fido2Configuration.KeyRestrictions.EnforcementType.init)
        else { throw DirectoryError.badRequest("Choose the attestation and restriction settings.") }
        let aaguids = (form["aaGuids"] ?? "").split(whereSeparator: { $0.isWhitespace || $0 == "," }).map { $0.lowercased() }
        for aaguid in aaguids where !Identifier.isGUID(aaguid) {
            throw DirectoryError.badRequest("'\(aaguid)' is not an AAGUID (a GUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8).")
        }
        return PasskeyProfile(id: id, name: name, passkeyTypes: types, attestationEnforcement: attestation,
                              keyRestrictions: .init(isEnforced: form["keyRestrictionsEnforced"] == "true", enforcementType: enforcement, aaGuids: aaguids))
    }

    /// "all users", a group id, or a group's exact display name.
    func resolveTarget(_ text: String) async throws -> (id: String, type: Fido2Configuration.TargetType) {
        let wanted = text.trimmingCharacters(in: .whitespaces)
        if wanted.lowercased() == "all users" || wanted == Fido2Configuration.allUsers { return (Fido2Configuration.allUsers, .group) }
        if Identifier.isGUID(wanted), case .success(let group) = await admin.graph("GET", "groups/\(wanted)", query: [("$select", "id")]),
           let id = group["id"]?.stringValue { return (id, .group) }
        if case .success(let page) = await admin.graph("GET", "groups", query: [("$filter", "displayName eq \(AdminRequest.literal(wanted))"), ("$select", "id")]) {
            let found = page["value"]?.arrayValue ?? []
            if found.count == 1, let id = found[0]["id"]?.stringValue { return (id, .group) }
            if found.count > 1 { throw DirectoryError.badRequest("Several groups are named '\(wanted)'; give the group's object id.") }
        }
        throw DirectoryError.badRequest("No group '\(wanted)' was found.")
    }
}
