import TesseraCore

/// A posted consent form — the app consent page's and the external users' "Review permissions" — read the one way: the
/// browser's `Origin` must be this deployment's, and the form goes back only to this tenant's own `/authorize`.
struct ConsentForm {
    let fields: [String: String]

    /// The form `request` posted; refused when the browser says it comes from another origin.
    init(_ request: APIRequest) throws {
        if let origin = request.header("origin"), origin != PasskeyRegistration.site(baseURL: request.baseURL).origin {
            throw DirectoryError(.accessDenied, "Cross-origin consent is refused.")
        }
        fields = Self.parse(String(decoding: request.body, as: UTF8.self))
    }

    /// The form's `continue`, when it is this tenant's own `/authorize` request, with that request's parameters.
    func continuation(_ request: APIRequest) -> (url: String, parameters: [String: String])? {
        guard let next = fields["continue"], next.hasPrefix("/\(request.segments[0])/oauth2/v2.0/authorize?"),
              !next.contains("//"), !next.contains("\\") else { return nil }
        return (next, Self.parse(String(next.drop { $0 != "?" }.dropFirst())))
    }

    /// What the client hears when the user declines: `access_denied` with `description`, in the response mode the
    /// authorize request (`parameters`) asked for.
    static func declined(_ parameters: [String: String], redirectURI: String, description: String) -> APIResponse {
        var answer = [("error", "access_denied"), ("error_description", description)]
        if let state = parameters["state"] { answer.append(("state", state)) }
        return parameters["response_mode"] == "form_post" ? AuthorizeEndpoint.formPost(redirectURI, answer)
            : AuthorizeEndpoint.redirect(redirectURI, answer)
    }

    private static func parse(_ text: String) -> [String: String] {
        Dictionary(APIRequest.parseForm(text).map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
