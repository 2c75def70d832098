"""Sharing a directory: metainfo that libtorrent agrees with, SQLite records,
restarts, re-verification, and every kind of bad input."""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_state, write_file  # noqa: E402

try:
    import libtorrent as lt
except ImportError:
    lt = None

c = Checks("share")
tmp = TestDir()
d = Daemon(tmp, "node").start()


def swarm_rows():
    db = sqlite3.connect(os.path.join(d.data_dir, "shoal.db"))
    try:
        return db.execute("SELECT count(*) FROM swarms").fetchone()[0], \
            db.execute("SELECT count(*) FROM files").fetchone()[0]
    finally:
        db.close()


def lt_hashes_of_dir(path, piece_length):
    """(v2, v1) info-hashes of libtorrent's own hybrid of PATH (its default)."""
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    ih = lt.torrent_info(lt.bencode(ct.generate())).info_hashes()
    return ih.v2.to_bytes().hex(), str(ih.v1)


# A tree with every shape BEP 52 cares about.
rnd = os.urandom
tree = tmp.sub("Ünïcødé share")
write_file(os.path.join(tree, "empty"), b"")
write_file(os.path.join(tree, "one-byte"), b"x")
write_file(os.path.join(tree, "one-block"), rnd(16384))
write_file(os.path.join(tree, "block-plus-one"), rnd(16385))
write_file(os.path.join(tree, "pow2"), rnd(1 << 20))
write_file(os.path.join(tree, "odd"), rnd(3 * 16384 + 77))
write_file(os.path.join(tree, "a", "b", "c", "deep.txt"), b"deep\n")
write_file(os.path.join(tree, "a", "naïve café.txt"), "non-ASCII ✓".encode())
write_file(os.path.join(tree, "a.txt"), b"sorts before a/ bytewise")
write_file(os.path.join(tree, "large"), rnd(5 * 1024 * 1024 + 3))

t0 = time.monotonic()
r = d.cli("share", tree)
c.equal(r.returncode, 0, "shoal share exits 0")
lines = r.stdout.strip().split("\n")
c.check(len(lines) == 2, "prints two lines: magnet and .torrent", r.stdout + r.stderr)
magnet, torrent = (lines + ["", ""])[:2]
c.check(magnet.startswith("magnet:?xt=urn:btih:") and "&xt=urn:btmh:1220" in magnet and "&dn=" in magnet,
        "first line is a hybrid magnet (the default format): both info-hashes", magnet)
c.check(torrent.endswith(".torrent") and os.path.isfile(torrent), "second line is the .torrent", torrent)
c.check(torrent.startswith(d.data_dir), ".torrent lives in the data dir")
info_hash = magnet.split("urn:btmh:1220")[1][:64]

sw = d.api("GET", "/api/v1/swarms/1")
c.equal(sw["state"], "seeding", "swarm seeds after hashing")
c.equal(sw["info_hash"], info_hash, "API and magnet agree on the info-hash")
c.equal(sw["num_files"], 10, "all 10 files in the swarm")
c.equal(sw["pieces_have"], sw["num_pieces"], "every piece verified")
c.equal(sw["root"], tree, "seeds from the directory in place")
c.check(abs(sw["progress"] - 1.0) < 1e-9, "progress 1.0")

if lt is not None:
    ti = lt.torrent_info(torrent)
    c.equal(ti.info_hashes().v2.to_bytes().hex(), info_hash, "libtorrent parses our .torrent to the same v2 hash")
    files = ti.files()
    real = [i for i in range(files.num_files()) if not files.file_flags(i) & lt.file_storage.flag_pad_file]
    c.equal(len(real), 10, "libtorrent sees 10 files (besides its pad files)")
    c.equal(lt_hashes_of_dir(tree, sw["piece_length"]), (info_hash, sw["info_hash_v1"]),
            "libtorrent's own hybrid of the directory has the same two info-hashes")
else:
    c.check(False, "python3-libtorrent importable (run with /usr/bin/python3)")

rows = swarm_rows()
c.equal(rows, (1, 10), "one swarm and its 10 files in SQLite")

# The API answers at once with an id, and shows progress.
big = tmp.sub("big")
write_file(os.path.join(big, "blob"), rnd(64 * 1024 * 1024))
status, doc, _ = d.request("POST", "/api/v1/swarms", {"share": big})
c.equal(status, 202, "POST share answers 202 at once")
bid = (doc or {}).get("swarm", {}).get("id")
c.check(isinstance(bid, int), "with the new swarm's id")
sw = wait_state(d, bid, want=None, timeout=120)
c.equal(sw["state"], "seeding", "big share completes")

# Same directory again: same swarm, no re-hash.
r = d.cli("share", tree, "--json")
c.equal(r.returncode, 0, "sharing the same directory again exits 0")
c.check(info_hash in r.stdout, "and gives the same info-hash")
c.equal(swarm_rows()[0], 2, "no new swarm recorded")

# Bad input: clear message, non-zero exit, nothing registered.
before = swarm_rows()
write_file(tmp.sub("plainfile"), b"x")
os.makedirs(tmp.sub("emptydir", "sub"), exist_ok=True)
os.makedirs(tmp.sub("withlink"), exist_ok=True)
write_file(tmp.sub("withlink", "ok"), b"fine")
os.symlink("/etc/passwd", tmp.sub("withlink", "escape"))
badname = tmp.sub("badname").encode()
os.makedirs(badname, exist_ok=True)
with open(os.path.join(badname, b"bad\xffname"), "wb") as f:
    f.write(b"x")
fifo_dir = tmp.sub("fifo")
os.makedirs(fifo_dir, exist_ok=True)
os.mkfifo(os.path.join(fifo_dir, "pipe"))
cases = [
    (tmp.sub("missing"), "No such file"),
    (tmp.sub("plainfile"), "not a directory"),
    (tmp.sub("emptydir"), "no files"),
    (tmp.sub("withlink"), "symbolic link"),
    (badname.decode(errors="surrogateescape"), "UTF-8"),
    (fifo_dir, "not a regular file"),
]
for path, words in cases:
    r = subprocess.run([os.environ.get("SHOAL_BIN", "shoal"), "share", path, "--data-dir", d.data_dir],
                       capture_output=True, timeout=60)
    err = r.stderr.decode(errors="replace")
    c.check(r.returncode not in (0, None) and words in err,
            "share %s fails clearly (%s)" % (os.path.basename(path), words), "rc=%s %s" % (r.returncode, err))
c.equal(swarm_rows(), before, "failed shares left nothing in the database")
status, doc, _ = d.request("POST", "/api/v1/swarms", {"share": "relative/dir"})
c.equal(status, 400, "API refuses a relative share path")
status, doc, _ = d.request("POST", "/api/v1/swarms", {"share": 42})
c.equal(status, 400, "API refuses a non-string share")

# A file that keeps changing while it is hashed.
moving = tmp.sub("moving")
write_file(os.path.join(moving, "grows"), rnd(128 * 1024 * 1024))
stop = threading.Event()


def scribble():
    with open(os.path.join(moving, "grows"), "ab") as f:
        while not stop.is_set():
            f.write(b"z" * 4096)
            f.flush()
            time.sleep(0.001)


th = threading.Thread(target=scribble)
th.start()
r = d.cli("share", moving)
stop.set()
th.join()
c.check(r.returncode != 0 and "changed" in r.stderr, "a file changing while hashed fails the share",
        "rc=%s %s" % (r.returncode, r.stderr))
c.equal(swarm_rows(), before, "and leaves nothing in the database")

# Restart: swarms come back; a modified file is re-verified and stops being offered.
c.equal(d.stop(), 0, "daemon stops cleanly")
with open(os.path.join(tree, "large"), "r+b") as f:
    f.seek(1000)
    f.write(b"tampered")          # same size, new content and mtime
d = Daemon(tmp, "node").start()
sw = wait_state(d, 1, want=None, timeout=120)
c.equal(sw["state"], "seeding", "shared swarm comes back after restart")
c.equal(sw["info_hash"], info_hash, "with the same info-hash")
c.check(sw["pieces_have"] < sw["num_pieces"], "the tampered piece is no longer offered",
        "%s of %s" % (sw["pieces_have"], sw["num_pieces"]))
c.equal(sw["num_pieces"] - sw["pieces_have"], 1, "exactly one piece dropped")
bsw = d.api("GET", "/api/v1/swarms/%s" % bid)
c.equal(bsw["pieces_have"], bsw["num_pieces"], "an untouched swarm keeps every piece")
r = d.cli("verify", "1")
c.equal(r.returncode, 1, "shoal verify exits 1 while a piece is bad")
r = d.cli("verify", info_hash[:12])
c.check("pieces verified" in r.stdout, "verify accepts an info-hash prefix", r.stdout + r.stderr)

# Pause, resume, remove.
r = d.cli("pause", str(bid))
c.check(r.returncode == 0 and "paused" in r.stdout, "pause", r.stdout + r.stderr)
r = d.cli("resume", str(bid))
c.check(r.returncode == 0 and "seeding" in r.stdout, "resume", r.stdout + r.stderr)
r = d.cli("remove", str(bid), "--delete-data")
c.equal(r.returncode, 1, "remove --delete-data refuses to delete a shared directory")
c.check(os.path.exists(os.path.join(big, "blob")), "shared data untouched")
r = d.cli("remove", str(bid))
c.equal(r.returncode, 0, "remove exits 0")
c.equal(d.request("GET", "/api/v1/swarms/%s" % bid)[0], 404, "removed swarm is gone from the API")
c.equal(swarm_rows()[0], 1, "and from the database")
c.check(os.path.exists(os.path.join(big, "blob")), "its shared data is still there")

# Many small files: batched work, one transaction.
many = tmp.sub("many")
n_files = int(os.environ.get("SHOAL_TEST_MANY", "100000"))
for i in range(n_files):
    sub = os.path.join(many, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%05d" % i), "wb") as f:
        f.write(b"%d" % i)
t0 = time.monotonic()
r = d.cli("share", many, "--format", "v2", timeout=600)
c.equal(r.returncode, 0, "a directory of %d small files shares" % n_files)
msw = wait_state(d, d.api("GET", "/api/v1/swarms")["swarms"][-1]["id"], want=None, timeout=120)
c.equal(msw.get("num_files"), n_files, "with every file")
print("# %d files shared in %.1f s" % (n_files, time.monotonic() - t0))
if n_files >= 100000:
    # As a hybrid (the default) its v1 file list and pad files do not fit
    # in the 16 MiB info dict: a clear error saying what to do.
    d.request("DELETE", "/api/v1/swarms/%s" % msw["id"])
    r = d.cli("share", many, timeout=600)
    c.check(r.returncode != 0 and "--format v2" in r.stderr,
            "a hybrid too large for the info dict fails, naming --format v2", r.stderr)

c.equal(d.stop(signal.SIGTERM), 0, "daemon stops cleanly at the end")
c.done()
