"""Durability: "a piece is recorded as verified only after its data is
durable", tested against a disk that fails or is slow.

The leecher runs under tests/fault/faultfs.so (an LD_PRELOAD shim, see its
header) which makes fdatasync/pwrite fail or stall for files under the
download folder and keeps a journal of writes and syncs.  After a kill -9
the test acts out a power cut: every byte written but never fdatasync'd is
zeroed.  Then every piece the database records as verified must still match
the source.  The parts:

  many_pieces   16 KiB pieces and slow syncs: hundreds of pieces verify in one
                sync window, so the list of pieces awaiting the sync outgrows
                its first capacity while a worker reads it (run under the
                TSan/ASan builds; any sanitizer report fails the test).
  pause_kill    pause mid-download while a sync is stalled, then kill -9:
                the pause must not record the pieces still syncing.
  failing_sync  fdatasync fails for a while, then works again; kill -9:
                nothing whose sync failed is recorded unless it was written
                again and a later sync made it durable (the shim acts out
                Linux: a failed fdatasync loses the file's unsynced writes).
  pause_resume  pause while blocks are being written and verified, resume:
                the download completes.
  restart_check after an unclean stop, a joined swarm's recorded pieces are
                checked against the disk before they are served: a piece
                corrupted on disk while the daemon was down is dropped.
  slow_disk     pwrite stalled so the disk is ~100x slower than the network:
                the leecher's peak RSS (VmHWM) stays under 64 MiB.

Bounded to about a minute and a half; daemons stopped by PID; temp dir removed.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (SHOAL, Checks, Daemon, TestDir, sanitizer_runtime,  # noqa: E402
                           wait_for, write_file)

BUILD = os.path.dirname(os.path.abspath(SHOAL))
FAULTFS = os.path.join(BUILD, "tests", "fault", "faultfs.so")
PIECE = 16 * 1024

c = Checks("durability")
tmp = TestDir("shoal-dur-")
if not os.path.exists(FAULTFS):
    print("# %s missing: build it with `make tests/fault/faultfs.so`" % FAULTFS)
    c.check(False, "the fault-injection shim is built")
    c.done()


RUNTIME = sanitizer_runtime()


class Fault:
    """The control file and journal of one faulted daemon."""

    def __init__(self, name, prefix, journal=True):
        self.ctl = tmp.sub(name + ".fault")
        self.journal = tmp.sub(name + ".journal") if journal else None
        self.prefix = prefix
        self.set()

    def env(self):
        e = {"LD_PRELOAD": ((RUNTIME + " ") if RUNTIME else "") + FAULTFS,
             "SHOAL_FAULT_FILE": self.ctl}
        if self.journal:
            e["SHOAL_FAULT_JOURNAL"] = self.journal
        return e

    def set(self, sync=None, write=None):
        """sync/write: None, "eio", "stall MS" or "eio MS"."""
        lines = ["prefix " + self.prefix]
        if sync:
            lines.append("fdatasync " + sync)
        if write:
            lines.append("pwrite " + write)
        with open(self.ctl + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(self.ctl + ".tmp", self.ctl)
        time.sleep(0.05)  # the shim re-reads it every 20 ms

    def power_cut(self):
        """Zero every range written but never made durable; returns how many
        bytes were lost.  Replays the journal in order: a sync ("S seq0")
        makes the path's pending writes below seq0 durable; a failed sync
        ("F seq0") loses them for good (Linux drops the dirty pages and
        reports the error once).  A later write to a range replaces what
        was there, durable or lost."""
        if os.path.exists(self.journal + ".broken"):
            with open(self.journal + ".broken") as f:
                c.check(False, "the fault shim's journal is whole", "(%s)" % f.read().strip())
        pending = {}  # path -> [(seq, off, len)] not yet durable
        ranges = {}   # path -> [(off, len, lost)] in write order
        with open(self.journal) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 4)
                if len(parts) != 5:
                    continue  # the line being written at the kill
                kind, seq, off, n, path = parts
                seq = int(seq)
                if kind == "W":
                    rs = ranges.setdefault(path, [])
                    pending.setdefault(path, []).append((seq, len(rs)))
                    rs.append([int(off), int(n), True])
                elif kind in ("S", "F"):
                    keep = []
                    for s, i in pending.get(path, []):
                        if s >= seq:
                            keep.append((s, i))
                        elif kind == "S":
                            ranges[path][i][2] = False  # durable
                        # F: stays lost, and no longer pending
                    pending[path] = keep
        lost = 0
        for path, rs in ranges.items():
            if not os.path.exists(path):
                continue
            size = os.path.getsize(path)
            mask = bytearray(size)
            for off, n, is_lost in rs:
                end = min(off + n, size)
                if end > off:
                    mask[off:end] = (b"\1" if is_lost else b"\0") * (end - off)
            with open(path, "r+b") as f:
                i = 0
                while i < size:
                    if not mask[i]:
                        i += 1
                        continue
                    j = mask.find(b"\0", i)
                    j = size if j < 0 else j
                    f.seek(i)
                    f.write(b"\0" * (j - i))
                    lost += j - i
                    i = j
        return lost


def recorded(daemon, sid=1):
    """(piece_length, [(path, first_piece, num_pieces)], bitmap bytes) from
    the daemon's database (read while it is not running)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(daemon.data_dir, "shoal.db"), uri=True)
    try:
        pl = db.execute("SELECT piece_length FROM swarms WHERE id = ?", (sid,)).fetchone()[0]
        files = db.execute("SELECT path, first_piece, num_pieces FROM files WHERE swarm_id = ?"
                           " ORDER BY idx", (sid,)).fetchall()
        row = db.execute("SELECT bitmap FROM have WHERE swarm_id = ?", (sid,)).fetchone()
        return pl, files, bytes(row[0]) if row else b""
    finally:
        db.close()


def bad_recorded(daemon, dl_root, src_root, sid=1):
    """(pieces recorded, recorded pieces whose bytes on disk differ from the
    source)."""
    pl, files, bm = recorded(daemon, sid)
    n_rec, bad = 0, []
    for path, first, count in files:
        with open(os.path.join(src_root, path), "rb") as s:
            want = s.read()
        try:
            with open(os.path.join(dl_root, path), "rb") as d:
                got = d.read()
        except OSError:
            got = b""
        for i in range(count):
            p = first + i
            if p // 8 >= len(bm) or not bm[p // 8] & (0x80 >> (p % 8)):
                continue
            n_rec += 1
            if got[i * pl:(i + 1) * pl] != want[i * pl:(i + 1) * pl]:
                bad.append(p)
    return n_rec, bad


def sanitizer_reports(daemon):
    return [l for l in daemon.log().splitlines()
            if "WARNING: ThreadSanitizer" in l or "ERROR: AddressSanitizer" in l
            or "runtime error:" in l or "ERROR: LeakSanitizer" in l]


def make_source(name, files):
    src = tmp.sub(name)
    for rel, size in files:
        write_file(os.path.join(src, rel), os.urandom(size))
    return src


def swarm(d, sid=1):
    return d.api("GET", "/api/v1/swarms/%d" % sid)


def wait_fraction(d, frac, timeout):
    def reached():
        s = swarm(d)
        return s.get("total_size") and (s.get("bytes_have", 0) >= frac * s["total_size"]
                                        or s["state"] == "seeding")
    return wait_for("%.0f%% downloaded" % (100 * frac), reached, timeout, interval=0.05)


# One seed for the small-piece parts: many files of a few hundred KiB, all
# under 32 MiB in total so `shoal share` picks 16 KiB pieces.
small = make_source("small", [("f%02d.bin" % i, 600 * 1024 + i * 977) for i in range(30)])
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", small, timeout=60)
c.equal(r.returncode, 0, "seed shares 30 files")
magnet = r.stdout.split("\n")[0]
c.equal(swarm(seed)["piece_length"] if "piece_length" in swarm(seed) else PIECE, PIECE,
        "the share has 16 KiB pieces")


# Another of 400 files of two pieces each: more files than the leecher keeps
# open, so pieces of many files are never in the same sync batch.
tiny = make_source("tiny", [("t%03d.bin" % i, 20 * 1024 + i) for i in range(400)])
tseed = Daemon(tmp, "tseed").start()
r = tseed.cli("share", tiny, timeout=60)
c.equal(r.returncode, 0, "seed shares 400 files")
tmagnet = r.stdout.split("\n")[0]


def leecher(name, fault_journal=True, sync=None, write=None, args=(), src="small"):
    dl = tmp.sub(name + "-dl")
    os.makedirs(dl)
    root = os.path.join(dl, src)
    f = Fault(name, root, journal=fault_journal)
    f.set(sync=sync, write=write)
    d = Daemon(tmp, name, list(args), env=f.env()).start()
    link, s = (magnet, seed) if src == "small" else (tmagnet, tseed)
    r = d.cli("join", link, "--into", dl, "--peer", "127.0.0.1:%d" % s.port)
    c.equal(r.returncode, 0, "%s joins" % name)
    return d, f, root


# ---- many_pieces: the sync list outgrows its capacity during a sync.
d, f, root = leecher("many", fault_journal=False, sync="stall 400")
done = wait_for("many: download complete", lambda: swarm(d)["state"] == "seeding", 60)
c.check(done, "many_pieces: the download completes with slow syncs")
rc = d.stop()
c.equal(rc, 0, "many_pieces: the daemon stops cleanly")
reports = sanitizer_reports(d)
c.check(not reports, "many_pieces: no sanitizer report in the daemon's log",
        "\n# " + "\n# ".join(reports[:10]))
n_rec, bad = bad_recorded(d, root, small)
c.check(n_rec > 0 and not bad, "many_pieces: recorded pieces match the source",
        "(%d recorded, bad: %s)" % (n_rec, bad[:10]))

# ---- pause_kill: pause while a sync is stalled, then kill -9.
d, f, root = leecher("pause", sync="stall 300")  # per file: a job of 10 files takes 3 s
c.check(wait_fraction(d, 0.3, 30), "pause_kill: 30% downloaded before the pause")


def n_recorded(dd):
    try:
        return sum(bin(b).count("1") for b in recorded(dd)[2])
    except sqlite3.Error:
        return 0


# A first sync job has recorded pieces; the next one is likely stalled now.
c.check(wait_for("pause_kill: a first sync recorded pieces", lambda: n_recorded(d) > 0, 40,
                 interval=0.05), "pause_kill: a sync before the pause recorded pieces")
st, _, _ = d.request("POST", "/api/v1/swarms/1/pause")
c.equal(st, 200, "pause_kill: the swarm pauses")
time.sleep(0.3)
d.kill9()
lost = f.power_cut()
print("# pause_kill: %d bytes written but not durable at the kill" % lost)
n_rec, bad = bad_recorded(d, root, small)
c.check(n_rec > 0, "pause_kill: syncs done before the pause recorded pieces", "(%d)" % n_rec)
c.check(not bad, "pause_kill: no piece recorded by the pause is lost to a power cut",
        "(%d recorded, %d lost after the cut: %s)" % (n_rec, len(bad), bad[:10]))

# ---- failing_sync: fdatasync fails, pieces pile up, then it works again.
d, f, root = leecher("failing", src="tiny")
wait_fraction(d, 0.02, 20)
f.set(sync="eio 100")
# Every failed sync un-verifies the pieces it held: they are fetched again
# and fail again while the disk is bad.
time.sleep(3.0)


def db_count():
    try:
        return sum(bin(b).count("1") for b in recorded(d)[2])
    except sqlite3.Error:
        return 0


before = db_count()             # recorded before the first failure
f.set()                          # the disk recovers: later syncs succeed
c.check(wait_for("failing_sync: a save after recovery", lambda: db_count() > before, 20,
                 interval=0.02),
        "failing_sync: more pieces are recorded after recovery", "(%d before)" % before)
time.sleep(1.0)                  # a few more syncs and saves
d.kill9()
lost = f.power_cut()
print("# failing_sync: %d bytes written but not durable at the kill" % lost)
n_rec, bad = bad_recorded(d, root, tiny)
c.check(n_rec > 0, "failing_sync: pieces are recorded once syncs work again", "(%d)" % n_rec)
c.check(not bad, "failing_sync: no piece whose sync failed is recorded without a later sync",
        "(%d recorded, %d lost after the cut: %s)" % (n_rec, len(bad), bad[:10]))
c.check(sum(1 for l in d.log().splitlines() if "cannot make pieces durable" in l) > 0,
        "failing_sync: the failed syncs were reported in the log")

# ---- restart_check: the same daemon after its kill -9 (an unclean stop);
# corrupt one recorded piece on disk while it is down.
pl, files, bm = recorded(d)
victim = None
for path, first, count in files:
    for i in range(count):
        p = first + i
        if bm[p // 8] & (0x80 >> (p % 8)):
            victim = (path, i, p)
            break
    if victim:
        break
c.check(victim is not None, "restart_check: a recorded piece to corrupt")
if victim:
    with open(os.path.join(root, victim[0]), "r+b") as fh:
        fh.seek(victim[1] * pl)
        fh.write(b"\xff" * 100)
    f.set()
    d.start()

    def checked():
        s = swarm(d)
        return s["state"] in ("downloading", "seeding") and s.get("last_check") and s
    s = wait_for("restart_check: check after restart", checked, 30)
    lc = (s or {}).get("last_check") or {}
    c.check(lc.get("seq") == 1 and lc.get("result") == "ok",
            "restart_check: the joined swarm was checked at start", "(last_check %r)" % (lc,))
    c.check(lc.get("pieces_dropped", 0) >= 1,
            "restart_check: the check dropped the corrupted piece", "(last_check %r)" % (lc,))
    # The piece was re-checked and dropped, or (once it came back from the
    # seed) is right on disk again; it is never served as it was corrupted.
    d.request("POST", "/api/v1/swarms/1/pause")
    d.stop()
    n_rec, bad = bad_recorded(d, root, tiny)
    c.check(not bad, "restart_check: after an unclean stop no corrupted piece stays recorded",
            "(%d recorded, bad: %s)" % (n_rec, bad[:10]))

# ---- pause_resume: pause mid-download (writes and verifies in flight),
# resume: the download completes (blocks caught by the pause are fetched
# again, not left half-done).
d, f, root = leecher("resume", fault_journal=False, write="stall 2")
c.check(wait_fraction(d, 0.3, 30), "pause_resume: 30% downloaded before the pause")
st, _, _ = d.request("POST", "/api/v1/swarms/1/pause")
c.equal(st, 200, "pause_resume: the swarm pauses")
time.sleep(0.5)
st, _, _ = d.request("POST", "/api/v1/swarms/1/resume")
c.equal(st, 200, "pause_resume: the swarm resumes")
done = wait_for("pause_resume: download complete", lambda: swarm(d)["state"] == "seeding", 60)
c.check(done, "pause_resume: the download completes after pause and resume",
        "(%r)" % ({k: swarm(d).get(k) for k in ("state", "bytes_have", "total_size")},))
c.equal(d.stop(), 0, "pause_resume: the daemon stops cleanly")

# ---- slow_disk: pwrite ~100x slower than the network.  Peak RSS bounded.
big = make_source("big", [("big.bin", 200 * 1000 * 1000)])
bseed = Daemon(tmp, "bseed").start()
r = bseed.cli("share", big, timeout=120)
c.equal(r.returncode, 0, "slow_disk: seed shares 200 MB")
bmagnet = r.stdout.split("\n")[0]
dl = tmp.sub("slow-dl")
os.makedirs(dl)
f = Fault("slow", os.path.join(dl, "big"), journal=False)
f.set(write="stall 8")       # a 16 KiB block per 8 ms: ~2 MB/s, vs ~200+ MB/s loopback
d = Daemon(tmp, "slow", env=f.env()).start()
r = d.cli("join", bmagnet, "--into", dl, "--peer", "127.0.0.1:%d" % bseed.port)
c.equal(r.returncode, 0, "slow_disk: leecher joins")
t_end = time.monotonic() + 10
peak = 0
moved = 0
while time.monotonic() < t_end:
    with open("/proc/%d/status" % d.proc.pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    moved = swarm(d).get("bytes_have", 0)
    time.sleep(0.5)
print("# slow_disk: peak RSS %.1f MiB, %.1f MB verified in 10 s" % (peak / 2**20, moved / 1e6))
c.check(moved > 0, "slow_disk: the download moves on the slow disk")
limit = 64 << 20
if RUNTIME:
    print("# slow_disk: sanitizer build; its shadow memory makes RSS meaningless, not checked")
else:
    c.check(peak < limit, "slow_disk: peak RSS stays under 64 MiB", "(%d bytes)" % peak)
c.equal(d.stop(), 0, "slow_disk: the daemon stops cleanly on a slow disk")
for dd in (seed, tseed, bseed):
    c.equal(dd.stop(), 0, "%s stops cleanly" % dd.name)
c.done()
