public import LDAP

extension SyncConnector {
    /// A connection to the connector's directory, bound as its account (the password read from its file now), for
    /// work beside sync that goes through the same connection: hybrid join's service account and SCP.
    public func connect() async throws -> LDAPConnection {
        guard ldifFile == nil else { throw LDAPError("connector \(name) reads an LDIF file, not a directory") }
        return try await SyncCycle.connect(self)
    }
}

extension SyncCycle {
    /// The device id sync gives a computer's device: its objectGUID in the string form Windows shows. The device
    /// registration service gives a computer it can look up the same id, so sync finds the device it registered.
    public static func deviceID(objectGUID bytes: [UInt8]) -> String? {
        bytes.count == 16 ? guidString(bytes) : nil
    }
}
