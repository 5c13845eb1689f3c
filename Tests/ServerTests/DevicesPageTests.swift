import Foundation
import Testing
import TesseraCore
import TesseraTesting

@testable import Server

/// The admin center's Devices page: a device registered through Kerberos is listed as hybrid joined, the join-type
/// filter narrows the list, and the Kerberos set-up shows its versions and never its keys.
@Suite struct DevicesPageTests {
    @Test func listsTheHybridJoinedDeviceAndTheKerberosSetUpWithoutItsKeys() async throws {
        try await DeviceRegistrationTests.run { harness, fixture in
            let registered = try await DeviceRegistrationTests.register(
                harness, authorization: "Negotiate \(try fixture.token("ws01-spnego.b64"))", csr: try DeviceRegistrationTests.csr())
            #expect(registered.status == 200, "\(registered.text)")
            let deviceID = try #require(registered.json["DeviceId"]?.stringValue)
            let admin = try await AdminCenterTests.Browser.signIn(harness, userID: harness.tenant.adminUserId)

            let page = await admin.get("/devices")
            #expect(page.status == 200, "\(page.text)")
            #expect(page.text.contains(deviceID) && page.text.contains("Microsoft Entra hybrid joined") && page.text.contains("WS01"))
            #expect(page.text.contains("adrs/\(fixture.host)") && page.text.contains(fixture.realm))
            let domain = try #require(try await KerberosDomain.load(tenant: harness.tenant.tenantId, store: harness.app.store, sealing: harness.app.keySealing))
            for key in domain.keys {
                #expect(!page.text.contains(Data(key.aes256).base64EncodedString()), "no key material on the page")
            }
            let joined = await admin.get("/devices", [("trustType", "AzureAd")])
            #expect(joined.status == 200 && !joined.text.contains(deviceID) && joined.text.contains("No devices."))
            #expect(await admin.get("/devices", [("trustType", "ServerAd")]).text.contains(deviceID))
        }
    }
}
