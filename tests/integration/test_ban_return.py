"""A banned peer must stay banned when it comes back without an extension
handshake, from another source port, or under another address but the
same peer id.

Issue 12 (5, fourth item): bans were checked only when an incoming peer
sent a BEP 10 extension handshake naming a listen port, and were keyed by
(IP, that port); a peer that simply left the extension handshake out was
let in again, asked for blocks and its bytes counted.

Loopback is a /8, so raw peers here dial from 127.0.0.2, .3 and .4: a ban
of 127.0.0.2 is a ban of that host only.  The leecher joins from the
.torrent with no peer of its own; a raw peer from 127.0.0.2 offers every
piece and answers each request with random bytes until it is banned.  Then:
  - 127.0.0.2 again, new peer id, no extension handshake: refused (closed
    before our handshake, no request, nothing counted);
  - 127.0.0.3 with the banned peer id: refused;
  - 127.0.0.4, new peer id, no extension handshake: accepted (asked for
    blocks), so the refusals above are the ban and nothing else;
  - after a restart of the leecher, 127.0.0.2 is still refused.
"""
import os
import struct
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_for, wait_state, write_file  # noqa: E402
from rawpeer import Dialer, msg  # noqa: E402

c = Checks("ban_return")
tmp = TestDir("shoal-ban-")

src = tmp.sub("content")
write_file(os.path.join(src, "data.bin"), os.urandom(2 * 1024 * 1024 + 5))
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
ih = bytes.fromhex(magnet.split("urn:btmh:1220")[1][:64])
n_pieces = seed.api("GET", "/api/v1/swarms/1")["num_pieces"]
c.equal(seed.stop(), 0, "the seed made the torrent and stops (the leecher never sees it)")

leech = Daemon(tmp, "leech", ["--log-level", "debug"]).start()
dl = tmp.sub("dl")
os.makedirs(dl)
st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": torrent, "into": dl})
c.check(st in (200, 202), "the leecher joins from the .torrent, with no peer", str(st))
wait_state(leech, 1, want="downloading", timeout=30)


def garbage(d, m):
    """Answer every request with random bytes of the asked length."""
    if m[0] == 6 and len(m) == 13:
        index, begin, length = struct.unpack(">III", m[1:13])
        d.send(msg(7, m[1:9] + os.urandom(length)))


def transfer():
    return leech.api("GET", "/api/v1/swarms/1")["transfer"]


# 1. The liar, with an extension handshake that names a listen port.
bad = Dialer(leech.port, ih, src="127.0.0.2", on_msg=garbage)
bad.dial(ext={"m": {"ut_metadata": 1}, "p": 6881}, n_pieces=n_pieces, unchoke=True)
c.check(bad.handshaken, "the liar from 127.0.0.2 is let in the first time")
bad.pump(30)
c.check(bad.closed_by_other, "it is dropped after sending bad data", str(bad.counts))
c.check(wait_for("the ban in the log", lambda: "banning 127.0.0.2:" in leech.log(), 5),
        "the leecher logs the ban of 127.0.0.2")
# Blocks the liar sent before the ban are still being written and checked:
# wait until the failure count holds still for a second, so "before" counts
# all of the first visit.
last, still = transfer()["hash_failures"], 0
for _ in range(50):
    time.sleep(0.2)
    now = transfer()["hash_failures"]
    still = still + 1 if now == last else 0
    last = now
    if still >= 5:
        break
before = transfer()
print("# after the ban: %s; the liar was asked for %d blocks" % (before, bad.counts.get(6, 0)))


def comes_back(src, peer_id=None, what=""):
    d = Dialer(leech.port, ih, src=src, peer_id=peer_id, on_msg=garbage)
    d.dial(ext=None, n_pieces=n_pieces, unchoke=True)
    if not d.closed_by_other:
        d.pump(6, until=lambda: d.counts.get(6, 0) > 0 and not d.buf)
        if d.counts.get(6, 0):
            d.pump(2)  # let the garbage it sent be counted, as it was before
    d.close()
    print("# %s: handshake answered %s, closed by the leecher %s, messages %s" % (
        what, d.handshaken, d.closed_by_other, d.counts))
    return d


# 2. Same IP, new peer id, no extension handshake (so no listen port).
again = comes_back("127.0.0.2", what="127.0.0.2 without extension handshake")
c.check(again.closed_by_other and not again.handshaken,
        "127.0.0.2 coming back without an extension handshake is refused at its handshake")
c.equal(again.counts.get(6, 0), 0, "it is asked for no block")
after = transfer()
c.equal(after["downloaded"], before["downloaded"], "nothing it sent is counted as downloaded")
c.equal(after["hash_failures"], before["hash_failures"], "and no piece was tried with its data")

# 3. Another IP, the banned peer id.
same_id = comes_back("127.0.0.3", peer_id=bad.peer_id, what="127.0.0.3 with the banned peer id")
c.check(same_id.closed_by_other and not same_id.handshaken,
        "the banned peer id is refused from another address")
c.equal(same_id.counts.get(6, 0), 0, "it is asked for no block either")

# 4. A host that was never banned is let in and asked for blocks.
honest = Dialer(leech.port, ih, src="127.0.0.4")
honest.dial(ext=None, n_pieces=n_pieces, unchoke=True)
honest.pump(6, until=lambda: honest.counts.get(6, 0) > 0)
honest.close()
c.check(honest.handshaken and honest.counts.get(6, 0) > 0,
        "a peer from 127.0.0.4 without extension handshake is let in and asked for blocks",
        str(honest.counts))

# 5. The ban outlives a restart.
c.equal(leech.stop(), 0, "the leecher stops cleanly")
leech.start()
wait_state(leech, 1, want="downloading", timeout=30)
later = comes_back("127.0.0.2", what="127.0.0.2 after a restart")
c.check(later.closed_by_other and not later.handshaken,
        "after a restart 127.0.0.2 is still refused")
c.equal(later.counts.get(6, 0), 0, "and asked for nothing")
c.equal(leech.stop(), 0, "the leecher stops cleanly again")
c.done()
