import Foundation
import Kerberos
import LDAP
import Sync
import TesseraCore

/// The domain computer a validated ticket proves, with what AD says of it when the tenant's connector reaches AD:
/// its SID (from the PAC), its account name, and from the directory its objectGUID (the device id sync gives it), its
/// DNS name and operating system. It travels inside the exchanged token as claims.
struct ComputerIdentity: Sendable, Equatable {
    /// The computer's SID, `S-1-5-21-…` (the device's `onPremisesSecurityIdentifier`).
    var sid: String
    /// `WS01$` and its realm.
    var accountName: String
    var realm: String
    /// The computer's objectGUID as a device id, when AD was asked.
    var deviceID: String?
    var dnsHostName: String?
    var operatingSystem: String?
    var operatingSystemVersion: String?

    /// `WS01`: the account name without its `$`.
    var computerName: String { accountName.hasSuffix("$") ? String(accountName.dropLast()) : accountName }

    /// SAM's USER_ACCOUNT_DISABLED in the PAC's UserAccountControl (MS-SAMR 2.2.1.12), and LDAP's ACCOUNTDISABLE.
    static let samAccountDisabled: UInt32 = 0x0000_0001
    static let ldapAccountDisable = 0x2

    /// What the ticket proves: a computer account (its name ends in `$`) that is not disabled, in the PAC and, when
    /// the tenant's connector reaches AD, in the directory now (a ticket outlives a disabling by hours).
    static func establish(_ accepted: AcceptedRequest, domain: KerberosDomain, tenant: String,
                          store: any DirectoryStore) async throws -> ComputerIdentity {
        let name = accepted.client.description
        guard name.hasSuffix("$"), accepted.client.components.count == 1 else {
            throw DeviceRegistrationError.missingOnPremisesIdentity(
                "the ticket's client \(name)@\(accepted.clientRealm) is not a computer account, so it names no on-premises device")
        }
        guard accepted.pac.logonInfo.userAccountControl & samAccountDisabled == 0 else {
            throw DeviceRegistrationError.accountDisabled(name)
        }
        let sid = accepted.pac.logonInfo.userSid
        var computer = ComputerIdentity(sid: sid.description, accountName: name, realm: accepted.clientRealm)
        if let connectorName = domain.connector,
           let connector = try await SyncSettings.load(tenant: tenant, store: store).connectors.first(where: { $0.name == connectorName }),
           connector.ldifFile == nil {
            try await computer.readDirectory(connector, domainDN: domain.domainDN, sid: sid)
        }
        return computer
    }

    /// Reads the computer from AD by its SID: refused if it is gone or disabled there.
    mutating func readDirectory(_ connector: SyncConnector, domainDN: String, sid: SecurityIdentifier) async throws {
        let filter = "(&(objectClass=computer)(objectSid=\(LDAPFilter.escape(sid.bytes))))"
        let attributes = ["objectGUID", "userAccountControl", "dNSHostName", "operatingSystem", "operatingSystemVersion"]
        let entry: LDAPEntry?
        do {
            entry = try await connector.connect().closing { ldap in
                try await ldap.search(base: domainDN, filter: filter, attributes: attributes).entries.first
            }
        } catch let error as LDAPError {
            throw DeviceRegistrationError(
                code: "SEC_E_NO_AUTHENTICATING_AUTHORITY",
                message: "SEC_E_NO_AUTHENTICATING_AUTHORITY (0x80090311): the domain controller could not be asked about "
                    + "\(accountName) (\(error.description))", status: 503)
        }
        guard let entry else {
            throw DeviceRegistrationError.missingOnPremisesIdentity("no computer with the SID \(sid) exists in \(domainDN)")
        }
        if let control = entry.string("userAccountControl").flatMap(Int.init), control & Self.ldapAccountDisable != 0 {
            throw DeviceRegistrationError.accountDisabled(accountName)
        }
        deviceID = entry.values("objectGUID").first.flatMap(SyncCycle.deviceID(objectGUID:))
        dnsHostName = entry.string("dNSHostName")
        operatingSystem = entry.string("operatingSystem")
        operatingSystemVersion = entry.string("operatingSystemVersion")
    }

    var claims: [String: JSONValue] {
        ["onprem_sid": .string(sid), "onprem_sam": .string(accountName), "realm": .string(realm),
         "deviceid": .optional(deviceID), "dns_host_name": .optional(dnsHostName), "os": .optional(operatingSystem),
         "os_version": .optional(operatingSystemVersion)]
    }

    init(sid: String, accountName: String, realm: String) {
        self.sid = sid
        self.accountName = accountName
        self.realm = realm
    }

    /// From the exchanged token's claims; nil without the SID.
    init?(claims: [String: JSONValue]) {
        guard let sid = claims["onprem_sid"]?.stringValue, !sid.isEmpty, let name = claims["onprem_sam"]?.stringValue,
              let realm = claims["realm"]?.stringValue
        else { return nil }
        self.init(sid: sid, accountName: name, realm: realm)
        deviceID = claims["deviceid"]?.stringValue
        dnsHostName = claims["dns_host_name"]?.stringValue
        operatingSystem = claims["os"]?.stringValue
        operatingSystemVersion = claims["os_version"]?.stringValue
    }
}
