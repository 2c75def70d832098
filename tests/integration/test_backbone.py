"""Backbone: a real daemon on loopback, its API guards, the CLI, clean shutdown."""
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, Daemon, TestDir  # noqa: E402

c = Checks("backbone")
tmp = TestDir()
d = Daemon(tmp, "node1").start()

# Files and permissions in the data dir.
c.equal(stat.S_IMODE(os.stat(d.data_dir).st_mode), 0o700, "data dir is 0700")
c.equal(stat.S_IMODE(os.stat(os.path.join(d.data_dir, "api.token")).st_mode), 0o600, "token is 0600")
c.equal(stat.S_IMODE(os.stat(os.path.join(d.data_dir, "shoal.db")).st_mode), 0o600, "database is 0600")
c.check(d.api_addr.startswith("127.0.0.1:"), "API bound to 127.0.0.1 by default", d.api_addr)

# Status.
status, doc, headers = d.request("GET", "/api/v1/status")
c.equal(status, 200, "GET /status answers 200")
c.equal(headers.get("content-type"), "application/json", "status is JSON")
c.check("access-control-allow-origin" not in headers, "no CORS grant on status")
node = (doc or {}).get("node", {})
c.equal(len(node.get("id", "")), 40, "status has a 20-byte hex node id")
c.equal(node.get("data_dir"), d.data_dir, "status names the data dir")
c.equal(node.get("peer_port"), d.port, "status names the peer port")
c.equal(node.get("api"), d.api_addr, "status names the API address")
c.check(isinstance(node.get("uptime_s"), int), "status has uptime")
for section in ("dht", "transfer", "swarms", "peers"):
    c.check(section in (doc or {}), "status has a %s section" % section)
c.check(isinstance(doc["dht"].get("running"), bool), "dht section says whether it runs")
status, doc, _ = d.request("GET", "/api/v1/swarms")
c.equal((status, doc), (200, {"swarms": [], "next": None}),
        "GET /swarms is an empty list, and no page follows")

# Authentication.
status, doc, headers = d.request("GET", "/api/v1/status", token=None)
c.equal(status, 401, "no token -> 401")
c.equal(((doc or {}).get("error") or {}).get("code"), "unauthorized", "401 body is a JSON error")
c.check(headers.get("www-authenticate", "").startswith("Bearer"), "401 names the Bearer scheme")
status, _, _ = d.request("GET", "/api/v1/status", token="00" * 32)
c.equal(status, 401, "wrong token -> 401")
status, _, _ = d.request("GET", "/api/v1/status", token=d.token[:-1])
c.equal(status, 401, "truncated token -> 401")
status, _, _ = d.request("GET", "/api/v1/status", token=False,
                         headers={"Authorization": "Basic " + d.token})
c.equal(status, 401, "token under another scheme -> 401")

# Repeated failures from one source are slowed down, the owner is not locked out.
codes = [d.request("GET", "/api/v1/status", token="11" * 32)[0] for _ in range(12)]
c.check(429 in codes and set(codes) <= {401, 429}, "repeated wrong tokens get 429", str(codes))
status, _, headers = d.request("GET", "/api/v1/status", token="22" * 32)
c.check(status == 429 and headers.get("retry-after"), "429 says when to retry", str(status))
c.equal(d.request("GET", "/api/v1/status")[0], 200, "the right token still works during back-off")

# DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
status, doc, _ = d.request("GET", "/api/v1/status", host="evil.example:%s" % d.api_addr.split(":")[1])
c.equal(status, 403, "Host evil.example -> 403")
c.equal(((doc or {}).get("error") or {}).get("code"), "forbidden_host", "403 body is a JSON error")
status, _, _ = d.request("GET", "/api/v1/status", host="localhost:%s" % d.api_addr.split(":")[1])
c.equal(status, 200, "Host localhost:PORT accepted")

# Bodies, paths, methods.
big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
status, doc, _ = d.request("POST", "/api/v1/swarms", raw_body=big,
                           headers={"Content-Type": "application/json"})
c.equal(status, 413, "body over 1 MiB -> 413")
c.equal(((doc or {}).get("error") or {}).get("code"), "body_too_large", "413 body is a JSON error")
status, doc, _ = d.request("GET", "/api/v1/nothing")
c.equal(status, 404, "unknown path -> 404")
c.check(doc is not None and "error" in doc, "404 body is JSON")
status, doc, headers = d.request("DELETE", "/api/v1/status", raw_body=b"")
c.equal(status, 405, "wrong method -> 405")
c.equal(headers.get("allow"), "GET", "405 names the allowed method")
status, _, headers = d.request("OPTIONS", "/api/v1/status",
                               headers={"Origin": "http://evil.example",
                                        "Access-Control-Request-Method": "POST"})
c.check(status >= 400 and "access-control-allow-origin" not in headers,
        "CORS preflight is not granted", "(status %s)" % status)

# The CLI.
r = d.cli("status")
c.equal(r.returncode, 0, "shoal status exits 0")
c.check(node.get("id", "?") in r.stdout and "DHT" in r.stdout, "shoal status prints id and DHT line", r.stderr)
r = d.cli("status", "--json")
c.equal(r.returncode, 0, "shoal status --json exits 0")
try:
    c.equal(json.loads(r.stdout)["node"]["id"], node.get("id"), "status --json is the API's JSON")
except ValueError:
    c.check(False, "status --json is the API's JSON", r.stdout[:200])
r = d.cli("token")
c.equal(r.stdout.strip(), d.token, "shoal token prints the token")
# --data-dir may also come before the command, as in `shoal --data-dir D status`.
for pre in (["--data-dir", d.data_dir], ["--data-dir=" + d.data_dir]):
    r = subprocess.run([SHOAL] + pre + ["token"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, SHOAL_DATA_DIR="/nonexistent"))
    c.check(r.returncode == 0 and r.stdout.strip() == d.token,
            "shoal %s token: the option before the command" % pre[0][:10], r.stderr.strip())
r = subprocess.run([SHOAL, "--data-dir"], capture_output=True, text=True, timeout=10)
c.check(r.returncode == 2 and "--data-dir" in r.stderr, "shoal --data-dir (no value, no command) is a usage error",
        r.stderr.strip())
r = subprocess.run([SHOAL, "frobnicate"], capture_output=True, text=True, timeout=10)
c.equal(r.returncode, 2, "unknown command exits 2")
c.check("unknown command" in r.stderr and "Usage" in r.stderr, "unknown command prints usage on stderr")
r = subprocess.run([SHOAL, "status", "--bogus"], capture_output=True, text=True, timeout=10)
c.equal(r.returncode, 2, "bad flag exits 2")
for args in (["--help"], ["help", "status"], ["status", "--help"], ["daemon", "--help"]):
    r = subprocess.run([SHOAL] + args, capture_output=True, text=True, timeout=10)
    c.check(r.returncode == 0 and "Usage" in r.stdout, "shoal %s prints usage, exit 0" % " ".join(args))
r = subprocess.run([SHOAL, "status"], capture_output=True, text=True, timeout=10,
                   env=dict(os.environ, SHOAL_DATA_DIR=d.data_dir))
c.equal(r.returncode, 0, "SHOAL_DATA_DIR selects the node")

# A second daemon on the same data dir is refused at once.
t0 = time.monotonic()
second = Daemon(tmp, "node1")
second.start(expect_ok=False)
rc = second.proc.wait(timeout=10)
c.check(rc != 0, "second daemon on the same data dir exits non-zero", "(rc %s)" % rc)
c.check(time.monotonic() - t0 < 5, "second daemon fails fast")
c.check(("pid %d" % d.proc.pid) in second.log(), "its message names the running daemon's pid", second.log())

# Clean shutdown.
t0 = time.monotonic()
rc = d.stop(signal.SIGTERM)
c.equal(rc, 0, "SIGTERM -> exit 0")
c.check(time.monotonic() - t0 < 5, "stops within 5 s")
c.check(not os.path.exists(os.path.join(d.data_dir, "api.addr")), "API address withdrawn")
db = sqlite3.connect(os.path.join(d.data_dir, "shoal.db"))
c.equal(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", "database integrity_check = ok")
c.equal(db.execute("PRAGMA user_version").fetchone()[0] >= 1, True, "schema version recorded")
db.close()
r = d.cli("status")
c.equal(r.returncode, 3, "shoal status without a daemon exits 3")
c.check("no shoal daemon for" in r.stderr and "shoal daemon" in r.stderr, "and says how to start one", r.stderr)

# Restart keeps the identity; SIGINT also stops cleanly.
d2 = Daemon(tmp, "node1").start()
c.equal(d2.api("GET", "/api/v1/status")["node"]["id"], node.get("id"), "node id survives a restart")
c.equal(d2.stop(signal.SIGINT), 0, "SIGINT -> exit 0")

# Settings file: flags win; a bad key is refused with its line.
with open(os.path.join(d.data_dir, "shoal.conf"), "w") as f:
    f.write("# test\nupload-limit = 1M\nencryption = off\n")
d3 = Daemon(tmp, "node1", ["--encryption", "require"]).start()
xfer = d3.api("GET", "/api/v1/status")["transfer"]
c.equal(xfer.get("upload_limit"), 1024 * 1024, "shoal.conf sets upload-limit")
c.equal(xfer.get("encryption"), "require", "flag overrides shoal.conf")
c.equal(d3.stop(), 0, "stopped")
with open(os.path.join(d.data_dir, "shoal.conf"), "w") as f:
    f.write("colour = blue\n")
bad = Daemon(tmp, "node1")
bad.start(expect_ok=False)
c.equal(bad.proc.wait(timeout=10), 2, "unknown key in shoal.conf -> exit 2")
c.check("shoal.conf:1" in bad.log(), "message names file and line", bad.log())
os.unlink(os.path.join(d.data_dir, "shoal.conf"))
bad = Daemon(tmp, "flagtypo", ["--upload-limit", "fast"])
bad.start(expect_ok=False)
c.equal(bad.proc.wait(timeout=10), 2, "bad flag value -> exit 2")
c.check(not os.path.exists(bad.data_dir), "and nothing was created")

# A corrupt database is refused and left as it was.
path = os.path.join(d.data_dir, "shoal.db")
with open(path, "r+b") as f:
    f.seek(0)
    f.write(b"this is not sqlite" * 10)
with open(path, "rb") as f:
    before = f.read()
bad = Daemon(tmp, "node1")
bad.start(expect_ok=False)
c.equal(bad.proc.wait(timeout=10), 1, "corrupt database -> exit 1")
c.check("refusing" in bad.log(), "with a clear message", bad.log())
with open(path, "rb") as f:
    c.check(f.read() == before, "corrupt database left untouched")

c.done()
