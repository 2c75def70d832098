"""Disk full: a download into an 8 MiB tmpfs of a ~20 MB swarm.

The swarm must say so (`transfer.disk_error` in GET /api/v1/swarms/{id} and a
line in `shoal status`), another swarm on the normal disk and the API must
keep working, nothing verified may be corrupt, and once the tmpfs is enlarged
(`mount -o remount,size=64M`) the download must complete by itself,
byte-identical.  The tmpfs is unmounted in a finally block whatever happens.

Needs root and a working `mount -t tmpfs`; otherwise exits 77 (skipped) and
says why.  Daemons are stopped by PID; the temp dir is removed.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, write_file, tree_digest  # noqa: E402

if os.geteuid() != 0:
    print("SKIP: needs root to mount a small tmpfs (running as uid %d)" % os.geteuid())
    sys.exit(77)

tmp = TestDir("shoal-diskfull-")
mnt = tmp.sub("small")
os.makedirs(mnt)
r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", mnt],
                   capture_output=True, text=True, timeout=20)
if r.returncode != 0:
    print("SKIP: cannot mount a tmpfs here (%s)" % (r.stderr.strip() or r.returncode))
    os.rmdir(mnt)
    sys.exit(77)

c = Checks("disk_full")






def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


try:
    big = tmp.sub("big")
    write_file(os.path.join(big, "a.bin"), os.urandom(14 * 1000 * 1000 + 11))
    write_file(os.path.join(big, "b.bin"), os.urandom(6 * 1000 * 1000 + 7))
    want_big = tree_digest(big)
    small = tmp.sub("other")
    write_file(os.path.join(small, "x.bin"), os.urandom(3 * 1000 * 1000 + 1))
    want_small = tree_digest(small)

    seed = Daemon(tmp, "seed").start()
    r = seed.cli("share", big, timeout=60)
    c.equal(r.returncode, 0, "seed shares ~20 MB")
    magnet_big = r.stdout.split("\n")[0]
    r = seed.cli("share", small, timeout=60)
    c.equal(r.returncode, 0, "seed shares another 3 MB")
    magnet_small = r.stdout.split("\n")[0]
    peer = "127.0.0.1:%d" % seed.port

    leech = Daemon(tmp, "leech").start()
    r = leech.cli("join", magnet_big, "--into", mnt, "--peer", peer, "--json")
    c.equal(r.returncode, 0, "leecher joins the big swarm into the 8 MiB tmpfs")

    def disk_error():
        sw = leech.api("GET", "/api/v1/swarms/1")
        return sw if sw["transfer"].get("disk_error") else None

    sw = wait_for(disk_error, 40)
    c.check(sw is not None, "transfer.disk_error appears in GET /swarms/1")
    if sw:
        print("# disk_error: %s" % sw["transfer"]["disk_error"])
        c.check("space" in sw["transfer"]["disk_error"].lower() or
                "ENOSPC" in sw["transfer"]["disk_error"],
                "and it says the disk is full", sw["transfer"]["disk_error"])
        c.check(sw["state"] in ("downloading", "error"), "state while full: %s" % sw["state"])
        had = sw["bytes_have"]
        c.check(0 < had < sw["total_size"], "some pieces were verified before the disk filled",
                "(%s of %s)" % (had, sw["total_size"]))
    r = leech.cli("status")
    c.equal(r.returncode, 0, "shoal status works while the disk is full")
    line = [ln for ln in r.stdout.splitlines() if "space" in ln.lower() or "disk" in ln.lower()]
    c.check(line, "shoal status shows a line about the disk", r.stdout)

    # Another swarm on the normal disk, joined while the first is stuck.
    normal = tmp.sub("normal")
    os.makedirs(normal)
    r = leech.cli("join", magnet_small, "--into", normal, "--peer", peer, "--wait", timeout=60)
    c.equal(r.returncode, 0, "a second swarm on the normal disk completes meanwhile")
    c.equal(tree_digest(os.path.join(normal, "other")), want_small, "  byte-identical")
    c.equal(leech.request("GET", "/api/v1/status")[0], 200, "the API keeps answering")

    # Nothing written is corrupt: every 16 KiB block already on the tmpfs is
    # either still a hole (zeros, never written) or exactly the source bytes.
    # (POST /verify is refused while a swarm downloads: pieces are checked as
    # they arrive.)
    bad = 0
    partial = 0
    checked = 0
    for name in ("a.bin", "b.bin"):
        p = os.path.join(mnt, "big", name)
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f, open(os.path.join(big, name), "rb") as g:
            while True:
                got = f.read(16384)
                ref = g.read(16384)
                if not got:
                    break
                if got.count(0) == len(got):
                    continue
                checked += 1
                if got == ref[:len(got)]:
                    continue
                # The write that hit ENOSPC may have stored only the start of
                # its block; that block is unverified and is written again
                # once space is back.  Anything else would be corruption.
                k = len(got.rstrip(b"\0"))
                if got[:k] == ref[:k]:
                    partial += 1
                else:
                    bad += 1
    print("# %d written blocks on the full tmpfs compared with the source (%d cut short by ENOSPC)"
          % (checked, partial))
    c.check(checked > 0 and bad == 0, "every block written before the disk filled is intact",
            "(%d of %d differ)" % (bad, checked))

    # Make room; the download must finish on its own (the engine re-checks
    # free space every 5 s).
    r = subprocess.run(["mount", "-o", "remount,size=64m", mnt], capture_output=True, text=True,
                       timeout=20)
    c.equal(r.returncode, 0, "tmpfs enlarged to 64 MiB")
    sw = wait_for(lambda: (lambda s: s if s["state"] == "seeding" else None)(
        leech.api("GET", "/api/v1/swarms/1")), 60, 0.2)
    c.check(sw is not None, "the download completes by itself once there is space",
            str(leech.api("GET", "/api/v1/swarms/1")))
    if sw:
        c.check("disk_error" not in sw["transfer"], "and disk_error is gone")
    c.equal(tree_digest(os.path.join(mnt, "big")), want_big, "every file is byte-identical")
    c.equal(leech.stop(), 0, "leecher stops cleanly")
    c.equal(seed.stop(), 0, "seed stops cleanly")
finally:
    for d in ("leech", "seed"):
        obj = globals().get(d)
        if obj is not None and obj.proc is not None and obj.proc.poll() is None:
            obj.proc.kill()
            obj.proc.wait(timeout=10)
    u = subprocess.run(["umount", mnt], capture_output=True, text=True, timeout=20)
    if u.returncode != 0:
        subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=20)
    print("# tmpfs unmounted (%s)" % ("ok" if u.returncode == 0 else u.stderr.strip()))
c.done()
