"""Un-skipping a v1 file while a piece it shares with a wanted file is half
downloaded (docs/transfer.md, "Choosing files"): the piece's blocks written
before the change went to the part file, so they are not in the new file.
The picker must start such pieces afresh - not check them, fail them and
blame (and ban) the honest peer that sent them.  A raw peer serves a v1
torrent of 256 KiB pieces whose second piece straddles b.bin and a.nfo; the
leecher joins with --skip '*.nfo'; the peer holds back the last blocks of
that piece, the file is un-skipped, the held blocks go out; then every
file arrives byte for byte and the peer is neither struck nor banned."""
import hashlib
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawpeer import RawPeer, benc, msg  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, wait_for, wait_state  # noqa: E402

c = Checks("unskip_midpiece")
tmp = TestDir()
PL = 256 << 10
K = 1024
files = [("b.bin", 384 * K), ("a.nfo", 384 * K), ("c.bin", 512 * K)]
blobs = [os.urandom(sz) for _, sz in files]
data = b"".join(blobs)
pieces = b"".join(hashlib.sha1(data[i:i + PL]).digest() for i in range(0, len(data), PL))
info = {"name": "t", "piece length": PL, "pieces": pieces,
        "files": [{"length": sz, "path": [n]} for n, sz in files]}
ih = hashlib.sha1(benc(info)).digest()
tor = os.path.join(tmp.path, "t.torrent")
with open(tor, "wb") as fh:
    fh.write(benc({"info": info}))
held, release, lock = [], threading.Event(), threading.Lock()
served = []


def on_msg(conn, m):
    if m[0] != 6:
        return
    idx, begin, ln = struct.unpack(">III", m[1:13])
    blk = msg(7, struct.pack(">II", idx, begin) + data[idx * PL + begin: idx * PL + begin + ln])
    with lock:
        # Piece 1 (b.bin's end, a.nfo's start): its last 4 blocks wait.
        if idx == 1 and begin >= 192 * K and not release.is_set():
            held.append((conn, blk))
            return
        served.append((idx, begin))
    conn.send(blk)


rp = RawPeer(ih, ext={"m": {}}, n_pieces=len(pieces) // 20, unchoke=True, on_msg=on_msg)
lee = Daemon(tmp, "leech").start()
dl = tmp.sub("dl")
st, doc, _ = lee.request("POST", "/api/v1/swarms",
                         {"link": tor, "into": dl, "peers": [rp.addr], "skip": ["*.nfo"]})
c.equal(st, 202, "join --skip '*.nfo'")
sid = doc["swarm"]["id"]
c.check(wait_for("piece 1 part-way", lambda: sum(1 for i, b in served if i == 1) >= 12
                 and len(held) >= 4, 60), "piece 1 is 12 of 16 blocks in, 4 held back")
time.sleep(1.0)  # the 12 blocks are written (to b.bin and the part file)
st, doc, _ = lee.request("POST", "/api/v1/swarms/%d/files" % sid,
                         {"priorities": [{"index": 1, "priority": "normal"}]})
c.equal(st, 200, "a.nfo un-skipped while piece 1 is in progress")
with lock:
    release.set()
    for conn, blk in held:
        conn.send(blk)
sw = wait_state(lee, sid, timeout=60)
c.equal(sw["state"], "seeding", "every file arrives")
for (name, _), blob in zip(files, blobs):
    path = os.path.join(dl, "t", name)
    c.check(os.path.isfile(path) and open(path, "rb").read() == blob,
            "%s is the torrent's, byte for byte" % name)
log = lee.log()
c.check("failed its hash" not in log and "banning" not in log,
        "no piece failed its check and the peer was not banned",
        [ln for ln in log.splitlines() if "hash" in ln or "bann" in ln][:4])
c.equal(lee.stop(), 0, "the leecher stops cleanly")
rp.stop()
c.done()
