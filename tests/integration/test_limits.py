"""Per-swarm limits: a swarm's upload limit is divided among its connections
by demand.  One downloader cannot take more than a trickle (its own download
limit); the other gets what the first leaves, not half the limit."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, tree_digest, wait_for,  # noqa: E402
                           wait_state, write_file)

MiB = 1024 * 1024
LIMIT = 4 * MiB          # the seed swarm's upload limit
TRICKLE = 256 * 1024     # the slow downloader's own download limit
SIZE = 24 * MiB

c = Checks("limits")
tmp = TestDir()
src = tmp.sub("content")
write_file(os.path.join(src, "blob.bin"), os.urandom(SIZE))
want = tree_digest(src)

seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
c.equal(r.returncode, 0, "seed shares the directory")
torrent = r.stdout.split("\n")[1]
r = seed.cli("limit", "1", "--upload", "4M")
c.equal(r.returncode, 0, "a 4 MiB/s upload limit on the seed's swarm")

# Neither downloader uploads (--no-upload), so all data comes from the seed.
slow = Daemon(tmp, "slow", ["--no-upload", "--download-limit", "256K"]).start()
fast = Daemon(tmp, "fast", ["--no-upload"]).start()
dirs = {}
for d in (slow, fast):
    dirs[d.name] = tmp.sub("dl-" + d.name)
    os.makedirs(dirs[d.name])
t0 = time.monotonic()
for d in (slow, fast):
    r = d.cli("join", torrent, "--into", dirs[d.name], "--peer", "127.0.0.1:%d" % seed.port)
    c.equal(r.returncode, 0, "%s joins" % d.name)


def shares():
    """The seed's two active connections, slowest first, once each has a
    measured rate and the shares follow demand: the slow one down to at most
    a quarter of the limit, the fast one up to 60 % or more (an even split
    gives each 50 %)."""
    ps = [p for p in seed.api("GET", "/api/v1/swarms/1/peers")["peers"] if p["state"] == "active"]
    if len(ps) != 2 or min(p["upload_rate"] for p in ps) <= 0:
        return None
    ps.sort(key=lambda p: p["upload_rate"])
    ok = ps[0]["upload_share"] <= LIMIT // 4 and ps[1]["upload_share"] >= 0.6 * LIMIT
    return ps if ok else None


ps = wait_for("the split to follow demand", shares, timeout=30, interval=0.3)
c.check(ps is not None, "within 30 s the busy connection gets what the slow one leaves",
        seed.api("GET", "/api/v1/swarms/1/peers")["peers"])
if ps:
    lo, hi = ps
    c.check(lo["upload_share"] + hi["upload_share"] <= LIMIT + 2,
            "the shares never add up to more than the limit",
            (lo["upload_share"], hi["upload_share"]))
    c.check(lo["upload_rate"] < TRICKLE * 2, "the slow one is held by its own limit", lo)
# Over the whole download the swarm stays within its limit.
sw = wait_state(fast, 1, timeout=120)
secs = time.monotonic() - t0
c.check(secs >= SIZE / (LIMIT * 1.25),
        "the fast download still respects the swarm's limit (lower bound only)",
        "%.1f s for %d MiB" % (secs, SIZE // MiB))
c.equal(tree_digest(os.path.join(dirs["fast"], "content")), want, "fast copy byte-identical")
r = seed.cli("limit", "1", "--upload", "0")
c.equal(r.returncode, 0, "the swarm limit is removed")
wait_for("shares to go", lambda: all(p["upload_share"] == 0 for p in
                                     seed.api("GET", "/api/v1/swarms/1/peers")["peers"]), 10)
c.check(all(p["upload_share"] == 0 for p in seed.api("GET", "/api/v1/swarms/1/peers")["peers"]),
        "without a swarm limit every share is 0")
for d in (slow, fast, seed):
    c.equal(d.stop(), 0, "%s stops cleanly" % d.name)
c.done()
