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
        let domain = asciiDomain(of: upn) ?? domainByCharacters(of: upn)
        guard !domain.isEmpty else {
            throw DirectoryError.badRequest("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
        }
        return CreateRequirement(id: domain.lowercased(), kind: .domain, notFalse: "isVerified", error: .badRequest(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."))
    }

    /// The UPN's domain when its form is valid, "" when it is not, read by characters (letters and numbers as Unicode
    /// has them, the length in characters).
    static func domainByCharacters(of upn: String) -> Substring {
        let parts = upn.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, upn.count <= 113,
              !parts[0].hasPrefix("."), !parts[0].hasSuffix("."),
              parts[0].allSatisfy({ $0.isLetter || $0.isNumber || "'.-_!#^~+&".contains($0) })
        else { return "" }
        return parts[1]
    }

    /// `domainByCharacters` for a UPN of ASCII bytes without a carriage return, read by bytes: there each byte is a
    /// character and the letters and numbers are `A`–`Z`, `a`–`z` and `0`–`9`, so the answer is the same without
    /// Unicode's property tables (which were 3% of a bulk sync's CPU, read twice a user). Nil for any other UPN.
    static func asciiDomain(of upn: String) -> Substring? {
        var text = upn
        let at: Int? = text.withUTF8 { bytes in
            var at: Int?
            for (index, byte) in bytes.enumerated() {
                guard byte < 0x80, byte != 0x0D else { return nil }
                if byte == UInt8(ascii: "@") {
                    guard at == nil else { return -1 }  // two: invalid whatever the other bytes are
                    at = index
                }
            }
            guard let at, at > 0, at < bytes.count - 1, bytes.count <= 113,
                  bytes[0] != UInt8(ascii: "."), bytes[at - 1] != UInt8(ascii: ".")
            else { return -1 }
            for byte in bytes[0..<at] {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): continue
                case UInt8(ascii: "'"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "!"), UInt8(ascii: "#"),
                     UInt8(ascii: "^"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "&"): continue
                default: return -1
                }
            }
            return at
        }
        guard let at else { return nil }
        guard at >= 0 else { return "" }
        return upn[upn.utf8.index(upn.utf8.startIndex, offsetBy: at + 1)...]
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
