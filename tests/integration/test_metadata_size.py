"""A peer announcing a wrong BEP 9 metadata_size must not stall a magnet join.

Issue 12 (5, second item): the first peer's metadata_size (from its BEP 10
extension handshake) was trusted for good: the buffer was sized by it, and
only peers announcing the same size were ever asked.  A liar that is the
first peer announces a size 16 KiB larger than the real info dictionary.

Round "garbage": the liar answers every metadata request with random bytes
of its announced size (the assembled dictionary fails the info-hash).
Round "silent": the liar never answers metadata requests.
In both, an honest shoal seed is added 3 s later: the magnet join must
complete, byte-identical, well before a generous deadline.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_state, write_file  # noqa: E402
from rawpeer import RawPeer, benc, info_of  # noqa: E402

c = Checks("metadata_size")
tmp = TestDir("shoal-mdsize-")

src = tmp.sub("content")
write_file(os.path.join(src, "a.bin"), os.urandom(2 * 1024 * 1024 + 5))
write_file(os.path.join(src, "b.txt"), b"honest\n")
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
info = info_of(open(torrent, "rb").read())
ih = bytes.fromhex(magnet.split("urn:btmh:1220")[1][:64])
n_pieces = seed.api("GET", "/api/v1/swarms/1")["num_pieces"]
WRONG = len(info) + 16384
stats = {"md": 0}
mode = {"md": "garbage"}


def on_msg(conn, m):
    if m[0] == 20 and m[1] == 1 and b"msg_typei0e" in m:
        j = m.index(b"5:piecei") + 8
        piece = int(m[j:m.index(b"e", j)])
        stats["md"] += 1
        if mode["md"] != "garbage" or not conn.ut_metadata:
            return
        size = min(16384, WRONG - piece * 16384)
        if size <= 0:
            return
        d = benc({"msg_type": 1, "piece": piece, "total_size": WRONG})
        conn.ext(conn.ut_metadata, d + os.urandom(size))


liar = RawPeer(ih, ext={"m": {"ut_metadata": 1}, "metadata_size": WRONG, "reqq": 250},
               n_pieces=n_pieces, on_msg=on_msg)

for rnd in ("garbage", "silent"):
    mode["md"] = rnd
    stats["md"] = 0
    leech = Daemon(tmp, "leech-" + rnd, ["--log-level", "debug"]).start()
    dl = tmp.sub("dl-" + rnd)
    os.makedirs(dl)
    st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": magnet, "into": dl,
                                                        "peers": [liar.addr]})
    c.check(st in (200, 202), "%s: the leecher joins with the liar as its only peer" % rnd, str(st))
    time.sleep(3)
    c.check(stats["md"] > 0, "%s: the liar was asked for metadata of its size" % rnd, str(stats))
    st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": magnet, "into": dl,
                                                        "peers": ["127.0.0.1:%d" % seed.port]})
    c.check(st in (200, 202), "%s: then the honest seed is added" % rnd, str(st))
    t0 = time.monotonic()
    try:
        wait_state(leech, 1, timeout=60)
        done = True
    except AssertionError as e:
        print("# %s" % e)
        done = False
    print("# %s: %s %.1f s after the honest seed was added" % (
        rnd, "completed" if done else "NOT completed", time.monotonic() - t0))
    c.check(done, "%s: the magnet join completes despite the wrong metadata_size" % rnd)
    if done:
        c.equal(tree_digest(os.path.join(dl, "content")), tree_digest(src),
                "%s: the download is byte-identical" % rnd)
    c.equal(leech.stop(), 0, "%s: leecher stops cleanly" % rnd)
liar.stop()
c.equal(seed.stop(), 0, "seed stops cleanly")
c.done()
