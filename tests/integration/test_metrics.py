"""GET /metrics (node/api_metrics.c, docs/metrics.md): the text passes
`promtool check metrics`; names and labels follow the conventions and come
from fixed sets; a download moves the counters by the bytes it moved; the
API token and the read-only metrics token open it, and the metrics token
opens nothing else."""
import http.client
import os
import signal
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, Daemon, TestDir, wait_for, wait_state, write_file  # noqa: E402

PROMTOOL = shutil.which("promtool")
if not PROMTOOL:
    # CI installs it (scripts/deps.sh: Debian's prometheus package).
    print("# SKIP: promtool (Debian package prometheus) is not installed")
    sys.exit(77)

c = Checks("metrics")
tmp = TestDir()
SIZE = 4 * 1024 * 1024 + 4321


def scrape(d, token=True, method="GET"):
    """(status, text, headers) of METHOD /metrics on daemon `d`."""
    host, port = d.api_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=15)
    h = {"Host": d.api_addr}
    if token is True:
        h["Authorization"] = "Bearer " + d.token
    elif token:
        h["Authorization"] = "Bearer " + token
    conn.request(method, "/metrics", headers=h)
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, body, {k.lower(): v for k, v in r.getheaders()}


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """({(name, frozenset(labels.items())): value}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            samples[("unparsable", frozenset())] = line
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def metrics(d):
    status, text, _ = scrape(d)
    assert status == 200, "GET /metrics -> %s" % status
    return parse(text)[0]


# ---------------------------------------------------------------- daemons
# The seed names its metrics token in a file of its own (metrics-token-file);
# the leecher's comes from `shoal token --metrics` (DATA_DIR/metrics.token).
seed_token = "ab" * 32
token_file = tmp.sub("scraper.token")
write_file(token_file, (seed_token + "\n").encode())
# Shared with the scraper's group on purpose: the daemon must leave the mode.
os.chmod(token_file, 0o640)
seed = Daemon(tmp, "seed", ["--metrics-token-file", token_file])
leech = Daemon(tmp, "leech", ["--bootstrap", "127.0.0.1:%d" % seed.port])
os.makedirs(leech.data_dir, exist_ok=True)
r = subprocess.run([SHOAL, "token", "--metrics", "--data-dir", leech.data_dir],
                   capture_output=True, text=True, timeout=30)
c.equal(r.returncode, 0, "shoal token --metrics exits 0")
leech_token = r.stdout.strip()
c.check(re.fullmatch(r"[0-9a-f]{64}", leech_token) is not None, "... and prints 64 hex digits",
        repr(r.stdout))
mt_path = os.path.join(leech.data_dir, "metrics.token")
c.equal(os.stat(mt_path).st_mode & 0o777, 0o600, "metrics.token is made 0600")
r2 = subprocess.run([SHOAL, "token", "--metrics", "--data-dir", leech.data_dir],
                    capture_output=True, text=True, timeout=30)
c.equal(r2.stdout.strip(), leech_token, "a second shoal token --metrics prints the same token")
seed.start()
leech.start()

# A metrics-token-file that cannot be read stops the start (exit 1).
bad = Daemon(tmp, "bad", ["--metrics-token-file", tmp.sub("missing.token")])
bad.start(expect_ok=False)
try:
    rc = bad.proc.wait(timeout=15)
except subprocess.TimeoutExpired:
    rc = None
c.check(rc == 1 and "missing.token" in bad.log(), "a missing metrics-token-file: exit 1, named",
        "(rc %r) %s" % (rc, bad.log()[-300:]))
bad.stop()

# A FIFO named as the token file is refused at once, never waited on.
fifo = tmp.sub("fifo.token")
os.mkfifo(fifo, 0o600)
bad = Daemon(tmp, "bad-fifo", ["--metrics-token-file", fifo])
bad.start(expect_ok=False)
try:
    rc = bad.proc.wait(timeout=15)
except subprocess.TimeoutExpired:
    rc = None
c.check(rc == 1 and "not a regular file" in bad.log(), "a FIFO as metrics-token-file: exit 1, "
        "not a hang", "(rc %r) %s" % (rc, bad.log()[-300:]))
bad.stop()

# A DATA_DIR/metrics.token the daemon cannot use (here a FIFO) is warned
# about, not fatal: a service must not restart in a loop over it.
odd = Daemon(tmp, "odd")
os.makedirs(odd.data_dir, mode=0o700, exist_ok=True)
os.mkfifo(os.path.join(odd.data_dir, "metrics.token"), 0o600)
odd.start()
c.check("GET /metrics takes only the API token" in odd.log(),
        "an unusable DATA_DIR/metrics.token: a warning, and the daemon runs")
c.equal(scrape(odd)[0], 200, "... where the API token reads the metrics")
c.equal(odd.stop(), 0, "... and it stops cleanly")

# Root making the token of a data dir another user owns gives the file to
# that user (the service's /var/lib/shoal, where the daemon runs as shoal).
if os.geteuid() == 0:
    other = tmp.sub("other-data")
    os.makedirs(other, mode=0o700)
    os.chown(other, 65534, 65534)
    r = subprocess.run([SHOAL, "token", "--metrics", "--data-dir", other],
                       capture_output=True, text=True, timeout=30)
    st = os.stat(os.path.join(other, "metrics.token")) if r.returncode == 0 else None
    c.check(st is not None and (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600),
            "root's shoal token --metrics gives the file to the data dir's owner, 0600",
            "(rc %d %s %r)" % (r.returncode, r.stderr.strip(), st and (st.st_uid, st.st_mode)))
else:
    print("ok - # SKIP not root: the token file's owner is not checked")

c.equal(os.stat(token_file).st_mode & 0o777, 0o640,
        "the daemon leaves a shared metrics-token-file's mode as it was (0640)")

# ------------------------------------------------------------ 1. promtool
status, text, headers = scrape(seed)
c.equal(status, 200, "GET /metrics with the API token: 200")
c.equal(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8",
        "Content-Type of the text exposition format")
prom_file = tmp.sub("seed.prom")
with open(prom_file, "w") as f:
    f.write(text)
with open(prom_file) as f:
    p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True, text=True,
                       timeout=60)
c.check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
        "promtool check metrics: rc 0 and no lint", "rc %d: %s %s" % (p.returncode, p.stdout, p.stderr))

# ----------------------------------------------------- 2. names and labels
samples, types = parse(text)
c.check(("unparsable", frozenset()) not in samples, "every sample line parses",
        str(samples.get(("unparsable", frozenset()))))
c.check(all(n.startswith("shoal_") for n in types), "every family starts with shoal_",
        str([n for n in types if not n.startswith("shoal_")]))
c.check(all(n.endswith("_total") for n, t in types.items() if t == "counter"),
        "every counter ends in _total", str([n for n, t in types.items() if t == "counter"]))
c.check(all(not n.endswith("_total") for n, t in types.items() if t != "counter"),
        "no gauge or histogram ends in _total")
for want in ("shoal_build_info", "shoal_swarms", "shoal_peers_connected",
             "shoal_payload_bytes_total", "shoal_protocol_bytes_total", "shoal_hash_failures_total",
             "shoal_peer_bans_total", "shoal_dht_nodes", "shoal_dht_queries_sent_total",
             "shoal_dht_queries_received_total", "shoal_tracker_announces_total",
             "shoal_disk_read_bytes_total", "shoal_disk_written_bytes_total",
             "shoal_fdatasync_duration_seconds", "shoal_sqlite_commit_duration_seconds",
             "shoal_api_requests_total"):
    c.check(want in types, "family %s is there" % want)
c.equal(types.get("shoal_fdatasync_duration_seconds"), "histogram", "fdatasync times: a histogram")
c.equal(types.get("shoal_sqlite_commit_duration_seconds"), "histogram", "commit times: a histogram")
version = subprocess.run([SHOAL, "--version"], capture_output=True, text=True).stdout.split()
bi = [lab for (n, lab) in samples if n == "shoal_build_info"]
c.check(len(bi) == 1 and dict(bi[0]).get("sha256") in ("openssl", "libsodium") and
        dict(bi[0]).get("version") in version, "shoal_build_info{version,sha256} 1", str(bi))
STATES = {"hashing", "checking", "metadata", "downloading", "seeding", "paused", "error"}
LE = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
      "2.5", "5", "10", "+Inf"}
ALLOWED = {
    "state": STATES, "transport": {"plain", "encrypted"},
    "direction": {"inbound", "outbound", "download", "upload"}, "family": {"ipv4", "ipv6"},
    "type": {"ping", "find_node", "get_peers", "announce_peer"},
    "result": {"ok", "error", "timeout"}, "protocol": {"http", "https", "udp"},
    "code": {str(x) for x in (200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 409, 410,
                              413, 415, 416, 422, 429, 500, 503)} | {"other"},
    "le": LE, "sha256": {"openssl", "libsodium"}, "version": set(version),
}
bad_labels = [(n, k, v) for (n, lab) in samples for (k, v) in lab
              if k not in ALLOWED or v not in ALLOWED[k]]
c.check(not bad_labels, "every label value comes from a fixed set", str(bad_labels[:5]))
c.check(not any(re.search(r"id|name|hash", k) for (_, lab) in samples for (k, _) in lab),
        "no label named like an id, a name or a hash")

# --------------------------------------------------------- 3. a download
src = tmp.sub("content")
write_file(os.path.join(src, "payload.bin"), os.urandom(SIZE))
r = seed.cli("share", src)
c.equal(r.returncode, 0, "the seed shares a 4 MiB directory")
magnet = r.stdout.split("\n")[0]
wait_state(seed, 1)
s0, l0 = metrics(seed), metrics(leech)
c.equal(value(s0, "shoal_swarms", state="seeding"), 1, "shoal_swarms{state=seeding} is 1 on the seed")
dl = tmp.sub("dl")
os.makedirs(dl)
r = leech.cli("join", magnet, "--into", dl, "--peer", "127.0.0.1:%d" % seed.port, "--wait",
              timeout=120)
c.equal(r.returncode, 0, "the leecher downloads it")
wait_state(leech, 1)
# Pieces are durable only after their fdatasync: wait for the histogram.
wait_for("the leecher's fdatasync", lambda: value(metrics(leech), "shoal_fdatasync_duration_seconds_count")
         > value(l0, "shoal_fdatasync_duration_seconds_count"), 20)
s1, l1 = metrics(seed), metrics(leech)


def grew(a, b, name, **labels):
    return (value(b, name, **labels) or 0) - (value(a, name, **labels) or 0)


down = grew(l0, l1, "shoal_payload_bytes_total", direction="download")
up = grew(s0, s1, "shoal_payload_bytes_total", direction="upload")
c.check(SIZE <= down < 1.2 * SIZE, "the leecher's payload download grew by the file's size",
        "(%d for %d)" % (down, SIZE))
c.check(SIZE <= up < 1.2 * SIZE, "the seed's payload upload grew by the file's size",
        "(%d for %d)" % (up, SIZE))
c.check(grew(l0, l1, "shoal_disk_written_bytes_total") >= SIZE,
        "the leecher's disk written grew by at least the file's size",
        str(grew(l0, l1, "shoal_disk_written_bytes_total")))
c.check(grew(s0, s1, "shoal_disk_read_bytes_total") >= SIZE,
        "the seed's disk read grew by at least the file's size",
        str(grew(s0, s1, "shoal_disk_read_bytes_total")))
c.check(grew(l0, l1, "shoal_fdatasync_duration_seconds_count") >= 1,
        "the leecher's fdatasync histogram counted its syncs")
c.check(value(l1, "shoal_fdatasync_duration_seconds_bucket", le="+Inf") ==
        value(l1, "shoal_fdatasync_duration_seconds_count"), "... +Inf bucket equals _count")
c.check(grew(l0, l1, "shoal_sqlite_commit_duration_seconds_count") >= 1,
        "the leecher's SQLite commits were timed")
pd, pu = (grew(l0, l1, "shoal_protocol_bytes_total", direction=d) for d in ("download", "upload"))
c.check(0 < pd < SIZE / 4 and 0 < pu < SIZE / 4,
        "protocol bytes moved both ways, far fewer than the payload", "(%d down, %d up)" % (pd, pu))
c.equal(value(l1, "shoal_swarms", state="seeding"), 1, "the leecher counts one seeding swarm")
c.equal(value(l1, "shoal_hash_failures_total"), 0, "no hash failure")
c.equal(value(l1, "shoal_peer_bans_total"), 0, "no ban")
# The DHT: the leecher bootstrapped from the seed's node, on loopback.
ok = wait_for("DHT queries", lambda: (lambda m: (value(m, "shoal_dht_queries_sent_total", type="ping",
                                                        result="ok") or 0) +
                                        (value(m, "shoal_dht_queries_sent_total", type="find_node",
                                                result="ok") or 0))(metrics(leech)) > 0, 20)
c.check(ok, "the leecher's DHT queries to the seed are counted as answered")
sm = metrics(seed)
c.check(sum(value(sm, "shoal_dht_queries_received_total", type=t, result="ok") or 0
            for t in ("ping", "find_node", "get_peers", "announce_peer")) > 0,
        "the seed counts the queries it answered")
c.check((value(sm, "shoal_dht_nodes", family="ipv4") or 0) >= 1,
        "the seed's routing table holds the leecher")
# A connection while it lasts: counted by transport and direction.
seed_peers = seed.api("GET", "/api/v1/swarms/1/peers")["peers"]
connected = sum(value(sm, "shoal_peers_connected", transport=t, direction=d) or 0
                for t in ("plain", "encrypted") for d in ("inbound", "outbound"))
c.equal(connected, len(seed_peers), "shoal_peers_connected sums to the seed's connections")
if seed_peers:
    c.check((value(sm, "shoal_peers_connected", transport="encrypted", direction="inbound") or 0) >= 1,
            "the leecher's connection is encrypted and inbound on the seed")

# -------------------------------------------------------------- 4. tokens
before = metrics(seed)
st, _, h = scrape(seed, token=None)
c.equal(st, 401, "no token: 401")
c.check("bearer" in h.get("www-authenticate", "").lower(), "... with WWW-Authenticate: Bearer")
c.equal(scrape(seed, token="cd" * 32)[0], 401, "a wrong token: 401")
c.equal(scrape(seed, token=seed_token)[0], 200, "the seed's metrics-token-file token: 200")
c.equal(scrape(leech, token=leech_token)[0], 200, "the leecher's metrics.token: 200")
c.equal(scrape(leech, token=seed_token)[0], 401, "another node's metrics token: 401")
for path in ("/api/v1/status", "/api/v1/swarms", "/api/v1/web/codes"):
    st, _, _ = seed.request("GET", path, token=seed_token)
    c.check(st in (401, 403), "the metrics token is refused on GET %s" % path, "(%d)" % st)
st, _, _ = seed.request("POST", "/api/v1/limits", body={"upload": 0}, token=seed_token)
c.check(st in (401, 403), "the metrics token cannot change anything", "(%d)" % st)
c.equal(scrape(seed, method="POST")[0], 405, "POST /metrics with a token: 405")
after = metrics(seed)
# On the seed: no token, a wrong one, and the metrics token on four API routes.
c.equal(grew(before, after, "shoal_api_requests_total", code="401"), 6,
        "the six refusals are counted as code=401")
c.check(grew(before, after, "shoal_api_requests_total", code="200") >= 1,
        "the scrapes are counted as code=200")

# SIGHUP re-reads the metrics token: one rewritten in place replaces the
# old, and a deleted DATA_DIR/metrics.token leaves only the API token.
new_token = os.urandom(32).hex()
with open(mt_path + ".new", "w") as f:
    f.write(new_token + "\n")
os.chmod(mt_path + ".new", 0o600)
os.replace(mt_path + ".new", mt_path)
mark = len(leech.log())
leech.proc.send_signal(signal.SIGHUP)
c.check(wait_for("the reload", lambda: "reloaded settings" in leech.log()[mark:], 10),
        "the leecher reloads on SIGHUP")
c.check("metrics token" in leech.log()[mark:], "the reload names the changed metrics token")
c.equal(scrape(leech, token=new_token)[0], 200, "after SIGHUP the rewritten metrics token: 200")
c.equal(scrape(leech, token=leech_token)[0], 401, "after SIGHUP the old metrics token: 401")
os.unlink(mt_path)
mark = len(leech.log())
leech.proc.send_signal(signal.SIGHUP)
c.check(wait_for("the reload", lambda: "reloaded settings" in leech.log()[mark:], 10),
        "the leecher reloads again")
c.equal(scrape(leech, token=new_token)[0], 401, "metrics.token deleted, SIGHUP: that token 401")
c.equal(scrape(leech)[0], 200, "... and the API token still reads the metrics")

# ------------------------------------------------------------ 5. trackers
# A share announcing to three trackers, one tier each: an HTTP tracker that
# answers, one that gives a failure reason, and a UDP tracker that answers
# (tests/integration/fake_tracker.py, on loopback).
from fake_tracker import HttpTracker, UdpTracker  # noqa: E402
ht, ut = HttpTracker(), UdpTracker()
src2 = tmp.sub("tracked")
write_file(os.path.join(src2, "t.bin"), os.urandom(100000))
r = seed.cli("share", src2, "--tracker", ht.url("announce"), "--tracker", ht.url("fail/announce"),
             "--tracker", ut.url())
c.equal(r.returncode, 0, "the seed shares a directory with three trackers")


def announces():
    m = metrics(seed)
    return {(p, res): value(m, "shoal_tracker_announces_total", protocol=p, result=res)
            for p in ("http", "udp") for res in ("ok", "error")}


got = wait_for("the announces", lambda: (lambda a: a[("http", "ok")] >= 1 and a[("http", "error")] >= 1
                                         and a[("udp", "ok")] >= 1 and a)(announces()), 30)
c.check(bool(got), "announces are counted by protocol and result (http ok, http error, udp ok)",
        str(announces()))
ht.stop()
ut.stop()

c.equal(leech.stop(), 0, "the leecher stops cleanly")
c.equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
