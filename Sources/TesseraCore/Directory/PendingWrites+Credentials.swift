/// Credential records are not directory objects: no write of a batch (create, update, link, delete, revert, reinstate)
/// reads or writes one, so a batch's pending write refuses them rather than letting one bypass the held writes.
extension PendingWrites {
    private static func credentialsOutsideBatch() -> DirectoryError {
        DirectoryError(.internalError, "Sessions, refresh tokens and device codes are not directory writes and cannot be part of a batch.")
    }

    func credentialRow(tenant: String, kind: CredentialKind, id: String) async throws -> CredentialRow? { throw Self.credentialsOutsideBatch() }
    func credentialRow(tenant: String, kind: CredentialKind, handle: String) async throws -> CredentialRow? {
        throw Self.credentialsOutsideBatch()
    }
    func credentialRows(tenant: String, kind: CredentialKind, userID: String) async throws -> [CredentialRow] {
        throw Self.credentialsOutsideBatch()
    }
    func credentialRows(tenant: String, kind: CredentialKind, family: String) async throws -> [CredentialRow] {
        throw Self.credentialsOutsideBatch()
    }
    func insertCredential(_ row: CredentialRow) async throws { throw Self.credentialsOutsideBatch() }
    func replaceCredential(_ row: CredentialRow, expectedState: String) async throws -> Bool { throw Self.credentialsOutsideBatch() }
    func deleteCredential(tenant: String, kind: CredentialKind, id: String) async throws -> Bool { throw Self.credentialsOutsideBatch() }
    func deleteCredentials(tenant: String, userID: String, kinds: [CredentialKind]?) async throws -> Int {
        throw Self.credentialsOutsideBatch()
    }
    func deleteCredentials(tenant: String, kind: CredentialKind, family: String) async throws -> Int { throw Self.credentialsOutsideBatch() }
    func deleteExpiredCredentials(tenant: String, before cutoff: String, limit: Int) async throws -> Int {
        throw Self.credentialsOutsideBatch()
    }
}
