/// Entra's length limits on directory strings, from the "Maximum length" notes of Microsoft's Graph v1.0 resource
/// pages (user, group, application, servicePrincipal, device). Graph refuses a longer value with
/// `Request_BadRequest` "Invalid value specified for property '…' of resource '…'", and so does Tessera.
extension GraphSchema {
    /// The maximum length in characters of `property` on entity `entity`, when Entra documents one.
    public static func maxLength(entity: String, property: String) -> Int? { lengthLimits[entity]?[property] }

    static let lengthLimits: [String: [String: Int]] = [
        "user": [
            "displayName": 256, "givenName": 64, "surname": 64, "jobTitle": 128, "department": 64, "companyName": 64,
            "mailNickname": 64, "city": 128, "state": 128, "country": 128, "streetAddress": 1024, "postalCode": 40,
            "officeLocation": 128, "mobilePhone": 64, "employeeId": 16, "usageLocation": 2, "userPrincipalName": 113,
        ],
        "group": ["displayName": 256, "mailNickname": 64],
        "application": ["displayName": 256, "description": 1024],
        "servicePrincipal": ["displayName": 256, "description": 1024],
        "device": ["displayName": 256],
    ]

    /// The resource name Graph's messages use (`User`, `Group`, …).
    static func resourceName(_ entity: String) -> String { entity.prefix(1).uppercased() + entity.dropFirst() }
}
