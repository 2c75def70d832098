"""Streaming before a piece is whole (docs/streaming.md, "Block proofs"): a
v2 torrent with 2 MiB pieces (made by libtorrent, the way large torrents
come), a shoal seed whose upload is held to 512 KiB/s (a piece takes 4 s),
and a shoal leecher streaming it.  The leecher asks the seed for the block
hashes under each window piece (a BEP 52 hash request of the base layer),
checks them against the piece layer and serves each block once its own
hash matches: the first bytes reach the reader while the piece holding
them is not yet verified, and they, and the whole file read through the
stream, are the seed's bytes.  A piece of a v1-only torrent never gets
that far early (its pieces are checked whole), and the reader still gets
the right bytes."""
import base64
import hashlib
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_state, write_file  # noqa: E402

try:
    import libtorrent  # noqa: F401
except ImportError:
    print("1..0 # SKIP python3-libtorrent is not installed (scripts/deps.sh)")
    sys.exit(77)

MiB = 1024 * 1024
PIECE = 2 * MiB
c = Checks("stream_blocks")
tmp = TestDir()


def make_torrent(folder, name, flags_name, out):
    code = ("import sys, libtorrent as lt\n"
            "fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])\n"
            "fl = {'v2': lt.create_torrent.v2_only, 'hybrid': 0}[sys.argv[3]]\n"
            "ct = lt.create_torrent(fs, int(sys.argv[2]), flags=fl)\n"
            "lt.set_piece_hashes(ct, sys.argv[4])\n"
            "open(sys.argv[5], 'wb').write(lt.bencode(ct.generate()))\n")
    r = subprocess.run([sys.executable, "-c", code, os.path.join(folder, name), str(PIECE),
                        flags_name, folder, out], capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 0, "libtorrent makes a %s torrent of 2 MiB pieces" % flags_name,
            r.stderr[-300:])


def have_piece(d, sid, piece):
    st, doc, _ = d.request("GET", "/api/v1/swarms/%d/pieces" % sid)
    if st != 200:
        return None
    bits = base64.b64decode(doc["bitfield"])
    return bool(bits[piece // 8] & (0x80 >> (piece % 8)))


def run(fmt):
    src = tmp.sub("content-" + fmt)
    data = os.urandom(12 * MiB + 12345)
    write_file(os.path.join(src, "big.bin"), data)
    torrent = tmp.sub(fmt + ".torrent")
    make_torrent(src, "big.bin", fmt, torrent)
    seed = Daemon(tmp, "seed-" + fmt, ["--upload-limit", "512K"]).start()
    st, doc, _ = seed.request("POST", "/api/v1/swarms", {"link": torrent, "into": src})
    c.check(st in (200, 202), "%s: the seed adopts the file" % fmt, (st, doc))
    wait_state(seed, 1)
    lee = Daemon(tmp, "leech-" + fmt, ["--log-level", "debug"]).start()
    dl = tmp.sub("dl-" + fmt)
    st, doc, _ = lee.request("POST", "/api/v1/swarms",
                             {"link": torrent, "into": dl, "peers": ["127.0.0.1:%d" % seed.port]})
    c.check(st == 202, "%s: the leecher joins" % fmt, (st, doc))
    st, tok, _ = lee.request("POST", "/api/v1/swarms/1/files/0/stream", {})
    c.equal(st, 201, "%s: a stream address" % fmt)
    # The first 64 KiB: they lie in piece 0, 2 MiB, 4 s at the seed's cap.
    t0 = time.monotonic()
    req = urllib.request.Request(tok["url"], headers={"Range": "bytes=0-65535"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        first = resp.read()
    took = time.monotonic() - t0
    early = have_piece(lee, 1, 0) is False
    c.equal(first, data[:65536], "%s: the first 64 KiB are the seed's bytes" % fmt)
    print("# %s: first 64 KiB after %.2f s; piece 0 verified then: %s" % (fmt, took, not early))
    c.check(early, "%s: they came while piece 0 was not yet verified whole "
            "(blocks checked by their own hashes)" % fmt)
    # The whole file through the stream, while it downloads.
    with urllib.request.urlopen(tok["url"], timeout=120) as resp:
        body = resp.read()
    c.equal(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest(),
            "%s: the whole stream is the seed's file" % fmt)
    wait_state(lee, 1, timeout=120)
    c.equal(open(os.path.join(dl, "big.bin"), "rb").read() == data, True,
            "%s: the downloaded file is the seed's" % fmt)
    asked = sum(1 for line in open(lee.log_path) if "block hashes of piece" in line)
    verified = sum(1 for line in open(lee.log_path) if "block hashes at" in line and "verified" in line)
    print("# %s: block hashes asked for %d pieces, %d verified" % (fmt, asked, verified))
    c.check(asked >= 1 and verified == asked, "%s: every block-hash answer verified" % fmt,
            (asked, verified))
    c.equal(lee.stop(), 0, "%s: the leecher stops cleanly" % fmt)
    c.equal(seed.stop(), 0, "%s: the seed stops cleanly" % fmt)


run("v2")
run("hybrid")
c.done()
