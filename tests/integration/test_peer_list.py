"""Closing peers while walking the peer list must not skip the rest.

Issue 12 (5, first item): peer_close relinked p->next onto the engine's
dead list, so a loop `for (p = xf->peers; p; p = p->next)` that closed a
peer jumped into the dead list and never saw the peers after it.  The
loop that shows it: when a download completes, every connected peer that
is itself complete is dropped ("both complete").

A leecher is connected to three raw "seeds" (this script: full bitfield,
never answer a request) and then to an honest shoal seed.  When the
download completes, all four complete peers must be closed at once: the
raw peers see their connections closed, and the leecher lists no peer.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, wait_state, write_file  # noqa: E402
from rawpeer import RawPeer  # noqa: E402

c = Checks("peer_list")
tmp = TestDir("shoal-peerlist-")

src = tmp.sub("content")
write_file(os.path.join(src, "data.bin"), os.urandom(3 * 1024 * 1024 + 7))
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
ih = bytes.fromhex(magnet.split("urn:btmh:1220")[1][:64])
n_pieces = seed.api("GET", "/api/v1/swarms/1")["num_pieces"]

raws = [RawPeer(ih, ext={"m": {}, "p": 0}, n_pieces=n_pieces) for _ in range(3)]
leech = Daemon(tmp, "leech", ["--log-level", "debug"]).start()
dl = tmp.sub("dl")
os.makedirs(dl)
st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": torrent, "into": dl,
                                                    "peers": [rp.addr for rp in raws]})
c.check(st in (200, 202), "the leecher joins with three raw complete peers", str(st))
c.check(wait_for("three raw peers connected", lambda: all(rp.conns >= 1 for rp in raws), 20),
        "all three raw peers are connected", str([rp.conns for rp in raws]))
st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": torrent, "into": dl,
                                                    "peers": ["127.0.0.1:%d" % seed.port]})
c.check(st in (200, 202), "then the honest seed is added", str(st))
wait_state(leech, 1, timeout=90)
c.equal(tree_digest(os.path.join(dl, "content")), tree_digest(src), "the download is byte-identical")


def all_closed():
    return all(rp.closed >= rp.conns >= 1 for rp in raws)


closed = wait_for("every raw peer closed", all_closed, 5)
print("# raw peers (connections, closed by the leecher): %s" % [(rp.conns, rp.closed) for rp in raws])
c.check(closed, "on completion every complete raw peer is closed, not only the first in the list",
        str([(rp.conns, rp.closed) for rp in raws]))
peers = wait_for("the leecher lists no peer",
                 lambda: not leech.api("GET", "/api/v1/swarms/1/peers")["peers"], 5)
c.check(peers, "the leecher keeps no complete peer connected",
        str([p["address"] for p in leech.api("GET", "/api/v1/swarms/1/peers")["peers"]]))
c.check(leech.log().count("both complete") >= 4, "four peers were closed as both complete",
        "(%d in the log)" % leech.log().count("both complete"))
for rp in raws:
    rp.stop()
c.equal(leech.stop(), 0, "leecher stops cleanly")
c.equal(seed.stop(), 0, "seed stops cleanly")
c.done()
