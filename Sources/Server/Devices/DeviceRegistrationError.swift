import Foundation
import Kerberos
import TesseraCore

/// Why the device registration service refused a request, with the code Entra and Windows name it by
/// (`SEC_E_TARGET_UNKNOWN`, `DSREG_TOKEN_MISSING_ON_PREM_ID`, …), rendered in Graph's error format. A Kerberos refusal
/// answers 401 with `WWW-Authenticate: Negotiate`, so a client such as `curl --negotiate` sees it as one.
struct DeviceRegistrationError: Error, Sendable, Equatable {
    let code: String
    let message: String
    let status: Int

    init(code: String, message: String, status: Int) {
        self.code = code
        self.message = message
        self.status = status
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// No ticket, or one whose client is not a domain computer: nothing names the on-premises device
    /// (DSREG_TOKEN_MISSING_ON_PREM_ID, 0x801c0095).
    static func missingOnPremisesIdentity(_ why: String) -> Self {
        Self(code: "DSREG_TOKEN_MISSING_ON_PREM_ID", message: "DSREG_TOKEN_MISSING_ON_PREM_ID (0x801c0095): \(why)", status: 401)
    }

    /// The computer account is disabled in AD (its PAC or the directory says so).
    static func accountDisabled(_ computer: String) -> Self {
        Self(code: "SEC_E_LOGON_DENIED",
             message: "SEC_E_LOGON_DENIED (0x8009030c): the computer account \(computer) is disabled in Active Directory "
                + "(userAccountControl ACCOUNTDISABLE)", status: 401)
    }

    /// Hybrid join through Kerberos is not set up for the tenant.
    static let notEnabled = Self(
        code: "SEC_E_NO_AUTHENTICATING_AUTHORITY",
        message: "SEC_E_NO_AUTHENTICATING_AUTHORITY (0x80090311): hybrid join through Kerberos is not enabled for this tenant "
            + "(tessera hybrid kerberos enable)", status: 401)

    static func badRequest(_ message: String) -> Self { Self(code: "Request_BadRequest", message: message, status: 400) }

    /// A token from the ExchangeForJwt step that is missing, forged, expired or spent.
    static func invalidToken(_ why: String) -> Self {
        Self(code: "InvalidAuthenticationToken", message: why, status: 401)
    }

    /// The Windows (SSPI) name of a Kerberos refusal, which the library puts first in its message.
    init(_ error: KerberosError) {
        let code: String =
            switch error.code {
            case .targetUnknown: "SEC_E_TARGET_UNKNOWN"
            case .unknownKeyVersion, .integrityFailure: "SEC_E_LOGON_DENIED"
            case .wrongRealm: "SEC_E_WRONG_PRINCIPAL"
            case .ticketExpired: "SEC_E_CONTEXT_EXPIRED"
            case .clockSkew: "SEC_E_TIME_SKEW"
            case .replay: "KRB_AP_ERR_REPEAT"
            case .unsupportedEncryptionType: "SEC_E_ETYPE_NOT_SUPP"
            case .pacInvalid: "KRB_AP_ERR_MODIFIED"
            case .clientMismatch: "KRB_AP_ERR_BADMATCH"
            case .ticketNotYetValid: "KRB_AP_ERR_TKT_NYV"
            default: "SEC_E_INVALID_TOKEN"
            }
        self.init(code: code, message: error.message, status: 401)
    }

    func response(_ request: APIRequest, now: Date) -> APIResponse {
        var headers: [(name: String, value: String)] = [("request-id", request.requestID), ("Cache-Control", "no-store")]
        if status == 401 { headers.append(("WWW-Authenticate", "Negotiate")) }
        let inner: JSONValue = ["date": .string(Timestamp.format(now)), "request-id": .string(request.requestID),
                                "client-request-id": .string(request.header("client-request-id") ?? request.requestID)]
        return .json(["error": ["code": .string(code), "message": .string(message), "innerError": inner]], status: status, headers: headers)
    }
}
