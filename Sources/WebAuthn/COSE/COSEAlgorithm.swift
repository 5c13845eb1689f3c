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
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    public static let rs384 = COSEAlgorithm(-258)
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    public static let rs512 = COSEAlgorithm(-259)
    /// RSASSA-PSS with SHA-256.
    public static let ps256 = COSEAlgorithm(-37)
    /// RSASSA-PSS with SHA-384.
    public static let ps384 = COSEAlgorithm(-38)
    /// RSASSA-PSS with SHA-512.
    public static let ps512 = COSEAlgorithm(-39)
    /// RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8812). Older Windows Hello TPMs make credential keys of it and sign their
    /// attestations with it. SHA-1 is broken for collisions, so it is never in ``defaultAllowed``: a relying party
    /// that must accept such keys names it in its allowed algorithms.
    public static let rs1 = COSEAlgorithm(-65535)

    /// The algorithms a relying party accepts for credentials unless configured otherwise, in the order of
    /// preference `pubKeyCredParams` offers them: every supported algorithm but RS1.
    public static let defaultAllowed: [COSEAlgorithm] = [.es256, .eddsa, .es384, .es512, .rs256, .ps256, .rs384, .rs512, .ps384, .ps512]

    /// Every algorithm this library can verify a credential signature with: what a relying party may allow.
    public static let supported: [COSEAlgorithm] = [.es256, .eddsa, .es384, .es512, .rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .rs1]

    /// Whether this library can verify signatures of this algorithm.
    public var isSupported: Bool { Self.supported.contains(self) }

    public var description: String {
        switch self {
        case .es256: "ES256"
        case .es384: "ES384"
        case .es512: "ES512"
        case .eddsa: "EdDSA"
        case .rs256: "RS256"
        case .rs384: "RS384"
        case .rs512: "RS512"
        case .ps256: "PS256"
        case .ps384: "PS384"
        case .ps512: "PS512"
        case .rs1: "RS1"
        default: "COSE algorithm \(rawValue)"
        }
    }
}
