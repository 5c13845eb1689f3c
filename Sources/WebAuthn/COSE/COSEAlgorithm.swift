/// A COSE algorithm identifier (IANA "COSE Algorithms") that WebAuthn credentials and attestations use.
public struct COSEAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(_ rawValue: Int) { self.rawValue = rawValue }

    /// ECDSA with P-256 and SHA-256.
    public static let es256 = COSEAlgorithm(-7)
    /// ECDSA with P-384 and SHA-384.
    public static let es384 = COSEAlgorithm(-35)
    /// ECDSA with P-521 and SHA-512.
    public static let es512 = COSEAlgorithm(-36)
    /// EdDSA; WebAuthn uses it with Ed25519.
    public static let eddsa = COSEAlgorithm(-8)
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    public static let rs256 = COSEAlgorithm(-257)
    /// RSASSA-PSS with SHA-256.
    public static let ps256 = COSEAlgorithm(-37)
    /// RSASSA-PKCS1-v1_5 with SHA-1. Only older TPMs sign attestations with it; never allowed for credentials.
    public static let rs1 = COSEAlgorithm(-65535)

    /// The algorithms a relying party accepts for credentials unless configured otherwise.
    public static let defaultAllowed: [COSEAlgorithm] = [.es256, .eddsa, .es384, .es512, .rs256, .ps256]

    public var description: String {
        switch self {
        case .es256: "ES256"
        case .es384: "ES384"
        case .es512: "ES512"
        case .eddsa: "EdDSA"
        case .rs256: "RS256"
        case .ps256: "PS256"
        case .rs1: "RS1"
        default: "COSE algorithm \(rawValue)"
        }
    }
}
