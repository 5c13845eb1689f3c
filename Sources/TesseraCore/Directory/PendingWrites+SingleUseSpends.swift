/// A sign-in step's spend is not a directory write: a batch's pending write refuses it, as it refuses `consumeOnce`.
extension PendingWrites {
    func spend(tenant: String, key: String, expiresAt: String, now: String, inserting rows: [CredentialRow],
               if condition: SpendCondition?) async throws -> SpendOutcome {
        throw DirectoryError(.internalError, "Spending a single-use key is not a directory write and cannot be part of a batch.")
    }
}
