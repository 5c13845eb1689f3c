/// Why a Kerberos message was refused. Errors compare by ``code`` only; the message names the Windows (SSPI) or
/// RFC 4120 error, as Entra's and Windows' own logs do, followed by what was wrong.
public struct KerberosError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable error code; new codes never break callers that switch over the ones they know.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case malformed, unsupportedEncryptionType, integrityFailure, targetUnknown, wrongRealm, unknownKeyVersion
            case ticketExpired, ticketNotYetValid, clockSkew, clientMismatch, replay, pacInvalid
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The token is not DER that RFC 4120, RFC 4178 or MS-PAC describe (`SEC_E_INVALID_TOKEN`).
        public static let malformed = Code(.malformed)
        /// DES, RC4 or an unknown encryption type (`SEC_E_ETYPE_NOT_SUPP`, `KDC_ERR_ETYPE_NOSUPP`).
        public static let unsupportedEncryptionType = Code(.unsupportedEncryptionType)
        /// A ciphertext or checksum did not verify (`SEC_E_MESSAGE_ALTERED`, `KRB_AP_ERR_BAD_INTEGRITY`).
        public static let integrityFailure = Code(.integrityFailure)
        /// The ticket is for another service principal (`SEC_E_TARGET_UNKNOWN`, `KRB_AP_ERR_NOT_US`).
        public static let targetUnknown = Code(.targetUnknown)
        /// The ticket is from another realm (`SEC_E_WRONG_PRINCIPAL`).
        public static let wrongRealm = Code(.wrongRealm)
        /// No key for the ticket's key version and encryption type (`SEC_E_LOGON_DENIED`, `KRB_AP_ERR_BADKEYVER`).
        public static let unknownKeyVersion = Code(.unknownKeyVersion)
        /// The ticket's end time has passed (`SEC_E_CONTEXT_EXPIRED`, `KRB_AP_ERR_TKT_EXPIRED`).
        public static let ticketExpired = Code(.ticketExpired)
        /// The ticket's start time is still ahead (`KRB_AP_ERR_TKT_NYV`).
        public static let ticketNotYetValid = Code(.ticketNotYetValid)
        /// The authenticator's time is more than the allowed skew away (`SEC_E_TIME_SKEW`, `KRB_AP_ERR_SKEW`).
        public static let clockSkew = Code(.clockSkew)
        /// The authenticator names another client than the ticket (`KRB_AP_ERR_BADMATCH`).
        public static let clientMismatch = Code(.clientMismatch)
        /// The authenticator was seen before within the skew window (`KRB_AP_ERR_REPEAT`).
        public static let replay = Code(.replay)
        /// The PAC is missing, malformed, or its server checksum or client info does not match (`KRB_AP_ERR_MODIFIED`).
        public static let pacInvalid = Code(.pacInvalid)

        public var description: String { "\(value)" }
    }

    /// What kind of failure this is.
    public let code: Code
    /// A sentence for logs and API errors: the Windows or RFC 4120 error name, then the reason. Never key material.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: KerberosError, rhs: KerberosError) -> Bool { lhs.code == rhs.code }

    static func malformed(_ what: String) -> KerberosError {
        KerberosError(.malformed, "SEC_E_INVALID_TOKEN: \(what)")
    }
    static func integrity(_ what: String) -> KerberosError {
        KerberosError(.integrityFailure, "SEC_E_MESSAGE_ALTERED (KRB_AP_ERR_BAD_INTEGRITY): \(what)")
    }
}
