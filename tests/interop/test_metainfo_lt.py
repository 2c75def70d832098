#!/usr/bin/python3
"""test_metainfo_lt.py: shoal's v2 torrents must match libtorrent's, byte for byte
where it counts (the info-hash), and each side must read the other's .torrent.

Builds a fixture folder (nested folders, an empty file, exactly one block,
exactly one piece, a power-of-two size, odd sizes, non-ASCII names, names that
sort differently per component than as whole paths) and, for several piece
lengths, compares tests/interop/mktorrent (shoal's merkle + metainfo code)
with tests/interop/lt_torrent.py (libtorrent).  Exit 0 pass, 77 skip, 1 fail.
"""
import os
import random
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"
SRC = os.environ.get("SHOAL_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.environ["SHOAL_BIN"]) if os.environ.get("SHOAL_BIN") else "."
MKTORRENT = os.path.join(BUILD, "tests", "interop", "mktorrent")
LT_TOOL = os.path.join(SRC, "tests", "interop", "lt_torrent.py")

FIXTURE = {
    "a.txt": 1,
    "empty": 0,
    "one-block.bin": 16384,
    "block-plus-one.bin": 16385,
    "piece-32k.bin": 32768,
    "piece-64k.bin": 65536,
    "pow2-1MiB.bin": 1 << 20,
    "a-c": 10,               # sorts after folder "a" (component order)
    "a/b": 11,
    "odd/50001.bin": 50001,
    "odd/deep/er/100003.bin": 100003,
    "odd/three-pieces+7.bin": 3 * 65536 + 7,
    "\u00e9t\u00e9/na\u00efve.txt": 777,
    "\u65e5\u672c\u8a9e.bin": 40000,
    "z/\u03b1": 3,
    "z/empty-too": 0,
}
PIECE_LENGTHS = [16384, 32768, 65536, 4 << 20]


def run(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout.splitlines()


def make_fixture(top):
    rng = random.Random(52)
    for rel, size in FIXTURE.items():
        path = os.path.join(top, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        os.chmod(path, 0o644)  # no exec bit: libtorrent would add an "attr"


def compare(path, pl, tmp, tag):
    """Returns a list of failure messages for one (path, piece length)."""
    errors = []
    ours_t = os.path.join(tmp, tag + "-shoal.torrent")
    lt_t = os.path.join(tmp, tag + "-lt.torrent")
    ours = run(MKTORRENT, "create", path, str(pl), ours_t)
    ours_hash, ours_magnet = ours[0], ours[1]
    lt_hash = run(PY, LT_TOOL, "create", path, str(pl), lt_t)[0]
    if ours_hash != lt_hash:
        errors.append("%s: info-hash shoal %s != libtorrent %s" % (tag, ours_hash, lt_hash))

    # libtorrent reads our .torrent (layers included) to the same hash and files.
    lt_view = run(PY, LT_TOOL, "hash", ours_t)
    if lt_view[0] != ours_hash:
        errors.append("%s: libtorrent parses our torrent to %s" % (tag, lt_view[0]))
    # We read libtorrent's .torrent, verify its piece layers, same hash and files.
    our_view = run(MKTORRENT, "parse", lt_t)
    if our_view[0] != lt_hash:
        errors.append("%s: we parse libtorrent's torrent to %s" % (tag, our_view[0]))
    if our_view[1] != "layers=all":
        errors.append("%s: libtorrent's piece layers not all accepted: %s" % (tag, our_view[1]))
    if sorted(lt_view[1:]) != sorted(our_view[2:]):
        errors.append("%s: file lists differ:\n  lt:    %s\n  shoal: %s" % (tag, lt_view[1:], our_view[2:]))
    # Our magnet link names the same torrent for libtorrent.
    magnet_hash = run(PY, LT_TOOL, "magnet", ours_magnet)[0]
    if magnet_hash != ours_hash:
        errors.append("%s: libtorrent reads our magnet %s as %s" % (tag, ours_magnet, magnet_hash))
    return errors


def main():
    r = subprocess.run([PY, "-c", "import libtorrent"], capture_output=True)
    if r.returncode != 0:
        print("SKIP: python3-libtorrent is not importable by " + PY)
        return 77
    if not os.access(MKTORRENT, os.X_OK):
        print("FAIL: %s not built" % MKTORRENT)
        return 1
    errors = []
    checked = 0
    with tempfile.TemporaryDirectory(prefix="shoal-meta-") as tmp:
        top = os.path.join(tmp, "fixture-\u00fcn\u00ef")
        make_fixture(top)
        for pl in PIECE_LENGTHS:
            errors += compare(top, pl, tmp, "dir-%d" % pl)
            checked += 1
        # Single-file torrents: the file tree holds just the file's name.
        single = os.path.join(tmp, "single-\u00df.bin")
        with open(single, "wb") as f:
            f.write(random.Random(9).randbytes(100003))
        tiny = os.path.join(tmp, "tiny")
        with open(tiny, "wb") as f:
            f.write(b"x")
        for path, pl in ((single, 16384), (single, 1 << 20), (tiny, 16384)):
            errors += compare(path, pl, tmp, "file-%s-%d" % (os.path.basename(path), pl))
            checked += 1
    for e in errors:
        print("FAIL: " + e)
    if errors:
        return 1
    print("PASS: %d torrents identical to libtorrent's (info-hash, files, layers, magnet)" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
