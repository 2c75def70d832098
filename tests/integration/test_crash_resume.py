"""Crash and resume: a leecher is killed with SIGKILL at five random moments
of a download from a rate-limited seed, and restarted each time on the same
data dir and port.  After each restart the swarm resumes by itself (no CLI
command), the verified pieces survive, and at the end every file is
byte-identical while the bytes fetched over all runs stay below twice the
content: nothing verified and durable is fetched again.

Durability is batched (docs/architecture.md): a verified piece is recorded
in SQLite only after the batched fdatasync that runs about once a second, so
a kill may lose up to ~1 s of verified pieces (~4 MiB at this seed's rate),
which are then fetched again.  Five kills cost at most ~5 x 4 MiB = 20 MiB of
refetching on ~40 MB, well inside the 2x bound.

`transfer.downloaded` counts payload bytes since the daemon started, so the
total is the sum of what each run reported just before its kill (read from
the API a few milliseconds before SIGKILL, so it slightly undercounts the
last moment of each run) plus the final run's figure.

The random seed is printed; SHOAL_IT_SEED=N replays the same kill points.
Bounded to about two minutes; daemons stopped by PID; temp dir removed.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, write_file, tree_digest, wait_for  # noqa: E402

SEED = int(os.environ.get("SHOAL_IT_SEED") or time.time())
print("# random seed %d (SHOAL_IT_SEED=%d replays these kill points)" % (SEED, SEED))
rng = random.Random(SEED)
KILLS = 5
BUDGET = 120.0          # seconds for the whole test
T0 = time.monotonic()

c = Checks("crash_resume")
tmp = TestDir("shoal-crash-")


def left():
    return BUDGET - (time.monotonic() - T0)






src = tmp.sub("content")
write_file(os.path.join(src, "one.bin"), os.urandom(28 * 1000 * 1000 + 777))
write_file(os.path.join(src, "sub", "two.bin"), os.urandom(12 * 1000 * 1000 + 3))
write_file(os.path.join(src, "sub", "tiny.txt"), b"tiny\n")
want = tree_digest(src)

seed = Daemon(tmp, "seed", ["--upload-limit", "4M"]).start()
r = seed.cli("share", src, timeout=60)
c.equal(r.returncode, 0, "seed shares ~40 MB")
magnet = r.stdout.split("\n")[0]

leech = Daemon(tmp, "leech")
leech.start()
dl = tmp.sub("dl")
os.makedirs(dl)
r = leech.cli("join", magnet, "--into", dl, "--peer", "127.0.0.1:%d" % seed.port)
c.equal(r.returncode, 0, "leecher joins")

# Five kill points as fractions of the content, spread over the download.
points = sorted(rng.uniform(0.05, 0.92) for _ in range(KILLS))
print("# kill points: %s" % ", ".join("%.0f%%" % (100 * p) for p in points))

total = None
fetched = []            # transfer.downloaded of each run just before its kill
for k, frac in enumerate(points):
    sw = None
    deadline = time.monotonic() + min(30, max(1, left() - 40))
    while time.monotonic() < deadline:
        sw = leech.api("GET", "/api/v1/swarms/1")
        total = sw.get("total_size") or total
        if total and sw.get("bytes_have", 0) >= frac * total:
            break
        if sw["state"] == "seeding":
            break
        time.sleep(0.05)
    # Read the counters, then kill at once.
    sw = leech.api("GET", "/api/v1/swarms/1")
    leech.kill9()
    have = sw.get("bytes_have", 0)
    fetched.append(sw["transfer"]["downloaded"])
    print("# kill %d at %.0f%% (target %.0f%%): %s state, downloaded %d this run" % (
        k + 1, 100.0 * have / (total or 1), 100 * frac, sw["state"], fetched[-1]))
    c.check(sw["state"] == "downloading" and total and have < total,
            "kill %d happens during the download" % (k + 1), "(%s, %s of %s)" % (
                sw["state"], have, total))
    # FAILS on a shoal bug (see the Hardening report): now and then the
    # *seed* dies (SIGSEGV in libevent) right after its leecher is killed.
    c.check(seed.proc.poll() is None, "kill %d: the seed survives its leecher's SIGKILL" % (k + 1),
            "(seed exited with %s)" % seed.proc.poll())
    leech.start()
    # After an unclean stop a joined swarm first checks the files written
    # since their last recorded sync (docs/architecture.md, "Durability").
    sw2 = wait_for("kill %d: the start-up check" % (k + 1),
                   lambda: (lambda s: s if s["state"] != "checking" else None)(
                       leech.api("GET", "/api/v1/swarms/1")), 30, interval=0.05) \
        or leech.api("GET", "/api/v1/swarms/1")
    restored = sw2.get("bytes_have", 0)
    lost = have - restored
    print("#   restart: %d bytes verified survived (%d lost to the ~1 s durability batch)" % (
        restored, lost))
    # ~1 s of verified pieces at 4 MiB/s may be lost, plus pieces whose sync
    # was in flight; 12 MiB is three seconds' worth.
    c.check(lost <= 12 * 1024 * 1024, "kill %d: at most ~1 s of verified pieces lost" % (k + 1),
            "(%d bytes lost)" % lost)
    c.check(sw2["state"] in ("downloading", "seeding"),
            "kill %d: the swarm comes back running by itself" % (k + 1), sw2["state"])
    # It resumes with no command: progress moves within a few seconds.
    deadline = time.monotonic() + 15
    moved = False
    while time.monotonic() < deadline and not moved:
        s = leech.api("GET", "/api/v1/swarms/1")
        moved = s.get("bytes_have", 0) > restored or s["state"] == "seeding"
        time.sleep(0.1)
    c.check(moved, "kill %d: the download resumes without being asked" % (k + 1))

deadline = time.monotonic() + max(5, left() - 5)
sw = None
while time.monotonic() < deadline:
    sw = leech.api("GET", "/api/v1/swarms/1")
    if sw["state"] == "seeding":
        break
    time.sleep(0.1)
c.equal(sw["state"], "seeding", "the download completes after %d kills" % KILLS)
final = sw["transfer"]["downloaded"]
got = sum(fetched) + final
print("# downloaded per run: %s + final %d = %d for %d bytes of content (%.2fx)" % (
    fetched, final, got, total or 0, got / float(total or 1)))
c.check(total and got < 2 * total, "bytes fetched over all runs < 2x the content",
        "(%d of %d)" % (got, total or 0))
c.equal(tree_digest(os.path.join(dl, "content")), want, "every file is byte-identical")
c.equal(leech.stop(), 0, "leecher stops cleanly")
c.equal(seed.stop(), 0, "seed stops cleanly")
print("# %.1f s in all" % (time.monotonic() - T0))
c.check(time.monotonic() - T0 < BUDGET + 15, "within the time budget")
c.done()
