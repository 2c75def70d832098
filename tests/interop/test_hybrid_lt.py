"""`shoal share --format hybrid` read and downloaded by v1 clients, on loopback.

shoal shares a tree (nested folders, files that are not a multiple of the
piece length, an empty file, a multi-piece file) with --format hybrid; then
(a) libtorrent parses the .torrent shoal wrote: has_v1 and has_v2, both its
    info-hashes equal shoal's (API and magnet), its v1 file list has a BEP 47
    pad file after every file that does not end on a piece boundary (the
    last too, as libtorrent writes them), and its v1 pieces are the SHA-1s
    of the padded pieces;
(b) libtorrent downloads from shoal with a v1-only magnet
    (magnet:?xt=urn:btih:<40 hex>) plus a connect to shoal's port: the
    handshake carries the v1 hash, shoal answers the BEP 9 metadata
    requests, the download is byte-identical and passes libtorrent's
    SHA-1 checks;
(c) aria2c (a v1-only client, if installed), meeting shoal through a tracker
    of a few lines in this process (aria2 has no "add peer" option), fetches
    the metadata from shoal with a v1 magnet.  It cannot go on: aria2 1.36
    computes a wrong v1 info-hash for every hybrid, libtorrent's own too
    (shown here), so the content download is not checked.
The DHT tracks (announces and looks up) both keys.
(d) an unknown --format is refused (v1 itself: tests/interop/test_v1_lt.py).
Every wait is bounded; the daemon is stopped by PID; libtorrent runs in this
process.  Exit 77 only if libtorrent cannot be imported (run /usr/bin/python3).
"""
import hashlib
import http.server
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
import shoal_harness  # noqa: E402
from shoal_harness import (Checks, Daemon, TestDir, free_port,  # noqa: E402
                           wait_for, write_file)

try:
    import libtorrent as lt
    import lt_peer  # noqa: E402
except ImportError as e:
    print("SKIP: cannot import libtorrent (%s); run with /usr/bin/python3" % e)
    sys.exit(77)

TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "120"))
c = Checks("hybrid_lt")
tmp = TestDir("shoal-hybrid-")


def compare_trees(src, dst, what, skip_empty=False):
    return shoal_harness.compare_trees(c, src, dst, what, skip_empty)


src = tmp.sub("src", "tree-h")
write_file(os.path.join(src, "big", "multi.bin"), os.urandom(5 * 16384 + 1000))
write_file(os.path.join(src, "a", "b", "deep.txt"), b"deep in the tree\n")
write_file(os.path.join(src, "a", "odd"), os.urandom(2 * 16384 + 77))
write_file(os.path.join(src, "a", "whole"), os.urandom(16384))
write_file(os.path.join(src, "empty"), b"")
write_file(os.path.join(src, "zlast.txt"), b"the last file has no pad\n")
files = {}
for dp, _, fns in os.walk(src):
    for fn in fns:
        full = os.path.join(dp, fn)
        files[os.path.relpath(full, src)] = open(full, "rb").read()

seed = Daemon(tmp, "shoal-seed", args=["--log-level", "debug"]).start()

# ------------------------------------------------------------------ (d) v1
r = seed.cli("share", "--format", "v3", src, timeout=30)
c.check(r.returncode == 2 and "not a format" in r.stderr,
        "(d) an unknown --format is a usage error", "(rc %d, %r)" % (r.returncode, r.stderr))
st, doc, _ = seed.request("POST", "/api/v1/swarms", {"share": src, "format": "v3"})
c.equal(st, 400, "(d) the API refuses an unknown format")

# ------------------------------------------------------------------ share
r = seed.cli("share", "--format", "hybrid", src, timeout=TIMEOUT)
c.equal(r.returncode, 0, "shoal share --format hybrid exits 0")
lines = r.stdout.strip().split("\n")
magnet = lines[0] if len(lines) == 2 else ""
torrent = lines[1] if len(lines) == 2 else ""
sw = seed.api("GET", "/api/v1/swarms/1")
v1_hex, v2_hex = sw.get("info_hash_v1") or "", sw.get("info_hash") or ""
c.check(len(v1_hex) == 40 and len(v2_hex) == 64, "the swarm reports both info-hashes",
        "(%r, %r)" % (v1_hex, v2_hex))
c.check(magnet.startswith("magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s" % (v1_hex, v2_hex)),
        "the magnet printed carries both hashes", repr(magnet))


def dht_keys():
    keys = {t["key"] for t in seed.api("GET", "/api/v1/dht").get("swarms", []) if t["id"] == 1}
    return keys if len(keys) == 2 else None


c.equal(wait_for("two DHT keys", dht_keys, 10), {v2_hex[:40], v1_hex},
        "the DHT tracks the swarm under its truncated v2 hash and its v1 hash")
r2 = seed.cli("share", "--format", "v2", src, timeout=30)
c.check(r2.returncode != 0 and "already shared" in r2.stderr,
        "sharing the same folder again as v2 is refused, naming the swarm", repr(r2.stderr))

# --------------------------------------------------------- (a) libtorrent parses it
ti = None
if c.check(os.path.isfile(torrent), "shoal wrote a .torrent", r.stdout + r.stderr):
    raw = open(torrent, "rb").read()
    ti = lt.torrent_info(lt.bdecode(raw))
    ih = ti.info_hashes()
    c.check(ih.has_v1() and ih.has_v2(), "(a) libtorrent reads it as a hybrid (has_v1, has_v2)")
    c.equal(str(ih.v1), v1_hex, "(a) libtorrent's v1 info-hash equals shoal's")
    c.equal(ih.v2.to_bytes().hex(), v2_hex, "(a) libtorrent's v2 info-hash equals shoal's")
    info = lt.bdecode(raw)[b"info"]
    c.equal(hashlib.sha1(lt.bencode(info)).hexdigest(), v1_hex,
            "(a) the v1 hash is the SHA-1 of the info dict's bytes")
    pl = ti.piece_length()
    fs = ti.files()
    listed = []
    for i in range(fs.num_files()):
        listed.append((fs.file_path(i).replace(os.sep, "/"), fs.file_size(i),
                       bool(fs.file_flags(i) & lt.file_storage.flag_pad_file)))
    # Expected: shoal's file tree order, a pad after each file whose size is
    # not a multiple of the piece length, the last one included.
    order = sorted(files, key=lambda p: p.split("/"))
    want = []
    for k, p in enumerate(order):
        want.append(("tree-h/" + p, len(files[p]), False))
        rest = len(files[p]) % pl
        if rest:
            want.append(("tree-h/.pad/%d" % (pl - rest), pl - rest, True))
    got = [(p if not pad else "tree-h/.pad/" + p.rsplit("/", 1)[1], n, pad) for p, n, pad in listed]
    c.equal(got, want, "(a) libtorrent's file list: shoal's files with pad files between")
    c.check(any(pad for _, _, pad in listed), "(a) the list has pad files")
    # Each v1 piece is one v2 piece: SHA-1 of the file's bytes then zeros.
    blob = b""
    for k, p in enumerate(order):
        d = files[p]
        blob += d
        if len(d) % pl:
            blob += b"\0" * (pl - len(d) % pl)
    n = (len(blob) + pl - 1) // pl
    c.equal(ti.num_pieces(), n, "(a) as many v1 pieces as the padded content has")
    bad = [i for i in range(n)
           if ti.hash_for_piece(i) != hashlib.sha1(blob[i * pl:(i + 1) * pl]).digest()]
    c.check(not bad, "(a) every v1 piece hash is the SHA-1 of the padded piece",
            "(pieces %s differ)" % bad[:5])

# ------------------------------------- (b) libtorrent, v1-only magnet, downloads
if len(v1_hex) == 40:
    ses = lt_peer.session()
    out_b = tmp.sub("b-lt-out")
    os.makedirs(out_b)
    atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:%s" % v1_hex)
    c.check(not atp.info_hashes.has_v2(), "(b) the magnet given to libtorrent is v1-only")
    atp.save_path = out_b
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    lt_peer.connect(h, seed.port)
    errors = []

    def watch():
        for a in ses.pop_alerts():
            if a.category() & lt.alert.category_t.error_notification:
                errors.append(a.message())
    try:
        secs = lt_peer.wait_seeding(h, TIMEOUT, on_poll=watch, stall=30)
        c.check(True, "(b) libtorrent completes from a v1-only magnet in %.1fs" % secs)
    except (TimeoutError, RuntimeError) as e:
        watch()
        c.check(False, "(b) libtorrent completes from a v1-only magnet",
                "%s; libtorrent errors: %s" % (e, errors[:3]))
    c.equal(lt_peer.status(h)["failed_bytes"], 0, "(b) libtorrent saw no hash failures")
    got_ti = h.torrent_file()
    if c.check(got_ti is not None, "(b) libtorrent got the metadata from shoal (BEP 9)"):
        c.equal(str(got_ti.info_hashes().v1), v1_hex, "(b) the metadata hashes to the v1 hash")
    ses.remove_torrent(h)
    del h, ses
    compare_trees(src, os.path.join(out_b, "tree-h"), "(b) libtorrent's copy is byte-identical")
    c.check(not os.path.exists(os.path.join(out_b, "tree-h", ".pad"))
            or all(not f for _, _, f in os.walk(os.path.join(out_b, "tree-h", ".pad"))),
            "(b) no pad file holds data on disk")

# ------------------------------------------------------------------ (c) aria2
# aria2 has no "add a peer" option and the .torrent has no announce URL: a
# tracker of a few lines in this process (loopback, one announce answered
# with shoal's address, BEP 23 compact) is how it meets shoal.
class Tracker(http.server.BaseHTTPRequestHandler):
    announces = []

    def do_GET(self):
        q = urllib.parse.urlparse(self.path).query
        Tracker.announces.append(q)
        peer = socket.inet_aton("127.0.0.1") + struct.pack(">H", seed.port)
        body = b"d8:intervali600e5:peers6:" + peer + b"e"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def aria2_info_hash(path):
    out = subprocess.run([aria2, "-S", path], capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        if line.startswith("Info Hash:"):
            return line.split(":", 1)[1].strip()
    return ""


aria2 = shutil.which("aria2c")
if not aria2:
    print("note: (c) aria2c is not installed; case skipped")
elif os.path.isfile(torrent) and ti is not None:
    lt_torrent = tmp.sub("lt-hybrid.torrent")
    open(lt_torrent, "wb").write(lt_peer.make_hybrid(src, ti.piece_length()))
    # aria2 1.36 computes a wrong v1 info-hash for any hybrid (it hashes a
    # re-encoding of the info dict, not its bytes): libtorrent's as well as
    # shoal's.  So it can fetch the metadata by a v1 magnet, but never join.
    c.check(aria2_info_hash(lt_torrent) not in ("", v1_hex),
            "(c) aria2 1.36 mis-hashes libtorrent's own hybrid (known aria2 limitation)",
            "(aria2 got it right: then the download below must work)")
    trk = http.server.HTTPServer(("127.0.0.1", 0), Tracker)
    threading.Thread(target=trk.serve_forever, daemon=True).start()
    out_c = tmp.sub("c-aria2-out")
    os.makedirs(out_c)
    cmd = [aria2, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
           "--enable-peer-exchange=false", "--seed-time=0", "--listen-port=%d" % free_port(),
           "--bt-tracker=http://127.0.0.1:%d/announce" % trk.server_address[1],
           "--bt-stop-timeout=10", "--summary-interval=0", "--console-log-level=warn",
           "-d", out_c, "magnet:?xt=urn:btih:" + v1_hex]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        p, out = None, "timeout: %s" % e
    trk.shutdown()
    ann = urllib.parse.parse_qs(Tracker.announces[0] if Tracker.announces else "",
                                encoding="latin-1")
    ann_hash = ann.get("info_hash", [""])[0].encode("latin-1").hex()
    c.equal(ann_hash, v1_hex, "(c) aria2 announced the v1 magnet's hash")
    c.check(("[METADATA]" + v1_hex) in out and "|OK  |" in out.replace("|OK |", "|OK  |"),
            "(c) aria2 fetched the metadata from shoal with the v1 hash (BEP 9)",
            " ".join(out.split())[-400:])
    if p is not None and p.returncode == 0:
        compare_trees(src, os.path.join(out_c, "tree-h"), "(c) aria2's copy is byte-identical",
                      skip_empty=True)
    else:
        print("note: (c) aria2 then re-hashed the metadata to %s and asked shoal for that "
              "swarm, as it does with libtorrent's hybrids: content download not possible "
              "with aria2 1.36" % aria2_info_hash(torrent))

c.equal(seed.stop(), 0, "shoal seed stops cleanly")
sys.exit(c.done())
