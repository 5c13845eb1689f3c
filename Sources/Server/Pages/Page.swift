import TesseraCore

/// The shell of Tessera's server-rendered pages: one document, its shared look, a per-response CSP nonce for its
/// one style and one script, and the headers that keep it from being framed, cached or leaking its URL.
enum Page {
    static let baseStyle = """
      body { font-family: system-ui, sans-serif; background: #f3f4f6; margin: 0; display: grid; place-items: center; min-height: 100vh; }
      main { background: white; padding: 2.5rem; border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); width: 22rem; }
      input { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 6px; }
      button { margin-top: 1rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0; border-radius: 6px; background: #0f6cbd; color: white; cursor: pointer; }
      #status { margin-top: 1rem; min-height: 1.5rem; font-size: .95rem; } #status.error { color: #b00020; } #status.ok { color: #0a7d32; }
    """

    /// A page; `style` is added to `shell` (the sign-in pages' centred card unless told otherwise), `script` runs
    /// under the nonce. Pages that post forms need `same-origin` referrers: under `no-referrer` a browser sends
    /// `Origin: null` with the post, and the origin check could not tell it from a sandboxed attacker's.
    static func render(title: String, shell: String = baseStyle, style: String, body: String, script: String,
                       status: Int = 200, referrerPolicy: String = "no-referrer", formAction: String = "'self'") -> APIResponse {
        let nonce = Secrets.randomToken(bytes: 16)
        let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style nonce="\(nonce)">
        \(shell)
        \(style)
        </style>
        </head>
        <body>
        \(body)
        <script nonce="\(nonce)">
        "use strict";
        \(script)
        </script>
        </body>
        </html>
        """
        return APIResponse(status: status, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'nonce-\(nonce)'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action \(formAction)"),
            ("X-Frame-Options", "DENY"), ("Referrer-Policy", referrerPolicy), ("Cache-Control", "no-store"),
        ], body: Array(html.utf8))
    }

    /// HTML text escaping for values that come from the directory.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
