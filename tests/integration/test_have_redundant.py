"""No HAVE goes to a seed.

A peer that has every piece learns nothing from our HAVEs; with 16 KiB
pieces a seed connected to a downloader got one HAVE (a record and a TCP
segment) per piece.  A peer with only some pieces still hears of every
piece, even one it has: a super-seed (BEP 16) offers its next piece only on
our HAVE of the last (a read-only review caught an earlier version that
skipped those too).

A leecher downloads from a capped seed while two raw peers are connected
to it: one that has every piece (full bitfield, never unchokes), one that
has none.  The one with none must be told of every piece (bitfield or
HAVE), the one with all of them of none.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, write_file  # noqa: E402
from rawpeer import Dialer  # noqa: E402

c = Checks("have_redundant")
tmp = TestDir("shoal-have-")
src = tmp.sub("src", "content")
write_file(os.path.join(src, "a.bin"), os.urandom(6 * 1024 * 1024))
seed = Daemon(tmp, "seed", ["--upload-limit", "2M"]).start()
r = seed.cli("share", src)
c.equal(r.returncode, 0, "seed shares the directory")
magnet, torrent = r.stdout.split("\n")[:2]
sw = seed.api("GET", "/api/v1/swarms/1")
n_pieces = sw["num_pieces"]
key = bytes.fromhex(sw["info_hash"])[:20]
c.check(n_pieces >= 16, "the share has pieces enough to count", str(n_pieces))

leech = Daemon(tmp, "leech").start()
dl = tmp.sub("dl")
os.makedirs(dl)
# The leecher joins knowing no peer, so nothing arrives before both raw
# peers are connected and the full one's bitfield is read.
r = leech.cli("join", torrent, "--into", dl)
c.equal(r.returncode, 0, "the leecher joins by .torrent")

told = {"empty": set(), "full": set()}   # pieces named by a BITFIELD or a HAVE
haves = {"empty": [], "full": []}         # pieces named by a HAVE


def watcher(name):
    def on_msg(d, m):
        if m[0] == 4 and len(m) == 5:            # HAVE
            told[name].add(int.from_bytes(m[1:5], "big"))
            haves[name].append(int.from_bytes(m[1:5], "big"))
        elif m[0] == 5:                          # BITFIELD (sent at once, before ours is read)
            for i in range(n_pieces):
                if m[1 + i // 8] & (0x80 >> (i % 8)):
                    told[name].add(i)
    return on_msg


empty = Dialer(leech.port, key, src="127.0.0.2", on_msg=watcher("empty")).dial(ext={"m": {}})
full = Dialer(leech.port, key, src="127.0.0.3", on_msg=watcher("full")).dial(
    ext={"m": {}}, n_pieces=n_pieces)
c.check(empty.handshaken and full.handshaken, "both raw peers are accepted by the leecher")


def knows_full():
    empty.pump(0.1)
    full.pump(0.1)
    peers = leech.api("GET", "/api/v1/swarms/1/peers")["peers"]
    return any(p.get("progress") == 1.0 for p in peers)


c.check(wait_for("the leecher to read the full peer's bitfield", knows_full, 20),
        "the leecher knows one raw peer has every piece")
r = leech.cli("join", torrent, "--into", dl, "--peer", "127.0.0.1:%d" % seed.port)
c.equal(r.returncode, 0, "... then it is given the seed")
deadline = time.monotonic() + 60
state = None
while time.monotonic() < deadline:
    empty.pump(0.2)
    full.pump(0.2)
    state = leech.api("GET", "/api/v1/swarms/1")["state"]
    if state == "seeding":
        break
empty.pump(1.0)   # the last HAVEs
c.equal(state, "seeding", "the leecher completes")
c.equal(tree_digest(os.path.join(dl, "content")), tree_digest(src), "its copy is byte-identical")
c.equal(len(told["empty"]), n_pieces, "the peer with no piece is told of every piece")
c.equal(haves["full"], [], "the peer with every piece gets no HAVE")
c.check(len(haves["empty"]) > n_pieces // 2,
        "... while the empty one's news came as HAVEs during the download", str(len(haves["empty"])))
empty.close()
full.close()
c.equal(leech.stop(), 0, "the leecher stops cleanly")
c.equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
