/// Graph's `conditionalAccessDevicePlatform`: the platform a sign-in comes from, as Conditional Access targets it.
public enum DevicePlatform: String, Sendable, Hashable, CaseIterable {
    case android, iOS, windows, windowsPhone, macOS, linux

    /// The platform a User-Agent names, as Entra infers it (nil when none is recognisable). Windows Phone and
    /// Android are checked before the desktop systems their User-Agents also mention; ChromeOS is no platform.
    public init?(userAgent: String) {
        let ua = userAgent.lowercased()
        if ua.contains(" cros ") {
            return nil  // ChromeOS is none of Conditional Access's platforms: only "any platform" takes it
        } else if ua.contains("windows phone") {
            self = .windowsPhone
        } else if ua.contains("android") {
            self = .android
        } else if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") || ua.contains("ios ") {
            self = .iOS
        } else if ua.contains("windows") {
            self = .windows
        } else if ua.contains("mac os x") || ua.contains("macintosh") || ua.contains("macos") {
            self = .macOS
        } else if ua.contains("linux") || ua.contains("x11") {
            self = .linux
        } else {
            return nil
        }
    }
}

/// Graph's `conditionalAccessClientApp`: how the client signs in.
public enum ClientAppType: String, Sendable, Hashable, CaseIterable {
    case browser, mobileAppsAndDesktopClients, exchangeActiveSync, other
}

/// Graph's `riskLevel` as Conditional Access reads it.
public enum RiskLevel: String, Sendable, Hashable, CaseIterable {
    case none, low, medium, high
}
