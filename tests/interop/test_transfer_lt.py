"""Transfers between shoal and libtorrent 2.0 (the reference v2 client), on loopback.

(a) libtorrent downloads a folder shared by shoal, from the .torrent shoal wrote,
    connecting to shoal's peer port: byte-identical.
(c) libtorrent downloads the same folder from shoal's v2 magnet link ALONE
    (plus a connect to shoal's port): it fetches the metadata (BEP 9) and the
    piece layers by hash requests with proofs (BEP 52), byte-identical.
(d) shoal joins a hybrid (v1 + v2, pad files) that libtorrent seeds, by its
    .torrent and by a magnet with both hashes: byte-identical, no pad file.
(b) shoal downloads a folder seeded by libtorrent from a v2 magnet link ALONE
    (plus --peer to the seed): BEP 9 metadata, BEP 52 hash requests (a file of
    more than 512 pieces needs several), byte-identical.

The tree has nested folders, a 20 MB file (1221 pieces of 16 KiB in (b)), a
small file, a one-block file and an empty file.  Every wait is bounded; the
daemons are stopped by PID; libtorrent runs in this process.
Exit 77 only if libtorrent cannot be imported (run with /usr/bin/python3).
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
import shoal_harness  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, write_file  # noqa: E402

try:
    import libtorrent  # noqa: F401
    import lt_peer  # noqa: E402
except ImportError as e:
    print("SKIP: cannot import libtorrent (%s); run with /usr/bin/python3" % e)
    sys.exit(77)

TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "180"))
c = Checks("transfer_lt")
tmp = TestDir("shoal-lt-")




def make_tree(root):
    write_file(os.path.join(root, "big", "twenty.bin"), os.urandom(20 * 1000 * 1000 + 123))
    write_file(os.path.join(root, "a", "b", "c", "deep.txt"), b"deep in the tree\n")
    write_file(os.path.join(root, "a", "one-block"), os.urandom(16384))
    write_file(os.path.join(root, "a", "odd"), os.urandom(3 * 16384 + 77))
    write_file(os.path.join(root, "small.txt"), b"a small file\n")
    write_file(os.path.join(root, "empty"), b"")


def compare_trees(src, dst, what, skip_empty=False):
    return shoal_harness.compare_trees(c, src, dst, what, skip_empty)


def seeding_after_check(h):
    """Wait (bounded) for libtorrent to finish checking the data it seeds."""
    t0 = time.monotonic()
    while not h.status().is_seeding and time.monotonic() - t0 < TIMEOUT:
        time.sleep(0.05)


def wait_swarm(d, sid, want="seeding", timeout=TIMEOUT, poll=0.1, on_poll=None):
    """Poll GET /swarms/{id} until state == want (or error); returns (doc, seconds)."""
    t0 = time.monotonic()
    sw = None
    while time.monotonic() - t0 < timeout:
        sw = d.api("GET", "/api/v1/swarms/%s" % sid)
        if on_poll:
            on_poll(sw)
        if sw["state"] in (want, "error"):
            break
        time.sleep(poll)
    return sw, time.monotonic() - t0


# ------------------------------------------------------------- (a) shoal -> libtorrent
src_a = tmp.sub("a-src", "tree-a")
make_tree(src_a)
seed = Daemon(tmp, "shoal-seed").start()
r = seed.cli("share", src_a, "--format", "v2", timeout=TIMEOUT)
c.equal(r.returncode, 0, "(a) shoal share exits 0")
lines = r.stdout.strip().split("\n")
torrent = lines[1] if len(lines) == 2 else ""
c.check(os.path.isfile(torrent), "(a) shoal wrote a .torrent", r.stdout + r.stderr)

if os.path.isfile(torrent):
    ses = lt_peer.session()
    out_a = tmp.sub("a-lt-out")
    os.makedirs(out_a)
    h = lt_peer.add(ses, torrent, out_a)
    lt_peer.connect(h, seed.port)
    seen_peer = {}

    def look():
        if not seen_peer:
            _, doc, _ = seed.request("GET", "/api/v1/swarms/1/peers")
            for p in (doc or {}).get("peers", []):
                seen_peer.update(p)
    # Known shoal bug (reported to the lead, 2026-11-28): libtorrent 2.0.8 pads
    # every file of a v2 torrent to a piece boundary (the last file too) and
    # requests whole 16 KiB blocks that run into that padding; node/engine.c
    # on_request() answers such a request with -EBADMSG and closes the
    # connection ("bad message 6"), so libtorrent stalls part-way.  The fix
    # is in shoal (serve the file's bytes then zeros up to the block's end),
    # not in this check.
    try:
        secs = lt_peer.wait_seeding(h, TIMEOUT, on_poll=look, stall=30)
        c.check(True, "(a) libtorrent completes the download from shoal in %.1fs" % secs)
    except (TimeoutError, RuntimeError) as e:
        c.check(False, "(a) libtorrent completes the download from shoal",
                "%s [shoal bug if shoal's log says 'bad message 6': requests into v2 "
                "piece padding refused]" % e)
    st = lt_peer.status(h)
    c.equal(st["failed_bytes"], 0, "(a) libtorrent saw no hash failures")
    ses.remove_torrent(h)
    del h, ses
    compare_trees(src_a, os.path.join(out_a, "tree-a"), "(a) libtorrent's copy is byte-identical")
    if c.check(bool(seen_peer), "(a) shoal listed libtorrent in /peers while it downloaded",
               "(never seen: the connection did not last a 100 ms poll)"):
        c.check(seen_peer.get("encrypted") is False,
                "(a) as a plain (unencrypted) peer", "(peer %r)" % seen_peer)
        # lt_peer sets libtorrent's user agent (the extended handshake's "v")
        c.check(str(seen_peer.get("client", "")).startswith("lt_peer/"),
                "(a) naming its client as libtorrent announces it", "(peer %r)" % seen_peer)
    sw = seed.api("GET", "/api/v1/swarms/1")
    c.check(sw["transfer"]["uploaded"] >= sw["total_size"],
            "(a) shoal's uploaded counter covers the data",
            "(%r; fails with the padding bug above)" % sw["transfer"])

# ------------------------------------------------- (c) shoal -> libtorrent, magnet alone
magnet_a = lines[0] if lines else ""
c.check(magnet_a.startswith("magnet:?xt=urn:btmh:"), "(c) shoal share --format v2 printed a v2 magnet",
        repr(magnet_a))
if magnet_a.startswith("magnet:"):
    ses = lt_peer.session()
    out_c = tmp.sub("c-lt-out")
    os.makedirs(out_c)
    atp = libtorrent.parse_magnet_uri(magnet_a)
    atp.save_path = out_c
    atp.flags &= ~libtorrent.torrent_flags.auto_managed
    atp.flags &= ~libtorrent.torrent_flags.paused
    h = ses.add_torrent(atp)
    lt_peer.connect(h, seed.port)
    errors = []

    def watch():
        for a in ses.pop_alerts():
            m = a.message()
            if a.category() & libtorrent.alert.category_t.error_notification or "hash" in m:
                errors.append(m)
    # Before the fix shoal answered a hash request whose proof_layers
    # reached its own chunk with that many uncle hashes, the missing ones
    # uninitialised memory; libtorrent dropped the answer ("invalid
    # hashes") and never finished.
    try:
        secs = lt_peer.wait_seeding(h, TIMEOUT, on_poll=watch, stall=30)
        c.check(True, "(c) libtorrent completes from shoal's magnet alone in %.1fs" % secs)
    except (TimeoutError, RuntimeError) as e:
        watch()
        c.check(False, "(c) libtorrent completes from shoal's magnet alone",
                "%s; libtorrent errors: %s" % (e, errors[:3]))
    watch()
    c.check(not any("invalid hashes" in m for m in errors),
            "(c) libtorrent accepted every HASHES answer", "(%s)" % errors[:3])
    c.equal(lt_peer.status(h)["failed_bytes"], 0, "(c) libtorrent saw no hash failures")
    ses.remove_torrent(h)
    del h, ses
    compare_trees(src_a, os.path.join(out_c, "tree-a"), "(c) libtorrent's copy is byte-identical")
c.equal(seed.stop(), 0, "(a) shoal seed stops cleanly")

# ------------------------------------------------------------- (b) libtorrent -> shoal
src_b_parent = tmp.sub("b-src")
src_b = os.path.join(src_b_parent, "tree-b")
make_tree(src_b)
data = lt_peer.make_v2(src_b, 16384)
ih = lt_peer.info_hash_v2(data)
pieces_big = (20 * 1000 * 1000 + 123 + 16383) // 16384
c.check(pieces_big > 512, "(b) the large file has %d pieces (> 512: chunked hash requests)" % pieces_big)
ses = lt_peer.session()
h = lt_peer.add(ses, data, src_b_parent)
seeding_after_check(h)
c.check(h.status().is_seeding, "(b) libtorrent seeds the v2 torrent it made")
lt_port = ses.listen_port()

leech = Daemon(tmp, "shoal-leech").start()
out_b = tmp.sub("b-shoal-out")
os.makedirs(out_b)
magnet = "magnet:?xt=urn:btmh:1220%s&dn=%s" % (ih, "tree-b")
t0 = time.monotonic()
r = leech.cli("join", magnet, "--into", out_b, "--peer", "127.0.0.1:%d" % lt_port, "--json",
              timeout=TIMEOUT)
c.check(r.returncode == 0, "(b) shoal join MAGNET --peer exits 0", r.stdout + r.stderr)
peers_seen = []


def record_peers(sw):
    if not peers_seen and sw["state"] in ("metadata", "downloading"):
        _, doc, _ = leech.request("GET", "/api/v1/swarms/%s/peers" % sw["id"])
        # Only a connection that got through its handshake: the first try
        # may still be the encrypted hello libtorrent answers by closing.
        peers_seen.extend(p for p in (doc or {}).get("peers", []) if p.get("state") == "active")


try:
    sid = json.loads(r.stdout)["swarm"]["id"]
except (ValueError, KeyError, TypeError):
    sid = 1
sw, secs = wait_swarm(leech, sid, on_poll=record_peers)
c.equal(sw["state"], "seeding", "(b) shoal's swarm reaches seeding (%.1fs)" % secs)
c.equal(sw["info_hash"], ih, "(b) shoal's info-hash is libtorrent's")
c.equal(sw.get("bytes_have"), sw.get("total_size"), "(b) bytes_have == total_size")
c.equal(sw["transfer"]["hash_failures"], 0, "(b) no hash failures from an honest seed")
compare_trees(src_b, os.path.join(out_b, "tree-b"), "(b) shoal's copy is byte-identical")
tor = sw.get("torrent")
if tor and os.path.isfile(tor):
    c.equal(lt_peer.info_hash_v2(open(tor, "rb").read()), ih,
            "(b) the .torrent shoal rebuilt from metadata parses in libtorrent to the same hash")
else:
    # Known shoal bug (reported): for a swarm joined by magnet the API names
    # DATA_DIR/torrents/<hash>.torrent but the file is never written.
    c.check(False, "(b) the .torrent the API names for the joined swarm exists",
            "(%r) [shoal bug: joined swarms report a .torrent path never written]" % tor)
if peers_seen:
    p = peers_seen[0]
    c.check(p.get("encrypted") is False, "(b) the connection to libtorrent is plain", "(%r)" % p)
st = lt_peer.status(h)
c.check(st["uploaded"] >= sw["total_size"], "(b) libtorrent uploaded it all",
        "(%r)" % st)
ses.remove_torrent(h)
del h, ses
c.equal(leech.stop(), 0, "(b) shoal leecher stops cleanly")

# ------------------------------------------- (d) libtorrent seeds a hybrid -> shoal
# A hybrid torrent (v1 and v2 keys in one info dict, BEP 47 pad files in the
# v1 file list) joins through its v2 half: by its .torrent, and by a magnet
# carrying both hashes.  No pad file may appear on disk.
src_d_parent = tmp.sub("d-src")
src_d = os.path.join(src_d_parent, "tree-d")
make_tree(src_d)
data = lt_peer.make_hybrid(src_d, 65536)
tor_d = os.path.join(src_d_parent, "tree-d.torrent")
with open(tor_d, "wb") as f:
    f.write(data)
ih1, ih2 = lt_peer.info_hash_v1(data), lt_peer.info_hash_v2(data)
c.check(b"4:attr1:p" in data and b"6:pieces" in data and b"9:file tree" in data,
        "(d) libtorrent made a hybrid with pad files")
ses = lt_peer.session()
h = lt_peer.add(ses, data, src_d_parent)
seeding_after_check(h)
c.check(h.status().is_seeding, "(d) libtorrent seeds the hybrid")
lt_port = ses.listen_port()
leech = Daemon(tmp, "shoal-hybrid").start()
for how, link in (("its .torrent", tor_d),
                  ("a magnet with both hashes",
                   "magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s&dn=tree-d" % (ih1, ih2))):
    out_d = tmp.sub("d-out-%d" % len(how))
    os.makedirs(out_d)
    r = leech.cli("join", link, "--into", out_d, "--peer", "127.0.0.1:%d" % lt_port, "--json",
                  timeout=TIMEOUT)
    c.check(r.returncode == 0, "(d) shoal joins the hybrid by %s" % how, r.stdout + r.stderr)
    try:
        sid = json.loads(r.stdout)["swarm"]["id"]
    except (ValueError, KeyError, TypeError):
        sid = 1
    sw, secs = wait_swarm(leech, sid)
    c.equal(sw["state"], "seeding", "(d) by %s: shoal completes (%.1fs)" % (how, secs))
    c.equal(sw["info_hash"], ih2, "(d) by %s: the swarm's hash is the v2 one" % how)
    compare_trees(src_d, os.path.join(out_d, "tree-d"), "(d) by %s: byte-identical" % how)
    c.check(not os.path.exists(os.path.join(out_d, "tree-d", ".pad")),
            "(d) by %s: no pad file written" % how)
    leech.request("DELETE", "/api/v1/swarms/%s" % sid)
ses.remove_torrent(h)
del h, ses
c.equal(leech.stop(), 0, "(d) shoal leecher stops cleanly")
c.done()
