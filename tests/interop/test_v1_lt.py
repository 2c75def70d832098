"""v1 and hybrid swarms between shoal and libtorrent 2.0, both ways, on loopback.

(a) Same torrents: shoal's `share --format v1` and `--format hybrid` of a
    folder have the info-hashes libtorrent gives the same folder, format and
    piece length (for v1, with the files in the same order: libtorrent's
    v1_only keeps the directory listing's order, shoal the file tree's).
(b) libtorrent downloads shoal's v1 share by the v1 magnet ALONE (plus a
    connect to shoal's port), and shoal's hybrid share by its magnet alone:
    byte-identical.
(c) shoal downloads from libtorrent: a v1 torrent by its .torrent and by a
    urn:btih magnet alone; a hybrid by its v1 magnet alone (the swarm must
    end up keyed by the v2 hash).  Byte-identical, no pad file on disk.

The folder has pieces that span files: an empty file, files smaller than a
piece, a file of many pieces.  Every wait is bounded; daemons are stopped
by PID; libtorrent runs in this process.  Exit 77 only if libtorrent cannot
be imported (run with /usr/bin/python3).
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
import shoal_harness  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, wait_state, write_file  # noqa: E402

try:
    import libtorrent as lt
    import lt_peer  # noqa: E402
except ImportError as e:
    print("SKIP: cannot import libtorrent (%s); run with /usr/bin/python3" % e)
    sys.exit(77)

TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "120"))
c = Checks("v1_lt")
tmp = TestDir("shoal-lt-")


def make_tree(root):
    write_file(os.path.join(root, "big.bin"), os.urandom(5 * 1000 * 1000 + 123))
    write_file(os.path.join(root, "a", "small.txt"), b"a small file in a folder\n")
    write_file(os.path.join(root, "a", "empty"), b"")
    write_file(os.path.join(root, "a", "odd"), os.urandom(3 * 16384 + 77))
    write_file(os.path.join(root, "z.txt"), b"last\n")


def make_v1(path, piece_length, sorted_files=False):
    """libtorrent's v1-only torrent of PATH.  libtorrent keeps the order the
    directory listing gave (add_files); with `sorted_files` the files are
    added in file tree order instead, the order shoal writes, which a v1
    torrent leaves to its maker."""
    path = os.path.abspath(path.rstrip("/"))
    fs = lt.file_storage()
    if sorted_files:
        rels = []
        for dirpath, _, names in os.walk(path):
            for n in names:
                rels.append(os.path.relpath(os.path.join(dirpath, n), os.path.dirname(path)))
        for rel in sorted(rels, key=lambda p: p.split(os.sep)):
            fs.add_file(rel, os.path.getsize(os.path.join(os.path.dirname(path), rel)))
    else:
        lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


def compare(src, dst, what):
    return shoal_harness.compare_trees(c, src, dst, what)


def magnet_add(ses, link, save):
    atp = lt.parse_magnet_uri(link)
    atp.save_path = save
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(atp)


def lt_download(link, port, out, what):
    ses = lt_peer.session()
    os.makedirs(out)
    h = magnet_add(ses, link, out)
    lt_peer.connect(h, port)
    try:
        secs = lt_peer.wait_seeding(h, TIMEOUT, stall=40)
        c.check(True, "%s: libtorrent completes in %.1fs" % (what, secs))
    except (TimeoutError, RuntimeError) as e:
        c.check(False, "%s: libtorrent completes" % what, str(e))
    c.equal(lt_peer.status(h)["failed_bytes"], 0, "%s: no hash failures" % what)
    ses.remove_torrent(h)


# ------------------------------------------------------------------ (a), (b)
parent = tmp.sub("src")
src = os.path.join(parent, "tree")
make_tree(src)
seed = Daemon(tmp, "seed").start()
links = {}
for fmt in ("v1", "hybrid"):
    r = seed.cli("share", src, "--format", fmt, "--json", timeout=TIMEOUT)
    if r.returncode != 0:
        c.check(False, "(a) share --format %s" % fmt, r.stdout + r.stderr)
        continue
    sw = json.loads(r.stdout)
    sw = wait_state(seed, sw["id"], "seeding", timeout=60)
    links[fmt] = sw
    # shoal picks 16 KiB pieces for this size; libtorrent is told the same.
    data = make_v1(src, 16384, True) if fmt == "v1" else lt_peer.make_hybrid(src, 16384)
    c.equal(sw["info_hash_v1"], lt_peer.info_hash_v1(data),
            "(a) %s: shoal's v1 info-hash is libtorrent's" % fmt)
    if fmt == "hybrid":
        c.equal(sw["info_hash"], lt_peer.info_hash_v2(data),
                "(a) hybrid: shoal's v2 info-hash is libtorrent's")
    # Remove it so the other format can be shared from the same folder.
    if fmt == "v1":
        v1_magnet = "magnet:?xt=urn:btih:%s" % sw["info_hash_v1"]
        lt_download(v1_magnet, seed.port, tmp.sub("b-v1"), "(b) v1 magnet alone")
        compare(src, os.path.join(tmp.sub("b-v1"), "tree"), "(b) libtorrent's v1 copy")
        seed.api("DELETE", "/api/v1/swarms/%s" % sw["id"])
    else:
        lt_download(sw["magnet"], seed.port, tmp.sub("b-hybrid"), "(b) hybrid magnet alone")
        compare(src, os.path.join(tmp.sub("b-hybrid"), "tree"), "(b) libtorrent's hybrid copy")
c.equal(seed.stop(), 0, "shoal seed stops cleanly")

# ---------------------------------------------------------------------- (c)
ses = lt_peer.session()
handles = []
cases = []
for fmt in ("v1", "hybrid"):
    sp = tmp.sub("c-src-" + fmt)
    s = os.path.join(sp, "tree")
    make_tree(s)
    data = make_v1(s, 32768) if fmt == "v1" else lt_peer.make_hybrid(s, 32768)
    tor = os.path.join(sp, "tree.torrent")
    with open(tor, "wb") as f:
        f.write(data)
    h = lt_peer.add(ses, data, sp)
    handles.append(h)
    cases.append((fmt, s, tor, lt_peer.info_hash_v1(data),
                  lt_peer.info_hash_v2(data) if fmt == "hybrid" else None))
t0 = time.monotonic()
while not all(h.status().is_seeding for h in handles) and time.monotonic() - t0 < TIMEOUT:
    time.sleep(0.1)
c.check(all(h.status().is_seeding for h in handles), "(c) libtorrent seeds both")
port = ses.listen_port()
leech = Daemon(tmp, "leech").start()
n = 0
for fmt, s, tor, ih1, ih2 in cases:
    joins = [("its v1 magnet alone", "magnet:?xt=urn:btih:%s" % ih1)]
    if fmt == "v1":
        joins.insert(0, ("its .torrent", tor))
    for how, link in joins:
        n += 1
        out = tmp.sub("c-out-%d" % n)
        os.makedirs(out)
        r = leech.cli("join", link, "--into", out, "--peer", "127.0.0.1:%d" % port, "--json",
                      timeout=TIMEOUT)
        c.check(r.returncode == 0, "(c) %s by %s: shoal joins" % (fmt, how), r.stdout + r.stderr)
        try:
            sid = json.loads(r.stdout)["swarm"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        try:
            sw = wait_state(leech, sid, "seeding", timeout=TIMEOUT, leave=())
        except AssertionError as e:
            c.check(False, "(c) %s by %s: shoal completes" % (fmt, how), str(e))
            continue
        c.equal(sw["format"], fmt, "(c) %s by %s: the format is known" % (fmt, how))
        c.equal(sw["info_hash"], ih2 if ih2 else ih1,
                "(c) %s by %s: keyed by %s" % (fmt, how, "the v2 hash" if ih2 else "the v1 hash"))
        compare(s, os.path.join(out, "tree"), "(c) %s by %s: byte-identical" % (fmt, how))
        c.check(not os.path.exists(os.path.join(out, "tree", ".pad")),
                "(c) %s by %s: no pad file written" % (fmt, how))
        leech.request("DELETE", "/api/v1/swarms/%s" % sid)
for h in handles:
    ses.remove_torrent(h)
del handles, ses
c.equal(leech.stop(), 0, "shoal leecher stops cleanly")
c.done()
