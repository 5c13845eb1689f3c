/// Compiling grant and session controls.
extension CompiledPolicy {
    mutating func compileGrant(_ value: JSONValue?, strengths: [String: AuthenticationStrength]) {
        guard let value, value.objectValue != nil else { return }
        var result = Grant()
        switch value["operator"]?.stringValue?.uppercased() {
        case "OR": result.anyOf = true
        case "AND", nil: result.anyOf = false
        case let other?: invalid = invalid ?? "its grant operator '\(other)' is not AND or OR"
        }
        for name in value["builtInControls"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            result.names.append(name)
            switch name {
            case "block": result.block = true
            case "mfa": result.controls.append(.authenticationStrength(.multifactor))
            case "compliantDevice": result.controls.append(.compliantDevice)
            case "domainJoinedDevice": result.controls.append(.hybridJoinedDevice)
            default: result.controls.append(.unsupported(name))
            }
        }
        if let strength = value["authenticationStrength"], strength != .null {
            result.names.append("authenticationStrength")
            let id = strength["id"]?.stringValue?.lowercased() ?? ""
            if let known = strengths[id] ?? AuthenticationStrength.builtIns[id] {
                result.controls.append(.authenticationStrength(known))
            } else {
                result.controls.append(.unsupported("authenticationStrength \(id)"))
            }
        }
        for (key, label) in [("termsOfUse", "termsOfUse"), ("customAuthenticationFactors", "customAuthenticationFactors")]
        where !(value[key]?.arrayValue ?? []).isEmpty {
            result.names.append(label)
            result.controls.append(.unsupported(label))
        }
        guard result.block || !result.controls.isEmpty else { return }
        grant = result
    }

    mutating func compileSession(_ value: JSONValue?) {
        guard let value, value.objectValue != nil else { return }
        if let frequency = value["signInFrequency"], frequency != .null, frequency["isEnabled"]?.boolValue ?? true {
            if frequency["frequencyInterval"]?.stringValue == "everyTime" {
                signInFrequency = SignInFrequency(seconds: nil)
            } else if let amount = frequency["value"]?.intValue, amount > 0,
                      let unit = ["hours": 3600.0, "days": 86400.0][frequency["type"]?.stringValue ?? ""] {
                signInFrequency = SignInFrequency(seconds: Double(amount) * unit)
            } else {
                invalid = invalid ?? "its sign-in frequency names no interval (value with hours or days, or everyTime)"
            }
            sessionControlNames.append("SignInFrequency")
        }
        if let browser = value["persistentBrowser"], browser != .null, browser["isEnabled"]?.boolValue ?? true {
            guard let mode = browser["mode"]?.stringValue, mode == "always" || mode == "never" else {
                invalid = invalid ?? "its persistent browser mode is not always or never"
                return
            }
            persistentBrowser = mode
            sessionControlNames.append("PersistentBrowserSessionMode")
        }
        if let profile = value["globalSecureAccessFilteringProfile"], profile != .null, profile["isEnabled"]?.boolValue ?? true {
            guard let id = profile["profileId"]?.stringValue, !id.isEmpty else {
                invalid = invalid ?? "its Global Secure Access filtering profile names no profileId"
                return
            }
            filteringProfile = id.lowercased()
            sessionControlNames.append("GlobalSecureAccessFilteringProfile")
        }
        // Controls the application or a proxy carries out, not the issuer: they change no decision, but they are
        // the policy's controls (a policy with only these is valid) and the sign-in log names them.
        for (key, name) in [("applicationEnforcedRestrictions", "ApplicationEnforcedRestrictions"), ("cloudAppSecurity", "CloudAppSecurity"),
                            ("continuousAccessEvaluation", "ContinuousAccessEvaluation"), ("secureSignInSession", "SecureSignInSession")] {
            guard let control = value[key], control != .null else { continue }
            if key == "continuousAccessEvaluation" ? control["mode"]?.stringValue != nil : control["isEnabled"]?.boolValue ?? true {
                sessionControlNames.append(name)
            }
        }
    }
}
