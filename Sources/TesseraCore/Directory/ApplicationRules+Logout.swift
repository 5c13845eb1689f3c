import Foundation

extension ApplicationRules {
    /// An application's back-channel logout URL (`web.backchannelLogoutUrl`, Tessera's extension: Entra has no
    /// property for OpenID Connect Back-Channel Logout) is where Tessera itself POSTs logout tokens, so it must be one
    /// ``LogoutURLRule`` accepts.
    static func checkLogoutURLs(_ body: [String: JSONValue]) throws(DirectoryError) {
        guard let value = body["web"]?["backchannelLogoutUrl"], value != .null else { return }
        guard let text = value.stringValue, text.count <= 256, LogoutURLRule.isAcceptable(text) else {
            throw DirectoryError.badRequest(
                "Invalid value specified for property 'backchannelLogoutUrl' of resource 'WebApplication': it must be an absolute https URL (http only for localhost or a loopback address), without a fragment, of at most 256 characters.")
        }
    }
}

/// Which logout URLs Tessera itself calls: absolute https URLs, or http to a loopback address (an app on the server's
/// own machine, as a developer runs one), with a host and no fragment.
public enum LogoutURLRule {
    public static func isAcceptable(_ text: String) -> Bool {
        guard let components = URLComponents(string: text), components.fragment == nil, let host = components.host, !host.isEmpty,
              let scheme = components.scheme?.lowercased() else { return false }
        return scheme == "https" || (scheme == "http" && isLoopback(host))
    }

    /// `localhost`, `::1` or an address in 127.0.0.0/8.
    public static func isLoopback(_ host: String) -> Bool {
        let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
