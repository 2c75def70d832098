"""The web dashboard's server side (docs/web.md): static pages, the headers
on every response, the Host and Origin checks, one-time login codes, the
session cookie and its CSRF token, and `shoal web`.

Three daemons on loopback, each with its own data dir, stopped by PID:
  web   --web-dir a copy of web/ with traps in it (a symlink to the token, a
        hidden file, a directory, a FIFO), codes living 2 s
        (SHOAL_TEST_WEB_CODE_TTL, the documented test knob)
  dflt  no --web-dir: serves the source tree's web/ (it runs from the build
        tree); also takes the 10 wrong codes that earn a 429
  bare  --web-dir an empty directory: / is 404 no_web_ui
"""
import http.client
import json
import os
import shutil
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SRCDIR, Checks, Daemon, TestDir  # noqa: E402

c = Checks("web_auth")
tmp = TestDir("shoal-webauth-")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SRC_WEB = os.path.join(SRCDIR, "web")
TTL = 2

webdir = tmp.sub("webdir")
shutil.copytree(SRC_WEB, webdir)
os.makedirs(os.path.join(webdir, "a"))
with open(os.path.join(webdir, "a", "b"), "w") as f:
    f.write("inside a directory\n")
with open(os.path.join(webdir, ".hidden"), "w") as f:
    f.write("SECRET-HIDDEN-CONTENT\n")
with open(os.path.join(webdir, "notes.unknownext"), "w") as f:
    f.write("not a served type\n")
os.mkfifo(os.path.join(webdir, "fifo.js"))

d = Daemon(tmp, "web", ["--web-dir", webdir], env={"SHOAL_TEST_WEB_CODE_TTL": str(TTL)}).start()
os.symlink(os.path.join(d.data_dir, "api.token"), os.path.join(webdir, "token.txt"))
TOKEN = d.token


def raw(daemon, method, path, headers=None, body=None, host=None, token=False):
    """One request with exactly these headers; (status, headers, body bytes).
    A header's list value sends it several times."""
    hostname, port = daemon.api_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=15)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or daemon.api_addr)
    if token:
        conn.putheader("Authorization", "Bearer " + daemon.token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        conn.putheader("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        for one in (v if isinstance(v, list) else [v]):
            conn.putheader(k, one)
    conn.putheader("Content-Length", str(len(data or b"")))
    conn.endheaders(data)
    resp = conn.getresponse()
    text = resp.read()
    hdrs = {}
    for k, v in resp.getheaders():
        hdrs.setdefault(k.lower(), []).append(v)
    conn.close()
    return resp.status, hdrs, text


def doc_of(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def err(text):
    return ((doc_of(text) or {}).get("error") or {}).get("code")


def one(hdrs, name):
    v = hdrs.get(name)
    return v[0] if v else None


def mint(daemon):
    status, _, text = raw(daemon, "POST", "/api/v1/web/codes", token=True)
    c.equal(status, 201, "POST /web/codes with the bearer token -> 201")
    return doc_of(text) or {}


def login(daemon, code):
    return raw(daemon, "POST", "/api/v1/web/session", body={"code": code})


def cookie_of(hdrs):
    for v in hdrs.get("set-cookie", []):
        if v.startswith("shoal_session="):
            return v
    return None


def security_headers_ok(what, hdrs):
    c.equal(one(hdrs, "content-security-policy"), CSP, what + ": Content-Security-Policy")
    c.equal(one(hdrs, "x-frame-options"), "DENY", what + ": X-Frame-Options: DENY")
    c.equal(one(hdrs, "referrer-policy"), "no-referrer", what + ": Referrer-Policy")
    c.equal(one(hdrs, "x-content-type-options"), "nosniff", what + ": nosniff")
    c.check("access-control-allow-origin" not in hdrs, what + ": no CORS header")


# --- pages -------------------------------------------------------------------
for path, name, ctype in (("/", "index.html", "text/html"), ("/login", "login.html", "text/html"),
                          ("/web/login.js", "login.js", "text/javascript")):
    status, hdrs, text = raw(d, "GET", path)
    c.equal(status, 200, "GET %s -> 200 without any credential" % path)
    with open(os.path.join(webdir, name), "rb") as f:
        c.check(text == f.read(), "GET %s is %s" % (path, name))
    c.check((one(hdrs, "content-type") or "").startswith(ctype), "  Content-Type %s" % ctype,
            "(%s)" % one(hdrs, "content-type"))
    c.equal(one(hdrs, "cache-control"), "no-cache", "  Cache-Control: no-cache")
    security_headers_ok("GET " + path, hdrs)
    status, hdrs, text = raw(d, "HEAD", path)
    c.check(status == 200 and text == b"", "HEAD %s -> 200, no body" % path, "(%s)" % status)
for path in ("/web/../api.token", "/web/%2e%2e/api.token", "/web/..%2fapi.token", "/web/.hidden",
             "/web/a/b", "/web/a", "/web/token.txt", "/web/fifo.js", "/web/", "/web/nothere.js",
             "/web/notes.unknownext", "/web/" + "x" * 300 + ".js"):
    status, hdrs, text = raw(d, "GET", path)
    c.check(status == 404 and TOKEN.encode() not in text and b"inside" not in text
            and b"SECRET-HIDDEN" not in text,
            "GET %s -> 404, nothing of the file" % path[:60], "(%s %r)" % (status, text[:80]))
    security_headers_ok("404 " + path[:30], hdrs)
status, hdrs, _ = raw(d, "POST", "/", body={})
c.equal(status, 405, "POST / -> 405")
c.equal(one(hdrs, "allow"), "GET, HEAD", "  Allow: GET, HEAD")

# --- Host and Origin on every route -----------------------------------------------
for path in ("/", "/login", "/web/login.js", "/api/v1/status"):
    status, hdrs, text = raw(d, "GET", path, host="evil.example", token=True)
    c.equal((status, err(text)), (403, "forbidden_host"), "Host: evil.example on %s -> 403" % path)
    security_headers_ok("403 host " + path, hdrs)
    status, hdrs, text = raw(d, "GET", path, headers={"Origin": "http://evil.example"},
                             token=True)
    c.equal((status, err(text)), (403, "forbidden_origin"),
            "Origin: http://evil.example on %s -> 403 forbidden_origin" % path)
    for origin in ("null", "https://" + d.api_addr, "http://" + d.api_addr + ".evil.example"):
        status, _, text = raw(d, "GET", path, headers={"Origin": origin}, token=True)
        c.equal(status, 403, "  Origin: %s on %s -> 403" % (origin, path))
    status, _, _ = raw(d, "GET", path, headers={"Origin": "http://" + d.api_addr}, token=True)
    c.equal(status, 200, "  Origin: http://%s (the same origin) on %s -> 200" % (d.api_addr, path))
status, _, text = raw(d, "POST", "/api/v1/web/session", body={"code": "0" * 32},
                      headers={"Origin": "http://evil.example"})
c.equal((status, err(text)), (403, "forbidden_origin"), "a cross-origin login is refused")

# --- API replies carry the headers too; the bearer token still works ----------------
status, hdrs, text = raw(d, "GET", "/api/v1/status", token=True)
c.equal(status, 200, "GET /status with the bearer token -> 200")
security_headers_ok("API reply", hdrs)
status, hdrs, text = raw(d, "GET", "/api/v1/status")
c.equal((status, err(text)), (401, "unauthorized"), "GET /status with nothing -> 401")
security_headers_ok("API 401", hdrs)

# --- codes -> sessions ---------------------------------------------------------------
m = mint(d)
code = m.get("code", "")
c.equal(m.get("expires_in"), TTL, "the code's expires_in is its life (the test knob's %d s)" % TTL)
c.equal(m.get("url"), "http://%s/login#%s" % (d.api_addr, code), "the url is /login#CODE on the API")
c.check(len(code) == 32 and all(ch in "0123456789abcdef" for ch in code),
        "the code is 128 bits of hex", code)
c.check(mint(d).get("code") != code, "every code is new")
status, hdrs, text = login(d, code)
c.equal(status, 200, "POST /web/session with the code -> 200")
sess = doc_of(text) or {}
csrf = sess.get("csrf", "")
c.equal(sess.get("expires_in"), 43200, "  the session lives 12 hours")
c.check(len(csrf) == 64, "  the reply holds a CSRF token", csrf)
sc = cookie_of(hdrs) or ""
attrs = [a.strip() for a in sc.split(";")]
c.check("HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
        and "Max-Age=43200" in attrs, "  Set-Cookie: HttpOnly; SameSite=Strict; Path=/; Max-Age",
        sc)
cookie = attrs[0]
c.check(csrf not in sc and TOKEN not in sc, "  the cookie is neither the CSRF token nor the token")
status, _, text = login(d, code)
c.equal((status, err(text)), (401, "bad_code"), "the same code a second time -> 401 bad_code")
late = mint(d)["code"]
time.sleep(TTL + 0.5)
status, _, text = login(d, late)
c.equal((status, err(text)), (401, "bad_code"), "a code after its life -> 401 bad_code")
status, _, text = raw(d, "POST", "/api/v1/web/codes", headers={"Cookie": cookie,
                                                              "X-Shoal-CSRF": csrf})
c.equal(status, 401, "the session cookie cannot mint codes (bearer only)")

# --- the cookie as a credential ----------------------------------------------------------
# Browsers send a cookie of 127.0.0.1 to every port of it, so the cookie
# alone is no credential, not even for a GET: a server on another local
# port that the owner is lured to would get it (docs/web.md).
status, _, text = raw(d, "GET", "/api/v1/status", headers={"Cookie": cookie})
c.equal((status, err(text)), (403, "csrf"), "cookie alone, GET /status -> 403 csrf")
status, _, text = raw(d, "GET", "/api/v1/web/session", headers={"Cookie": cookie})
c.equal((status, err(text)), (403, "csrf"), "cookie alone cannot fetch the CSRF token")
status, _, text = raw(d, "GET", "/api/v1/status", headers={"Cookie": cookie, "X-Shoal-CSRF": csrf})
c.equal(status, 200, "cookie + X-Shoal-CSRF, GET /status -> 200")
c.check("node" in (doc_of(text) or {}), "  ... the status")
status, _, text = raw(d, "GET", "/api/v1/status?csrf=" + csrf, headers={"Cookie": cookie})
c.equal(status, 403, "  ?csrf= is taken by the event stream only")
for hdr in ("a=1; %s; b=2" % cookie, "  a=1 ;%s  " % cookie, ["x=y", "a=b; " + cookie],
            "shoal_session=00; " + cookie, 'shoal_session="%s"' % cookie.split("=", 1)[1]):
    status, _, _ = raw(d, "GET", "/api/v1/status", headers={"Cookie": hdr, "X-Shoal-CSRF": csrf})
    c.equal(status, 200, "  Cookie header %r works" % (hdr if isinstance(hdr, str) else hdr)[:50])
status, _, _ = raw(d, "GET", "/api/v1/status", headers={"Cookie": "xshoal_session=" +
                                                        cookie.split("=", 1)[1]})
c.equal(status, 401, "  a cookie of another name is not the session")
status, _, text = raw(d, "GET", "/api/v1/web/session", headers={"Cookie": cookie,
                                                              "X-Shoal-CSRF": csrf})
c.check(status == 200 and (doc_of(text) or {}).get("expires_in", 0) > 0,
        "GET /web/session with the token: the session's time left", text[:100])
share = tmp.sub("shared")
os.makedirs(share)
with open(os.path.join(share, "f.bin"), "wb") as f:
    f.write(os.urandom(20000))
status, _, text = raw(d, "POST", "/api/v1/limits", headers={"Cookie": cookie},
                      body={"upload_limit": 0})
c.equal((status, err(text)), (403, "csrf"), "cookie POST without X-Shoal-CSRF -> 403 csrf")
status, _, text = raw(d, "POST", "/api/v1/swarms", headers={"Cookie": cookie,
                                                           "X-Shoal-CSRF": "0" * 64},
                      body={"share": share})
c.equal((status, err(text)), (403, "csrf"), "cookie POST with a wrong X-Shoal-CSRF -> 403 csrf")
status, _, text = raw(d, "DELETE", "/api/v1/swarms/1", headers={"Cookie": cookie}, body={})
c.equal((status, err(text)), (403, "csrf"), "cookie DELETE without X-Shoal-CSRF -> 403 csrf")
status, _, text = raw(d, "GET", "/api/v1/swarms", token=True)
c.equal((doc_of(text) or {}).get("swarms"), [], "  nothing was shared by the refused requests")
status, _, text = raw(d, "POST", "/api/v1/swarms", headers={"Cookie": cookie,
                                                           "X-Shoal-CSRF": csrf},
                      body={"share": share})
c.check(status in (200, 202), "cookie POST with the right X-Shoal-CSRF -> works",
        "(%s %s)" % (status, text[:100]))
status, _, text = raw(d, "GET", "/api/v1/swarms", token=True)
c.equal(len((doc_of(text) or {}).get("swarms", [])), 1, "  the directory was shared")
# A second session has a CSRF token of its own.
status, hdrs2, text = login(d, mint(d)["code"])
cookie2, csrf2 = (cookie_of(hdrs2) or "").split(";")[0], (doc_of(text) or {}).get("csrf")
status, _, text = raw(d, "POST", "/api/v1/swarms/1/pause", headers={"Cookie": cookie2,
                                                                   "X-Shoal-CSRF": csrf},
                      body={})
c.equal(status, 403, "another session's CSRF token -> 403")

# --- logout -----------------------------------------------------------------------------------
status, _, text = raw(d, "DELETE", "/api/v1/web/session", headers={"Cookie": cookie})
c.equal((status, err(text)), (403, "csrf"), "logout without X-Shoal-CSRF -> 403 csrf")
status, hdrs, text = raw(d, "DELETE", "/api/v1/web/session",
                         headers={"Cookie": cookie, "X-Shoal-CSRF": csrf})
c.equal((status, doc_of(text)), (200, {"logged_out": True}), "logout -> {\"logged_out\": true}")
cleared = cookie_of(hdrs) or ""
c.check(cleared.startswith("shoal_session=;") and "Max-Age=0" in cleared,
        "  Set-Cookie clears the cookie", cleared)
status, _, _ = raw(d, "GET", "/api/v1/status", headers={"Cookie": cookie})
c.equal(status, 401, "the logged-out cookie no longer works")
status, _, _ = raw(d, "GET", "/api/v1/status", headers={"Cookie": cookie2, "X-Shoal-CSRF": csrf2})
c.equal(status, 200, "  the other session still does")

for site in ("cross-site", "same-site"):
    status, _, text = raw(d, "GET", "/api/v1/status", token=True, headers={"Sec-Fetch-Site": site})
    c.equal((status, err(text)), (403, "forbidden_origin"), "Sec-Fetch-Site: %s on the API -> 403" % site)
for site in ("same-origin", "none"):
    status, _, _ = raw(d, "GET", "/api/v1/status", token=True, headers={"Sec-Fetch-Site": site})
    c.equal(status, 200, "Sec-Fetch-Site: %s on the API -> 200" % site)
status, _, _ = raw(d, "GET", "/login", headers={"Sec-Fetch-Site": "cross-site"})
c.equal(status, 200, "  a page may be reached from a link elsewhere (cross-site)")

# --- an event stream opened with the cookie ends with its session -------------------------------
def open_stream(daemon, path, headers):
    hostname, port = daemon.api_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=10)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", daemon.api_addr)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    return conn, conn.getresponse()


status, hdrs3, text = login(d, mint(d)["code"])
cookie3, csrf3 = (cookie_of(hdrs3) or "").split(";")[0], (doc_of(text) or {}).get("csrf")
conn, resp = open_stream(d, "/api/v1/events", {"Cookie": cookie3})
c.equal(resp.status, 403, "GET /events with the cookie alone -> 403")
conn.close()
conn, resp = open_stream(d, "/api/v1/events?csrf=" + "0" * 64, {"Cookie": cookie3})
c.equal(resp.status, 403, "  ... with a wrong ?csrf= -> 403")
conn.close()
conn, resp = open_stream(d, "/api/v1/events?csrf=" + csrf3, {"Cookie": cookie3})
c.equal(resp.status, 200, "GET /events with the cookie and ?csrf= (EventSource sends no header) -> 200")
first = resp.readline()
c.check(first.startswith(b"retry:"), "  the stream starts", repr(first))
status, _, _ = raw(d, "DELETE", "/api/v1/web/session", headers={"Cookie": cookie3, "X-Shoal-CSRF": csrf3})
c.equal(status, 200, "  its session logs out")
t0 = time.monotonic()
ended = False
try:
    while time.monotonic() - t0 < 8:
        if not resp.readline():
            ended = True
            break
except (OSError, http.client.HTTPException):
    ended = True
c.check(ended and time.monotonic() - t0 < 8, "  ... and the daemon ends the stream within seconds (%.1f s)"
        % (time.monotonic() - t0))
conn.close()

# --- the bearer token everywhere -------------------------------------------------------------
for method, path, body in (("GET", "/api/v1/status", None), ("GET", "/api/v1/swarms", None),
                           ("POST", "/api/v1/swarms/1/pause", {}),
                           ("POST", "/api/v1/swarms/1/resume", {})):
    status, _, _ = raw(d, method, path, token=True, body=body)
    c.equal(status, 200, "bearer token, no cookie, no CSRF: %s %s -> 200" % (method, path))

# --- shoal web ----------------------------------------------------------------------------
r = d.cli("web")
c.equal(r.returncode, 0, "shoal web exits 0")
lines = r.stdout.splitlines()
url = lines[0] if lines else ""
c.check(url.startswith("http://%s/login#" % d.api_addr), "shoal web prints the login URL", r.stdout)
c.check("once" in r.stdout and "seconds" in r.stdout, "  and says it works once, for a time")
status, _, _ = login(d, url.split("#", 1)[-1])
c.equal(status, 200, "  its code logs in")
status, _, _ = login(d, url.split("#", 1)[-1])
c.equal(status, 401, "  once")
r = d.cli("web", "--json")
j = doc_of(r.stdout) or {}
c.check(r.returncode == 0 and set(j) == {"code", "expires_in", "url"},
        "shoal web --json prints {code, expires_in, url}", r.stdout)
status, _, _ = login(d, j.get("code"))
c.equal(status, 200, "  its code logs in")
fakebin = tmp.sub("fakebin")
os.makedirs(fakebin)
opened = tmp.sub("opened.txt")
with open(os.path.join(fakebin, "xdg-open"), "w") as f:
    f.write('#!/bin/sh\nprintf "%%s\\n" "$1" > "%s"\n' % opened)
os.chmod(os.path.join(fakebin, "xdg-open"), 0o755)
runtime = tmp.sub("runtime")
os.makedirs(runtime, mode=0o700)
r = d.cli("web", "--open", env={"PATH": fakebin + ":/usr/bin:/bin", "XDG_RUNTIME_DIR": runtime})
c.equal(r.returncode, 0, "shoal web --open exits 0 with an xdg-open")
deadline = time.monotonic() + 10
while time.monotonic() < deadline and not os.path.exists(opened):
    time.sleep(0.05)
time.sleep(0.1)
# The code must never be on a command line (any local user reads those in
# /proc): xdg-open gets a 0600 page that sends the browser on.
page = os.path.join(runtime, "shoal-login.html")
try:
    with open(opened) as f:
        arg = f.read().strip()
    url = r.stdout.splitlines()[0]
    c.equal(arg, page, "  it ran xdg-open PAGE, a file in $XDG_RUNTIME_DIR")
    c.check(url.split("#", 1)[1] not in arg, "  ... whose name holds no code")
    with open(page) as f:
        html = f.read()
    c.check('content="0;url=%s"' % url in html, "  the page sends the browser to the login address")
    c.equal(stat.S_IMODE(os.stat(page).st_mode), 0o600, "  the page is 0600")
    status, _, _ = login(d, url.split("#", 1)[1])
    c.equal(status, 200, "  its code logs in")
except (OSError, IndexError):
    c.check(False, "  it ran xdg-open PAGE", r.stdout + r.stderr)
emptybin = tmp.sub("emptybin")
os.makedirs(emptybin)
r = d.cli("web", "--open", env={"PATH": emptybin})
c.check(r.returncode == 1 and "xdg-open" in r.stderr and "/login#" in r.stdout,
        "without xdg-open: says so, prints the URL, exits 1", "(%s %r %r)" % (
            r.returncode, r.stdout, r.stderr))
r = d.cli("web", "--bogus")
c.equal(r.returncode, 2, "shoal web --bogus -> 2")
r = d.cli("web", "--help")
c.check(r.returncode == 0 and "--open" in r.stdout and "60 seconds" in r.stdout,
        "shoal web --help explains it")
r = d.cli("help", "web")
c.check(r.returncode == 0 and "once" in r.stdout, "shoal help web explains it")
c.equal(d.stop(), 0, "the web daemon stops cleanly")

# Something else holds the API's address (the daemon is down): a login
# address that is not ours is refused, and nothing is opened.
import http.server  # noqa: E402
import threading  # noqa: E402
import subprocess  # noqa: E402
from shoal_harness import SHOAL  # noqa: E402


class Impostor(http.server.BaseHTTPRequestHandler):
    url = ""

    def do_POST(self):
        body = json.dumps({"code": "ab" * 16, "expires_in": 60, "url": Impostor.url}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Impostor)
threading.Thread(target=srv.serve_forever, daemon=True).start()
fake_dir = tmp.sub("impostor")
os.makedirs(fake_dir, mode=0o700)
fake_addr = "127.0.0.1:%d" % srv.server_address[1]
with open(os.path.join(fake_dir, "api.addr"), "w") as f:
    f.write(fake_addr + "\n")
with open(os.path.join(fake_dir, "api.token"), "w") as f:
    f.write("00" * 32 + "\n")
os.chmod(os.path.join(fake_dir, "api.token"), 0o600)
for bad in ("http://evil.example/login#" + "ab" * 16, "file:///etc/passwd#" + "ab" * 16,
            "http://%s/login#%s" % (fake_addr, "cd" * 16)):
    Impostor.url = bad
    if os.path.exists(opened):
        os.unlink(opened)
    r = subprocess.run([SHOAL, "web", "--open", "--data-dir", fake_dir], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, PATH=fakebin + ":/usr/bin:/bin"))
    time.sleep(0.3)
    c.check(r.returncode == 1 and "not a login address" in r.stderr and not os.path.exists(opened),
            "a reply whose url is %r: refused, nothing opened" % bad[:40],
            "(%s %r)" % (r.returncode, r.stderr))
srv.shutdown()

# --- the default web dir: the source tree's, from the build tree; 429 --------------------
e = Daemon(tmp, "dflt").start()
status, _, text = raw(e, "GET", "/")
with open(os.path.join(SRC_WEB, "index.html"), "rb") as f:
    c.check(status == 200 and text == f.read(),
            "no --web-dir: / is the source tree's web/index.html", "(%s)" % status)
# Wrong codes of every shape count against the source's budget (10 a
# minute), like wrong tokens.
for bad in ("", "zz", "0" * 32, "g" * 32, "0" * 31, None, 5, ["x"], "1" * 32, "2" * 64):
    status, _, text = raw(e, "POST", "/api/v1/web/session", body={"code": bad})
    c.equal((status, err(text)), (401, "bad_code"), "code %r -> 401 bad_code" % (bad,))
status, hdrs, text = login(e, "f" * 32)
c.equal((status, err(text)), (429, "too_many_failures"),
        "the 11th wrong code -> 429 too_many_failures")
c.check("retry-after" in hdrs, "  with Retry-After")
m = mint(e)
status, _, _ = login(e, m.get("code"))
c.equal(status, 200, "  a right code still logs in (like the right token)")
status, _, _ = raw(e, "GET", "/api/v1/status", token=True)
c.equal(status, 200, "  the bearer token still works")
c.equal(e.stop(), 0, "the default daemon stops cleanly")

# --- no pages ---------------------------------------------------------------------------------
empty = tmp.sub("empty-web")
os.makedirs(empty)
b = Daemon(tmp, "bare", ["--web-dir", empty]).start()
status, hdrs, text = raw(b, "GET", "/")
c.equal((status, err(text)), (404, "no_web_ui"), "a web dir without index.html: / -> 404 no_web_ui")
c.check(empty in ((doc_of(text) or {}).get("error") or {}).get("message", ""),
        "  the message names the directory")
status, _, _ = raw(b, "GET", "/api/v1/status", token=True)
c.equal(status, 200, "  the API is not affected")
c.equal(b.stop(), 0, "the bare daemon stops cleanly")
c.done()
