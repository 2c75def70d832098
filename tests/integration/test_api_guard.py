"""API guard: what a web page in the user's browser, a careless client or a
hostile local body could do to the HTTP API -- beyond test_backbone.py.

Cross-origin "simple" requests (text/plain, form bodies) are refused with 415
and change nothing; no response carries a CORS header; GET never changes
state; deep, huge or malformed JSON is refused and the daemon lives; bad
`share` and `into` paths get clear 400s; the token stays in its 0600 file and
never shows in the log, in an error body or in the process list.

One daemon, stopped by PID; the temp dir is removed.
"""
import json
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, Daemon, TestDir  # noqa: E402

c = Checks("api_guard")
tmp = TestDir("shoal-apiguard-")
d = Daemon(tmp, "node", ["--log-level", "debug"]).start()
PORT = d.api_addr.rsplit(":", 1)[1]
EVIL = {"Origin": "http://evil.example", "Referer": "http://evil.example/page"}
# A browser sends Origin on every cross-origin POST, and the daemon refuses
# a foreign one (403 forbidden_origin, docs/web.md) before anything else;
# the checks below each defence would still hold without that one, so they
# are made once more with no Origin at all.
NO_ORIGIN = {"Referer": "http://evil.example/page"}

responses = []   # (what, status, headers, raw body text) of every response seen


def req(what, method, path, **kw):
    status, doc, headers = d.request(method, path, **kw)
    responses.append((what, status, headers, json.dumps(doc) if doc is not None else ""))
    return status, doc, headers


def code(doc):
    return ((doc or {}).get("error") or {}).get("code")


def swarms():
    return d.api("GET", "/api/v1/swarms")["swarms"]


# A swarm to aim at.
share = tmp.sub("shared")
os.makedirs(share)
with open(os.path.join(share, "f.bin"), "wb") as f:
    f.write(os.urandom(300000))
status, doc, _ = req("share", "POST", "/api/v1/swarms", body={"share": share})
c.check(status in (200, 202), "sharing a directory is accepted", "(%s %s)" % (status, doc))
deadline = time.monotonic() + 30
while time.monotonic() < deadline and swarms()[0]["state"] != "seeding":
    time.sleep(0.1)
c.equal(swarms()[0]["state"], "seeding", "the swarm is seeding")
before = swarms()

# --- cross-origin "simple" requests: no preflight, so they must be refused ----
target = tmp.sub("victim-dir")
os.makedirs(target)
for ctype in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x", "application/jsonx", "application/json-seq"):
    body = json.dumps({"share": target}).encode()
    status, doc, headers = req("cross-origin " + ctype, "POST", "/api/v1/swarms",
                               raw_body=body, headers=dict(EVIL, **{"Content-Type": ctype}))
    c.equal(status, 403, "cross-origin POST /swarms with Content-Type %s -> 403" % ctype)
    c.equal(code(doc), "forbidden_origin", "  its error code says why")
    status, doc, headers = req("no origin " + ctype, "POST", "/api/v1/swarms",
                               raw_body=body, headers=dict(NO_ORIGIN, **{"Content-Type": ctype}))
    c.equal(status, 415, "POST /swarms with Content-Type %s -> 415" % ctype)
    c.equal(code(doc), "unsupported_media_type", "  its error code says why")
status, doc, _ = req("no content-type", "POST", "/api/v1/swarms",
                     raw_body=json.dumps({"share": target}).encode(), headers=NO_ORIGIN)
c.equal(status, 415, "POST /swarms with a body and no Content-Type -> 415")
status, doc, _ = req("pause text/plain", "POST", "/api/v1/swarms/1/pause", raw_body=b"{}",
                     headers=dict(NO_ORIGIN, **{"Content-Type": "text/plain"}))
c.equal(status, 415, "POST /swarms/1/pause with a text/plain body -> 415")
status, doc, _ = req("delete text/plain", "DELETE", "/api/v1/swarms/1",
                     raw_body=b'{"delete_data": true}',
                     headers=dict(NO_ORIGIN, **{"Content-Type": "text/plain"}))
c.equal(status, 415, "DELETE /swarms/1 with a text/plain body -> 415")
# What a page can really send: no Authorization header (adding one needs a
# preflight).  Even with the right content type it is turned away.
status, doc, _ = req("cross-origin no token", "POST", "/api/v1/swarms/1/pause", token=None,
                     body={}, headers=EVIL)
c.equal(status, 403, "cross-origin POST without the token -> 403 (foreign Origin)")
status, doc, _ = req("no origin no token", "POST", "/api/v1/swarms/1/pause", token=None,
                     body={}, headers=NO_ORIGIN)
c.equal(status, 401, "the same POST without an Origin -> 401")
status, doc, _ = req("cross-origin form no token", "POST", "/api/v1/swarms", token=None,
                     raw_body=b"share=/", headers=dict(EVIL, **{
                         "Content-Type": "application/x-www-form-urlencoded"}))
c.equal(status, 403, "cross-origin form POST without the token -> 403")
after = swarms()
c.equal([(s["id"], s["state"]) for s in after], [(s["id"], s["state"]) for s in before],
        "none of the refused requests changed the swarm list or states")
c.check(not any(s["root"] == target for s in after), "the victim directory was not shared")

# Preflights: never granted, whatever they ask.
for method, hdrs in (("POST", "content-type"), ("DELETE", "authorization"),
                     ("GET", "authorization")):
    status, _, headers = req("preflight", "OPTIONS", "/api/v1/swarms", headers=dict(
        EVIL, **{"Access-Control-Request-Method": method,
                 "Access-Control-Request-Headers": hdrs}))
    c.check(status >= 400, "preflight for %s with %s is refused" % (method, hdrs),
            "(status %s)" % status)

# --- GET never changes state ---------------------------------------------------
for path, allow in (("/api/v1/swarms/1/pause", "POST"), ("/api/v1/swarms/1/resume", "POST"),
                    ("/api/v1/swarms/1/verify", "POST")):
    status, doc, headers = req("GET " + path, "GET", path)
    c.equal(status, 405, "GET %s -> 405" % path)
    c.equal(headers.get("allow"), allow, "  Allow: %s" % allow)
for method in ("HEAD", "PUT", "PATCH"):
    status, _, _ = req(method + " pause", method, "/api/v1/swarms/1/pause", raw_body=b"")
    c.equal(status, 405, "%s /swarms/1/pause -> 405" % method)
status, doc, _ = req("GET swarms?share", "GET", "/api/v1/swarms?share=" + target)
c.check(status == 400 and "share" in ((doc or {}).get("error") or {}).get("message", ""),
        "GET /swarms?share=DIR shares nothing: 400, an unknown parameter", "(%s %s)" % (status, doc))
c.equal([(s["id"], s["state"]) for s in swarms()], [(s["id"], s["state"]) for s in before],
        "no GET changed anything")

# --- hostile JSON --------------------------------------------------------------
for name, raw in (("10,000 [", b"[" * 10000),
                  ("10,000 [ closed", b"[" * 10000 + b"]" * 10000),
                  ("10,000 nested objects", b'{"a":' * 10000 + b"1" + b"}" * 10000),
                  ("33 levels", b'{"a":' + b"[" * 32 + b"]" * 32 + b"}")):
    status, doc, _ = req("deep " + name, "POST", "/api/v1/swarms", raw_body=raw,
                         headers={"Content-Type": "application/json"})
    c.equal(status, 400, "JSON nested %s -> 400" % name)
    c.equal(code(doc), "bad_json", "  bad_json")
status, doc, _ = req("depth in a string", "POST", "/api/v1/swarms",
                     body={"share": "[" * 5000 + "{" * 5000})
c.equal(status, 400, "brackets inside a string do not count as depth (it is a bad path)")
c.equal(code(doc), "bad_path", "  ... rejected as bad_path, not bad_json")
for name, raw in (("truncated", b'{"share": "/tm'), ("not an object", b'["share"]'),
                  ("duplicate keys", b'{"share": "/a", "share": "/b"}'),
                  ("invalid UTF-8", b'{"share": "/\xff\xfe"}'), ("NUL in a string",
                                                                   b'{"share": "/tmp\\u0000x"}'),
                  ("empty object", b"{}"), ("a bare number", b"1e999999")):
    status, doc, _ = req("json " + name, "POST", "/api/v1/swarms", raw_body=raw,
                         headers={"Content-Type": "application/json"})
    c.check(status == 400, "JSON %s -> 400" % name, "(%s %s)" % (status, doc))
MIB = 1024 * 1024
pad = b'{"share": "' + b"a" * (MIB - 13) + b'"}'
c.equal(len(pad), MIB, "(a body of exactly 1 MiB)")
status, doc, _ = req("1 MiB", "POST", "/api/v1/swarms", raw_body=pad,
                     headers={"Content-Type": "application/json"})
c.check(status == 400 and code(doc) == "bad_path", "a JSON body of exactly 1 MiB is read (400 bad_path)",
        "(%s %s)" % (status, code(doc)))
pad = b'{"share": "' + b"a" * (MIB - 12) + b'"}'
c.equal(len(pad), MIB + 1, "(a body of 1 MiB + 1)")
status, doc, _ = req("1 MiB + 1", "POST", "/api/v1/swarms", raw_body=pad,
                     headers={"Content-Type": "application/json"})
c.equal(status, 413, "a JSON body of 1 MiB + 1 -> 413")
c.equal(code(doc), "body_too_large", "  body_too_large")
status, doc, _ = req("1 MiB + 1 on GET", "GET", "/api/v1/status", raw_body=b" " * (MIB + 1))
c.equal(status, 413, "a 1 MiB + 1 body on a GET -> 413 too")
try:
    status, _, _ = req("5 MiB", "POST", "/api/v1/swarms", raw_body=b" " * (5 * MIB),
                       headers={"Content-Type": "application/json"})
except OSError as e:
    status = "connection: %s" % e
c.check(status == 413 or str(status).startswith("connection"),
        "a 5 MiB body is cut off by evhttp", "(%s)" % status)
c.check(d.proc.poll() is None, "daemon alive after hostile JSON")
c.equal(d.request("GET", "/api/v1/status")[0], 200, "API answers after hostile JSON")

# --- paths -----------------------------------------------------------------------
afile = tmp.sub("plain-file")
with open(afile, "w") as f:
    f.write("x")
for p, want in (("relative/dir", 400), (".", 400), ("", 400), ("/", 400), ("//", 400),
                ("/etc/..", 400), ("/./", 400), (afile, 400), (tmp.sub("missing"), 404)):
    status, doc, _ = req("share " + p, "POST", "/api/v1/swarms", body={"share": p})
    c.check(status == want and code(doc) == "bad_path" and (doc["error"].get("message") or ""),
            "share %r -> %d bad_path with a message" % (p, want),
            "(%s %s)" % (status, doc))
status, doc, _ = req("share non-string", "POST", "/api/v1/swarms", body={"share": 5})
c.equal(status, 400, "share of a number -> 400")
magnet = "magnet:?xt=urn:btmh:1220" + os.urandom(32).hex() + "&dn=x"
for into, why in (("relative", "relative"), ("", "empty"), (afile, "a file"),
                  (5, "a number")):
    body = {"link": magnet}
    if into is not None:
        body["into"] = into
    status, doc, _ = req("into " + why, "POST", "/api/v1/swarms", body=body)
    c.check(status == 400 and code(doc) == "bad_path", "join into %s -> 400 bad_path" % why,
            "(%s %s)" % (status, doc))
# A missing `into` is created (with its parents), not refused; without
# `into` the daemon's download-dir is used (tests/integration/test_join_safety.py).
made = tmp.sub("made", "by", "join")
status, doc, _ = req("into missing", "POST", "/api/v1/swarms", body={"link": magnet, "into": made})
c.check(status in (200, 202) and os.path.isdir(made), "join into a missing dir creates it",
        "(%s %s)" % (status, doc))
if status in (200, 202):
    sid = doc["swarm"]["id"]
    status, doc, _ = req("remove", "DELETE", "/api/v1/swarms/%d" % sid)
    c.check(status == 200, "the swarm joined into the new dir is removed", "(%s %s)" % (status, doc))
status, doc, _ = req("relative torrent", "POST", "/api/v1/swarms",
                     body={"link": "x.torrent", "into": target})
c.check(status == 400 and code(doc) == "bad_link", "a relative .torrent path -> 400 bad_link",
        "(%s %s)" % (status, doc))
c.equal(len(swarms()), 1, "no refused share or join added a swarm")

# --- the token -----------------------------------------------------------------
tok_path = os.path.join(d.data_dir, "api.token")
c.equal(stat.S_IMODE(os.stat(tok_path).st_mode), 0o600, "api.token is 0600")
c.equal(os.stat(tok_path).st_uid, os.getuid(), "api.token belongs to the daemon's user")
status, _, _ = req("token in query", "GET", "/api/v1/status?token=" + d.token, token=None)
c.equal(status, 401, "the token in a query string is not accepted")
status, _, _ = req("token as cookie", "GET", "/api/v1/status", token=None,
                   headers={"Cookie": "token=" + d.token})
c.equal(status, 401, "the token in a cookie is not accepted")
for host in ("127.0.0.1", "localhost", "127.0.0.1:1", "localhost.:%s" % PORT,
             "127.0.0.1.evil.example:%s" % PORT, "evil.example:%s@127.0.0.1:%s" % (PORT, PORT),
             "[::ffff:127.0.0.1]:%s" % PORT, "0.0.0.0:%s" % PORT):
    status, doc, _ = req("host " + host, "GET", "/api/v1/status", host=host)
    c.equal(status, 403, "Host %r -> 403" % host)
status, _, _ = req("host [::1]", "GET", "/api/v1/status", host="[::1]:%s" % PORT)
c.equal(status, 200, "Host [::1]:PORT accepted")
# Wrong tokens of every shape get the same answer and never echo what was sent.
for t in (d.token.upper(), d.token + "00", d.token[:-2] + "zz", "%s %s" % (d.token, d.token)):
    status, doc, _ = req("token variant", "GET", "/api/v1/status", token=False,
                         headers={"Authorization": "Bearer " + t})
    c.check(status in (200, 401), "token variant answered 200 or 401", "(%s)" % status)

# A CLI process that runs for a while, to look at the process list.
cli = subprocess.Popen([SHOAL, "join", magnet, "--into", target, "--wait", "--data-dir",
                        d.data_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, timeout=10).stdout
cli_running = cli.poll() is None
cli.terminate()
try:
    cli.wait(timeout=5)
except subprocess.TimeoutExpired:
    cli.kill()
    cli.wait(timeout=5)
c.check(cli_running, "a `shoal join --wait` was running while the process list was read")
c.check(d.token not in ps and d.token.upper() not in ps, "the token is not in the process list")

# No CORS header, anywhere; no token in any body.
cors = [(w, k) for w, _, h, _ in responses for k in h if k.startswith("access-control-")]
c.equal(cors, [], "no response carried an Access-Control-* header (%d responses)" % len(responses))
leaks = [w for w, _, _, body in responses if d.token in body.lower() or d.token.upper() in body]
c.equal(leaks, [], "no response body contains the token")
errs = [r for r in responses if r[1] >= 400]
bad = [(r[0], r[1]) for r in errs
       if not r[0].startswith("HEAD") and not (r[3] and "error" in json.loads(r[3]))]
c.equal(bad, [], "every error response (but HEAD) has a JSON error body")
c.check(all(h.get("cache-control") == "no-store" for _, s, h, b in responses if b),
        "every JSON response is Cache-Control: no-store")

c.equal(d.stop(), 0, "daemon stops cleanly")
log = d.log()
c.check(len(log) > 0, "the daemon wrote a log (%d bytes, debug level)" % len(log))
c.check(d.token not in log.lower() and d.token.upper() not in log,
        "the token never appears in the log")
c.done()
