import TesseraCore

/// One interactive sign-in attempt on Tessera's pages, as Graph's `signIn` record.
struct SignInLog {
    let app: TesseraApp
    let tenant: String

    /// Records the attempt: who (when known), from where, with which method, and why it failed if it did.
    func record(user: StoredObject?, ipAddress: String?, failure: PasskeySignIn.Failure?, method: String, detail: String?,
                succeeded success: String, extra: [String: JSONValue] = [:]) async throws {
        var entry: [String: JSONValue] = [
            "userId": .optional(user?.id), "userPrincipalName": .optional(user?.body["userPrincipalName"]?.stringValue),
            "userDisplayName": .optional(user?.body["displayName"]?.stringValue),
            "appDisplayName": "Tessera sign-in", "clientAppUsed": "Browser", "ipAddress": .optional(ipAddress), "isInteractive": true,
            "status": ["errorCode": .int(failure == nil ? 0 : 50_000), "failureReason": .optional(failure?.reason),
                       "additionalDetails": .optional(failure?.message)],
            "authenticationDetails": [[
                "authenticationMethod": .string(method), "authenticationMethodDetail": .optional(detail),
                "succeeded": .bool(failure == nil), "authenticationStepResultDetail": .string(failure?.reason ?? success),
            ]],
        ]
        entry.merge(extra) { _, new in new }
        app.telemetry.signIn(method: method, succeeded: failure == nil)
        try await app.directory.recordSignIn(tenant: tenant, entry: entry)
    }
}
