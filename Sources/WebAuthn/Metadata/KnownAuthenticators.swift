/// Names for AAGUIDs that matter to policy even without a metadata BLOB.
///
/// Windows Hello's three AAGUIDs are here because Entra treats Windows Hello as a passkey provider that
/// administrators must allow explicitly; the synced providers are here so an administrator sees a name.
public enum KnownAuthenticators {
    /// Windows Hello: hardware (TPM), software, and VBS-protected.
    public static let windowsHello: [AAGUID: String] = [
        AAGUID("08987058-cadc-4b81-b6e1-30de50dcbe96")!: "Windows Hello Hardware Authenticator",
        AAGUID("6028b017-b1d4-4c02-b4b3-afcdafc96bb2")!: "Windows Hello Software Authenticator",
        AAGUID("9ddd1817-af5a-4672-a2b9-3e3dd95000a9")!: "Windows Hello VBS Hardware Authenticator",
    ]

    /// Well-known passkey providers whose credentials are synced.
    public static let syncedProviders: [AAGUID: String] = [
        AAGUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")!: "iCloud Keychain",
        AAGUID("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")!: "Google Password Manager",
        AAGUID("adce0002-35bc-c60a-648b-0b25f1f05503")!: "Chrome on Mac",
        AAGUID("bada5566-a7aa-401f-bd96-45619a55120d")!: "1Password",
        AAGUID("d548826e-79b4-db40-a3d8-11116f7e8349")!: "Bitwarden",
    ]

    /// Whether the AAGUID is one of Windows Hello's.
    public static func isWindowsHello(_ aaguid: AAGUID) -> Bool { windowsHello[aaguid] != nil }

    /// The name of an AAGUID, from metadata first, then this list.
    public static func name(of aaguid: AAGUID, metadata: MetadataBLOB?) -> String? {
        metadata?.entry(for: aaguid)?.description ?? windowsHello[aaguid] ?? syncedProviders[aaguid]
    }
}
