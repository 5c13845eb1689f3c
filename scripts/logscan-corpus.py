"""Inputs for scripts/logscan-harness.c (issue 17): the catalog's hosts, or a log shaped like `tessera traffic bench`'s
(the same line formats and mix, about 3% of lines to catalog apps; Python's random numbers, not the bench's).

    python3 scripts/logscan-corpus.py hosts Sources/InternetAccess/Resources/ai-apps.json > hosts.txt
    python3 scripts/logscan-corpus.py squid|cef MEGABYTES > FILE
"""
import json
import random
import sys

if sys.argv[1] == "hosts":
    apps = json.load(open(sys.argv[2]))["apps"]
    for index, app in enumerate(apps):
        for host in app["hosts"]:
            print(host, index)
    sys.exit(0)

fmt, target = sys.argv[1], int(sys.argv[2]) << 20
r = random.Random(1 if fmt == "squid" else 2)
ai = [("api.openai.com", "/v1/chat/completions"), ("chatgpt.com", "/backend-api/conversation"),
      ("claude.ai", "/api/organizations/1/completion"), ("api.anthropic.com", "/v1/messages"),
      ("chat.deepseek.com", "/api/v0/chat/completion"), ("gemini.google.com", "/app"),
      ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:generateContent"),
      ("poe.com", "/"), ("www.perplexity.ai", "/search"), ("api.githubcopilot.com", "/chat/completions")]
t, size, out, rb = 1765015200000, 0, [], r.randrange
while size < target:
    t += rb(20)
    user = "user%d" % rb(500)
    ip = "10.0.%d.%d" % (rb(8), rb(250) + 1)
    host, path = ai[rb(len(ai))] if rb(100) < 3 else ("www.site%d.example" % rb(5000), "/page/%d" % rb(100000))
    connect = rb(4) != 0
    received, sent = rb(60000) + 200, rb(4000) + 100
    if fmt == "cef":
        line = ("<134>Dec  6 10:00:00 fw01 CEF:0|Contoso|Proxy|1.0|web|Allowed|3|rt=%d src=%s spt=%d dhost=%s dpt=443 "
                "request=https://%s%s requestMethod=%s suser=%s out=%d in=%d act=allow\n") % (
            t, ip, 40000 + rb(20000), host, host, path, "CONNECT" if connect else "GET", user, sent, received)
    else:
        target_field = "%s:443" % host if connect else "http://%s%s" % (host, path)
        line = "%d.%s    %d %s TCP_%s/200 %d %s %s %s HIER_DIRECT/93.184.%d.%d %s\n" % (
            t // 1000, str(t % 1000 + 1000)[1:], rb(2000), ip, "TUNNEL" if connect else "MISS", received,
            "CONNECT" if connect else "GET", target_field, user, rb(250), rb(250), "-" if connect else "text/html")
    out.append(line)
    size += len(line)
sys.stdout.write("".join(out))
