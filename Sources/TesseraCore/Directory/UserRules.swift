/// Rules for users.
enum UserRules {
    /// Properties that directory sync owns on synced users (read-only in Graph while synced).
    static let syncedProperties: Set<String> = [
        "userPrincipalName", "displayName", "givenName", "surname", "mail", "proxyAddresses", "department", "jobTitle",
        "businessPhones", "mailNickname", "onPremisesImmutableId", "accountEnabled", "employeeId", "companyName",
        "onPremisesExtensionAttributes", "city", "country", "state", "streetAddress", "postalCode", "officeLocation",
    ]

    /// Checks and completes a user's body. An update reads the UPN's domain here; a create leaves it to the store, which
    /// checks it as it saves the user (`DirectoryService.insert` passes `verifiedDomain` as the create's requirement; on
    /// PostgreSQL it is part of the create's one statement).
    static func prepare(_ body: inout [String: JSONValue], tenant: String, tx: any DirectoryTransaction, isCreate: Bool) async throws {
        guard let upn = body["userPrincipalName"]?.stringValue else {
            throw DirectoryError.badRequest("Property 'userPrincipalName' is required when creating the object.")
        }
        let domain = try verifiedDomain(of: upn)
        if !isCreate { try await domain.check(tenant: tenant, in: tx) }
        if let profile = body["passwordProfile"]?.objectValue {
            if let password = profile["password"]?.stringValue {
                try checkPasswordComplexity(password)
            }
            // Tessera is passwordless: the password is checked for Graph compatibility, then discarded.
            body["passwordProfile"] = [
                "forceChangePasswordNextSignIn": profile["forceChangePasswordNextSignIn"] ?? true,
                "forceChangePasswordNextSignInWithMfa": profile["forceChangePasswordNextSignInWithMfa"] ?? false,
                "password": nil,
            ]
        }
        if isCreate {
            body["userType"] = body["userType"] ?? "Member"
            body["businessPhones"] = body["businessPhones"] ?? []
            if body["proxyAddresses"] == nil || body["proxyAddresses"] == .array([]) {
                if let mail = body["mail"]?.stringValue { body["proxyAddresses"] = [.string("SMTP:\(mail)")] } else { body["proxyAddresses"] = [] }
            }
        }
        if let immutableId = body["onPremisesImmutableId"]?.stringValue, immutableId.isEmpty {
            body["onPremisesImmutableId"] = nil
        }
    }

    /// Checks the UPN's form; what it needs of the directory is returned: its domain, one of the tenant's and verified.
    static func verifiedDomain(of upn: String) throws(DirectoryError) -> CreateRequirement {
        let parts = upn.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, upn.count <= 113,
              !parts[0].hasPrefix("."), !parts[0].hasSuffix("."),
              parts[0].allSatisfy({ $0.isLetter || $0.isNumber || "'.-_!#^~+&".contains($0) })
        else {
            throw DirectoryError.badRequest("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
        }
        return CreateRequirement(id: String(parts[1]).lowercased(), kind: .domain, notFalse: "isVerified", error: .badRequest(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."))
    }

    /// Entra's rule: 8 to 256 characters, at least three of lower, upper, digit and symbol.
    static func checkPasswordComplexity(_ password: String) throws(DirectoryError) {
        let classes = [
            password.contains(where: { $0.isLowercase }),
            password.contains(where: { $0.isUppercase }),
            password.contains(where: { $0.isNumber }),
            password.contains(where: { !$0.isLetter && !$0.isNumber }),
        ].filter { $0 }.count
        guard (8...256).contains(password.count), classes >= 3 else {
            throw DirectoryError.badRequest(
                "The specified password does not comply with password complexity requirements. Please provide a different password.")
        }
    }
}

/// Rules for groups.
enum GroupRules {
    static func prepare(_ body: inout [String: JSONValue]) {
        body["groupTypes"] = body["groupTypes"] ?? []
        // Entra sets a cloud group's addresses itself; a synced group brings its own from on-premises.
        if body["onPremisesSyncEnabled"] != .bool(true) { body["proxyAddresses"] = [] }
        body["visibility"] = body["visibility"] ?? nil
        body["isAssignableToRole"] = body["isAssignableToRole"] ?? false
    }
}
