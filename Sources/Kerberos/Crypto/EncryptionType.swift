/// A Kerberos encryption type number (RFC 3961 section 8, RFC 3962, RFC 8009, RFC 4757).
public struct EncryptionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// aes128-cts-hmac-sha1-96 (RFC 3962).
    public static let aes128CtsHmacSha196 = EncryptionType(rawValue: 17)
    /// aes256-cts-hmac-sha1-96 (RFC 3962), what AD issues by default once the account allows AES.
    public static let aes256CtsHmacSha196 = EncryptionType(rawValue: 18)
    /// aes128-cts-hmac-sha256-128 (RFC 8009).
    public static let aes128CtsHmacSha256128 = EncryptionType(rawValue: 19)
    /// aes256-cts-hmac-sha384-192 (RFC 8009).
    public static let aes256CtsHmacSha384192 = EncryptionType(rawValue: 20)
    /// rc4-hmac (RFC 4757): recognised and refused.
    public static let rc4Hmac = EncryptionType(rawValue: 23)

    /// The name RFC 3961's registry and MIT's tools use.
    public var description: String {
        switch rawValue {
        case 1: "des-cbc-crc"
        case 2: "des-cbc-md4"
        case 3: "des-cbc-md5"
        case 16: "des3-cbc-sha1"
        case 17: "aes128-cts-hmac-sha1-96"
        case 18: "aes256-cts-hmac-sha1-96"
        case 19: "aes128-cts-hmac-sha256-128"
        case 20: "aes256-cts-hmac-sha384-192"
        case 23: "rc4-hmac"
        case 24: "rc4-hmac-exp"
        default: "enctype \(rawValue)"
        }
    }

    /// The profile that implements this type, or an error naming why it is refused.
    func profile() throws -> EncryptionProfile {
        switch rawValue {
        case 17: return .aes128Sha1
        case 18: return .aes256Sha1
        case 19: return .aes128Sha256
        case 20: return .aes256Sha384
        case 1, 2, 3, 16:
            throw KerberosError(
                .unsupportedEncryptionType,
                "SEC_E_ETYPE_NOT_SUPP (KDC_ERR_ETYPE_NOSUPP): \(self) is DES, which is refused; "
                    + "allow only AES for the account (msDS-SupportedEncryptionTypes 24)")
        case 23, 24:
            throw KerberosError(
                .unsupportedEncryptionType,
                "SEC_E_ETYPE_NOT_SUPP (KDC_ERR_ETYPE_NOSUPP): \(self) (RC4) is refused; "
                    + "allow only AES for the account (msDS-SupportedEncryptionTypes 24)")
        default:
            throw KerberosError(
                .unsupportedEncryptionType, "SEC_E_ETYPE_NOT_SUPP (KDC_ERR_ETYPE_NOSUPP): \(self) is not supported")
        }
    }
}

/// A Kerberos checksum type number (RFC 3961 section 8, RFC 8009).
public struct ChecksumType: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// hmac-sha1-96-aes128 (RFC 3962).
    public static let hmacSha196Aes128 = ChecksumType(rawValue: 15)
    /// hmac-sha1-96-aes256 (RFC 3962).
    public static let hmacSha196Aes256 = ChecksumType(rawValue: 16)
    /// hmac-sha256-128-aes128 (RFC 8009).
    public static let hmacSha256128Aes128 = ChecksumType(rawValue: 19)
    /// hmac-sha384-192-aes256 (RFC 8009).
    public static let hmacSha384192Aes256 = ChecksumType(rawValue: 20)

    /// The encryption profile whose keys this checksum is keyed with.
    func profile() throws -> EncryptionProfile {
        switch rawValue {
        case 15: return .aes128Sha1
        case 16: return .aes256Sha1
        case 19: return .aes128Sha256
        case 20: return .aes256Sha384
        case -138:
            throw KerberosError(
                .unsupportedEncryptionType, "SEC_E_ETYPE_NOT_SUPP: the HMAC-MD5 (RC4) checksum is refused")
        default:
            throw KerberosError(.unsupportedEncryptionType, "SEC_E_ETYPE_NOT_SUPP: checksum type \(rawValue)")
        }
    }
}
