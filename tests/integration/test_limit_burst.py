"""A rate limit holds for a small transfer too: a capped node cannot let a
file that fits in its token bucket's burst through at many times the cap.

Each case starts a fresh seed and leecher, lets the daemons idle for a
second (so every bucket is as full as it ever gets, as it is when a user
starts a download on a quiet node), then times the leecher's download from
the moment `shoal join` is started until the swarm is complete.  That time
also holds the CLI, the connection set-up and the API polling, so it can
only be longer than the transfer itself: the check is a lower bound, 0.8 x size / cap, as
the limit promises (docs/architecture.md, "Rate limits")."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, write_file  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
c = Checks("limit_burst")
tmp = TestDir()

# (what, seed args, leecher args, cap in bytes/s, file size)
CASES = [
    ("seed upload cap 256K", ["--upload-limit", "256K"], [], 256 * KiB, 384 * KiB),
    ("seed upload cap 10M", ["--upload-limit", "10M"], [], 10 * MiB, 1 * MiB),
    ("leecher download cap 10M", [], ["--download-limit", "10M"], 10 * MiB, 1 * MiB),
]


def complete_time(d, t0, timeout):
    """Seconds from t0 until swarm 1 on `d` is seeding, polling every 5 ms."""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        sw = d.api("GET", "/api/v1/swarms/1")
        if sw["state"] == "seeding":
            return time.monotonic() - t0
        if sw["state"] == "error":
            return None
        time.sleep(0.005)
    return None


for i, (what, seed_args, leech_args, cap, size) in enumerate(CASES):
    src = tmp.sub("content%d" % i)
    write_file(os.path.join(src, "blob.bin"), os.urandom(size))
    seed = Daemon(tmp, "seed%d" % i, seed_args).start()
    r = seed.cli("share", src)
    c.equal(r.returncode, 0, "%s: the seed shares the directory" % what)
    torrent = r.stdout.split("\n")[1]
    leech = Daemon(tmp, "leech%d" % i, leech_args).start()
    into = tmp.sub("dl%d" % i)
    os.makedirs(into)
    time.sleep(1.0)  # idle: every token bucket refills to its burst
    # From before `shoal join`: the daemon starts fetching while the CLI is
    # still exiting (slowly, under the sanitizers), so a clock started when
    # it returns could miss the first bytes and beat the floor.
    t0 = time.monotonic()
    r = leech.cli("join", torrent, "--into", into, "--peer", "127.0.0.1:%d" % seed.port)
    c.equal(r.returncode, 0, "%s: the leecher joins" % what)
    secs = complete_time(leech, t0, timeout=10 + 4 * size / cap)
    floor = 0.8 * size / cap
    c.check(secs is not None and secs >= floor,
            "%s: %d KiB take at least 0.8 x size / cap = %.3f s (took %s s)"
            % (what, size // KiB, floor, None if secs is None else "%.3f" % secs))
    c.equal(tree_digest(os.path.join(into, os.path.basename(src))), tree_digest(src),
            "%s: the copy is byte-identical" % what)
    for d in (leech, seed):
        c.equal(d.stop(), 0, "%s: %s stops cleanly" % (what, d.name))

# A limit changed at run time: first lowered before the transfer (the cap
# must be the new one), then lifted in the middle of a capped transfer (it
# must finish at once).  Both change the bucket's tick, which libevent's
# groups do not survive by themselves (node/engine.c, engine_set_limits).
src = tmp.sub("content-rt")
write_file(os.path.join(src, "blob.bin"), os.urandom(4 * MiB))
seed = Daemon(tmp, "seed-rt", ["--upload-limit", "10M"]).start()
r = seed.cli("share", src)
torrent = r.stdout.split("\n")[1]
c.equal(seed.cli("limit", "--upload", "512K").returncode, 0, "runtime: the seed's cap goes 10M -> 512K")
leech = Daemon(tmp, "leech-rt").start()
into = tmp.sub("dl-rt")
os.makedirs(into)
r = leech.cli("join", torrent, "--into", into, "--peer", "127.0.0.1:%d" % seed.port)
t0 = time.monotonic()
time.sleep(2.0)
sw = leech.api("GET", "/api/v1/swarms/1")
have = sw.get("bytes_have", 0)
c.check(0 < have <= 1.5 * 512 * KiB * (time.monotonic() - t0) + 128 * KiB,
        "runtime: the lowered cap holds (%d KiB after 2 s at 512 KiB/s)" % (have // KiB))
c.equal(seed.cli("limit", "--upload", "0").returncode, 0, "runtime: the cap is lifted mid-transfer")
t1 = time.monotonic()
secs = complete_time(leech, t1, timeout=20)
c.check(secs is not None and secs < 10,
        "runtime: once lifted, the rest arrives at once (took %s s)"
        % (None if secs is None else "%.2f" % secs))
c.equal(tree_digest(os.path.join(into, "content-rt")), tree_digest(src),
        "runtime: the copy is byte-identical")
for d in (leech, seed):
    c.equal(d.stop(), 0, "runtime: %s stops cleanly" % d.name)
c.done()
