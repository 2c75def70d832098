"""A hostile seed: libtorrent serving a copy of the data with many corrupted
pieces, next to an honest (rate-limited) shoal seed.  A shoal leecher joining
from a magnet with both as --peer must finish byte-identical, count the hash
failures (transfer.hash_failures >= 1) and ban the corrupt peer: it leaves
/peers and stays out, a reconnect from it during the download is refused, and
shoal never dials it again.

The corrupt peer is made as attractive as possible: it is started first, it
is the first --peer, it is unthrottled while the honest seed is capped at
1 MiB/s, and two of every three pieces it serves are wrong.  (libtorrent
verifies its copy first and has it corrupted under it afterwards: 2.0.8's
seed_mode hashes each piece on its first request and leaves seed mode at a
mismatch, so it would not serve bad data; LT_SEED_MODE=1 shows that.)
Every wait is bounded; daemons are stopped by PID.  Exit 77 only if
libtorrent cannot be imported.
"""
import hashlib
import http.client
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
from shoal_harness import Checks, Daemon, TestDir  # noqa: E402

try:
    import libtorrent  # noqa: F401
    import lt_peer  # noqa: E402
except ImportError as e:
    print("SKIP: cannot import libtorrent (%s); run with /usr/bin/python3" % e)
    sys.exit(77)

TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "120"))
SIZE = 12 * 1000 * 1000 + 4321
HONEST_LIMIT = "1M"
SEED_MODE = os.environ.get("LT_SEED_MODE", "0") == "1"   # see below          # the honest seed's upload cap (bytes/s, binary units)

c = Checks("corrupt_peer")
tmp = TestDir("shoal-corrupt-")


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# The honest data, shared by an honest shoal seed (capped so the corrupt peer
# looks faster and gets most requests).
good = tmp.sub("good", "data")
write(os.path.join(good, "sub", "big.bin"), os.urandom(SIZE))
write(os.path.join(good, "note.txt"), b"the honest copy\n")
honest = Daemon(tmp, "honest", ["--upload-limit", HONEST_LIMIT]).start()
r = honest.cli("share", good, timeout=TIMEOUT)
c.equal(r.returncode, 0, "honest shoal seed shares the data")
magnet, torrent = (r.stdout.strip().split("\n") + ["", ""])[:2]
sw = honest.api("GET", "/api/v1/swarms/1")
plen = sw["piece_length"]

# The corrupt peer: libtorrent seeding its own copy of the data, which is
# then corrupted under it: one byte flipped in 2 of every 3 pieces of the big
# file (its last, partial piece included).  libtorrent 2.0.8 reads through
# mmap and never re-hashes a piece it has verified, so it serves the flipped
# bytes.  (Adding the corrupt copy in seed_mode is not enough with 2.0.8: it
# hashes each piece on its first request, drops out of seed mode at the first
# mismatch and starts downloading instead, as this test first observed.)
bad_parent = tmp.sub("bad")
shutil.copytree(good, os.path.join(bad_parent, "data"))
bad_big = os.path.join(bad_parent, "data", "sub", "big.bin")
ses = lt_peer.session()
h = lt_peer.add(ses, torrent, bad_parent, seed_mode=SEED_MODE)
t0 = time.monotonic()
while not h.status().is_seeding and time.monotonic() - t0 < 30:
    time.sleep(0.05)
c.check(h.status().is_seeding, "libtorrent seeds its copy (seed_mode=%s)" % SEED_MODE)
npieces = (SIZE + plen - 1) // plen
corrupted = [i for i in range(npieces) if i % 3 != 2]
with open(bad_big, "r+b") as f:
    for i in corrupted:
        off = i * plen + min(plen, SIZE - i * plen) // 2
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
c.check(len(corrupted) > 0 and sha(bad_big) != sha(os.path.join(good, "sub", "big.bin")),
        "its copy is then corrupted: %d of %d pieces of %d bytes wrong" % (
            len(corrupted), npieces, plen))
lt_port = ses.listen_port()

leech = Daemon(tmp, "leech", ["--log-level", "debug"]).start()
out = tmp.sub("out")
os.makedirs(out)
r = leech.cli("join", magnet, "--into", out, "--peer", "127.0.0.1:%d" % lt_port,
              "--peer", "127.0.0.1:%d" % honest.port, "--json", timeout=TIMEOUT)
c.check(r.returncode == 0, "shoal join MAGNET --peer CORRUPT --peer HONEST exits 0",
        r.stdout + r.stderr)
try:
    sid = json.loads(r.stdout)["swarm"]["id"]
except (ValueError, KeyError, TypeError):
    sid = 1


def is_lt(p):
    """Is this /peers entry the libtorrent peer (by client name or its port)?"""
    client = str(p.get("client", "")).lower()
    addr = str(p.get("address", ""))
    return client.startswith("lt_peer/") or "libtorrent" in client or addr.endswith(":%d" % lt_port)


def poll_leech():
    sw = leech.api("GET", "/api/v1/swarms/%s" % sid)
    _, doc, _ = leech.request("GET", "/api/v1/swarms/%s/peers" % sid)
    peers = (doc or {}).get("peers", [])
    if os.environ.get("CORRUPT_DEBUG"):
        print("# %.2f %s hf=%d peers=%s" % (time.monotonic() - t0, sw["state"],
              sw["transfer"]["hash_failures"], [(p.get("address"), p.get("client")) for p in peers]))
    return sw, [p for p in peers if is_lt(p)]


# 1. Until the first hash failure.  (The corrupt peer is usually gone within
#    tens of milliseconds, faster than /peers can be polled.)
t0 = time.monotonic()
sw, listed = poll_leech()
while sw["transfer"]["hash_failures"] < 1 and sw["state"] not in ("seeding", "error") \
        and time.monotonic() - t0 < TIMEOUT:
    time.sleep(0.05)
    sw, listed = poll_leech()
c.check(sw["transfer"]["hash_failures"] >= 1, "the leecher counts a hash failure (%d after %.1fs)"
        % (sw["transfer"]["hash_failures"], time.monotonic() - t0), "(%r)" % sw["transfer"])
lt_up = lt_peer.status(h)["uploaded"]
c.check(lt_up > 0, "the corrupt peer did serve the leecher (%d bytes)" % lt_up)
still_downloading = sw["state"] in ("metadata", "downloading")
c.check(still_downloading, "the download is still going (so a ban can be seen)", sw["state"])

# 2. The corrupt peer leaves /peers within 2 s.
gone_t = None
dl = time.monotonic() + 2
while time.monotonic() < dl:
    sw, listed = poll_leech()
    if not listed:
        gone_t = time.monotonic()
        break
    time.sleep(0.05)
c.check(gone_t is not None, "the corrupt peer is out of /peers within 2 s of the failure")

# 3. It knocks again from its own listen port (a fresh libtorrent session on
#    the same port, so shoal recognises it from the extended handshake), while
#    shoal still downloads: shoal must not keep the connection.
ses.remove_torrent(h)
del h, ses
ses = lt_peer.session(lt_port)
ses.apply_settings({"alert_mask": libtorrent.alert.category_t.peer_notification
                    | libtorrent.alert.category_t.connect_notification
                    | libtorrent.alert.category_t.error_notification})
h = lt_peer.add(ses, torrent, bad_parent, seed_mode=True)
lt_peer.connect(h, leech.port)
leech_ep = ("127.0.0.1", leech.port)
events = []
listed_polls = 0
rt0 = time.monotonic()
while time.monotonic() - rt0 < 4:
    for a in ses.pop_alerts():
        ep = getattr(a, "endpoint", None) or getattr(a, "ip", None)
        if ep is not None and tuple(ep) == leech_ep:
            events.append((round(time.monotonic() - rt0, 2), a.what(), a.message()[-80:]))
    sw, listed = poll_leech()
    listed_polls += bool(listed)
    time.sleep(0.1)
connected_now = [p for p in h.get_peer_info() if tuple(p.ip) == leech_ep]
reached = any(w in ("peer_connected", "peer_connect", "peer_disconnected") for _, w, _ in events)
c.check(reached, "the banned peer's reconnect reached shoal", "(libtorrent events %r)" % events)
c.check(sw["state"] in ("metadata", "downloading", "seeding"), "(while shoal was downloading: %s)"
        % sw["state"])
c.equal(connected_now, [], "shoal refuses the banned peer's reconnect (no connection after 4 s)")
c.equal(listed_polls, 0, "and never lists it in /peers")
print("# reconnect events: %r" % events)

# 4. Completion, from the honest seed alone.
while sw["state"] not in ("seeding", "error") and time.monotonic() - t0 < TIMEOUT:
    time.sleep(0.1)
    sw, listed = poll_leech()
    listed_polls += bool(listed)
elapsed = time.monotonic() - t0
c.equal(sw["state"], "seeding", "leecher completes (%.1fs)" % elapsed)
c.equal(sha(os.path.join(out, "data", "sub", "big.bin")), sha(os.path.join(good, "sub", "big.bin")),
        "big file is byte-identical to the honest copy")
note = os.path.join(out, "data", "note.txt")
c.check(os.path.isfile(note) and open(note, "rb").read() == b"the honest copy\n",
        "small file is byte-identical")
c.equal(listed_polls, 0, "the corrupt peer never reappeared in /peers after the ban")
c.check(sw["transfer"]["hash_failures"] >= 1, "transfer.hash_failures >= 1 at the end (%d)"
        % sw["transfer"]["hash_failures"])

# 4a. GET /metrics counts them too (docs/metrics.md).
mhost, mport = leech.api_addr.rsplit(":", 1)
mconn = http.client.HTTPConnection(mhost, int(mport), timeout=15)
mconn.request("GET", "/metrics", headers={"Host": leech.api_addr,
                                          "Authorization": "Bearer " + leech.token})
mtext = mconn.getresponse().read().decode()
mconn.close()
mvals = dict(l.rsplit(" ", 1) for l in mtext.splitlines() if l and not l.startswith("#"))
c.equal(int(mvals.get("shoal_hash_failures_total", -1)), sw["transfer"]["hash_failures"],
        "shoal_hash_failures_total is the swarm's count of hash failures")
c.check(int(mvals.get("shoal_peer_bans_total", 0)) >= 1, "shoal_peer_bans_total counts the ban",
        mvals.get("shoal_peer_bans_total"))

# 5. The log: a ban, and no outgoing connection to the banned address after it.
log = leech.log()
ban_at = log.find("banning 127.0.0.1:%d" % lt_port)
c.check(ban_at >= 0, "the leecher's log records the ban of 127.0.0.1:%d" % lt_port)
redial = [l for l in log[ban_at:].splitlines()
          if "127.0.0.1:%d: connected" % lt_port in l] if ban_at >= 0 else []
c.equal(redial, [], "shoal never dials the banned peer again")
ses.remove_torrent(h)
del h, ses
c.equal(leech.stop(), 0, "leecher stops cleanly")
c.equal(honest.stop(), 0, "honest seed stops cleanly")
c.done()
