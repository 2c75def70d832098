#!/usr/bin/python3
"""Many swarms in one daemon: what must hold however many there are.

One daemon (no DHT) shares N = 150 directories of one small file each, all
with the same slow HTTP tracker (it holds every announce for 2 s).  Checked:
every swarm reaches seeding and is announced ("started") to the tracker,
yet the tracker never holds more requests from the daemon at once than
its cap (64, TRACKERS_MAX_INFLIGHT), and it does hold many at once (the
cap is not one); GET /api/v1/status counts by state match the list of
swarms; the daemon is idle once everything is seeding (its CPU time over
5 s stays small: idle seeds do no per-second work) and holds far fewer
file descriptors than swarms (an idle seed's files are closed); a second
daemon then
downloads one of the idle seeds' swarms byte for byte (a sleeping seed
wakes when a peer comes); after a restart the counts are the same and
every swarm seeds again without being re-hashed.

Speed and memory at 1,000-50,000 swarms are measured in bench/many_swarms,
not here.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, compare_trees, wait_for,  # noqa: E402
                           wait_state, write_file)
from fake_tracker import HttpTracker  # noqa: E402

N = 150
CAP = 64
FAST = ["--no-dht", "--tracker-min-interval", "2", "--tracker-timeout", "10"]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def status_counts(d):
    return d.api("GET", "/api/v1/status")["swarms"]


def main():
    c = Checks("swarm_scale")
    tmp = TestDir()
    tracker = HttpTracker(interval=1800, slow_s=2.0)
    url = tracker.url("slow/announce")
    a = Daemon(tmp, "seed", FAST).start()

    t0 = time.monotonic()
    ids, roots = [], []
    for i in range(N):
        root = tmp.sub("shares", "s%03d" % i)
        write_file(os.path.join(root, "f.bin"), os.urandom(1024 + i))
        st, doc, _ = a.request("POST", "/api/v1/swarms", {"share": root, "trackers": [url]})
        if st != 202:
            c.check(False, "share %d accepted" % i, doc)
            break
        ids.append(doc["swarm"]["id"])
        roots.append(root)
    c.equal(len(ids), N, "%d shares accepted through the API" % N)
    c.check(wait_for("all seeding", lambda: status_counts(a)["seeding"] == N, 120),
            "all %d swarms seeding after %.1f s" % (N, time.monotonic() - t0), status_counts(a))

    # --- the tracker: everyone announced, never more than the cap at once
    def started_hashes():
        return {x["info_hash"] for x in tracker.announces if x["event"] == "started" and
                x["port"] == a.port}
    # A hybrid announces two hashes: 2 N announces of 2 s each, at most 64
    # at once, take at least 2 N / 64 * 2 s (~10 s).
    c.check(wait_for("every swarm announced", lambda: len(started_hashes()) >= 2 * N, 120),
            "every swarm's two hashes were announced to the tracker (%d)" % len(started_hashes()))
    c.check(tracker.max_active <= CAP,
            "the tracker never held more than %d of the daemon's requests at once (%d)"
            % (CAP, tracker.max_active))
    c.check(tracker.max_active >= CAP // 2,
            "requests do run side by side (%d at once at most)" % tracker.max_active)

    # --- counts by state match the list
    lst = a.api("GET", "/api/v1/swarms")
    swarms = lst["swarms"] if isinstance(lst, dict) else lst
    by_state = {}
    for sw in swarms:
        by_state[sw["state"]] = by_state.get(sw["state"], 0) + 1
    counts = status_counts(a)
    c.equal(counts["total"], len(swarms), "status total = swarms listed")
    c.equal(counts["seeding"], by_state.get("seeding", 0), "status seeding = seeding swarms listed")

    # --- idle: nothing to do once everything seeds and the tracker answered
    time.sleep(1)
    c0 = cpu_seconds(a.proc.pid)
    time.sleep(5)
    used = cpu_seconds(a.proc.pid) - c0
    c.check(used < 0.5, "the daemon is idle with %d seeding swarms: %.2f s of CPU in 5 s" % (N, used))

    # --- idle seeds hold no open files (their disk layer is made when a
    # peer comes): far fewer descriptors than swarms
    fds = len(os.listdir("/proc/%d/fd" % a.proc.pid))
    c.check(fds < N // 2, "%d idle seeds hold %d file descriptors in all" % (N, fds))

    # --- a sleeping seed wakes for a peer
    b = Daemon(tmp, "leech", FAST).start()
    pick = ids[N // 2]
    sw = a.api("GET", "/api/v1/swarms/%s" % pick)
    os.makedirs(tmp.sub("dl"), exist_ok=True)
    r = b.cli("join", sw["magnet"], "--into", tmp.sub("dl"), "--peer", "127.0.0.1:%d" % a.port)
    c.check(r.returncode == 0, "the leecher joins one of the idle seeds' swarms", r.stderr)
    if r.returncode == 0:
        bid = 1  # the leecher's first swarm
        try:
            wait_state(b, bid, "seeding", timeout=60)
            c.check(True, "downloaded from an idle seed")
        except AssertionError as e:
            c.check(False, "downloaded from an idle seed", str(e))
        name = os.path.basename(roots[N // 2])
        compare_trees(c, roots[N // 2], tmp.sub("dl", name), "the download is byte-identical")
    b.stop()

    # --- restart: same counts, all seeding again, nothing re-hashed but
    # the one file touched while the daemon was down
    c.check(a.stop() == 0, "the seed stops cleanly")
    touched = os.path.join(roots[5], "f.bin")
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    a.start()
    t1 = time.monotonic()
    c.check(wait_for("all seeding after restart", lambda: status_counts(a)["seeding"] == N, 60),
            "after a restart all %d swarms seed again in %.1f s" % (N, time.monotonic() - t1))
    c.equal(status_counts(a)["total"], N, "after a restart the total is the same")
    def hashed(i):
        return (a.api("GET", "/api/v1/swarms/%s" % i).get("last_check") or {}).get("files_hashed")
    rehashed = [i for i in ids[:20] if i != ids[5] and hashed(i) != 0]
    c.check(not rehashed, "unchanged files were not re-hashed at the restart", rehashed)
    c.equal(hashed(ids[5]), 1, "the file touched while the daemon was down was re-hashed")
    c.check(a.stop() == 0, "the seed stops cleanly after the restart")
    tracker.stop()
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
