"""Unsolicited BEP 52 HASHES from a liar must not get an honest peer banned.

Issue 12 (5, third item): any HASHES message of the right shape was stored,
whoever sent it and whether or not we had asked, and a layer that failed
its pieces root was blamed on the peer whose chunk completed it.  A liar
(this script) floods bogus hashes for chunk 0 of a file whose layer takes
two chunks, while the honest seed, slowed to 20 KB/s, sends its two
answers: the liar's chunk lands between them, and the seed got the ban.

The leecher joins from the magnet link with the seed, then the liar; once
the layers had time to come, the seed's limit is lifted.  The seed must
not be banned and the download must complete byte-identical.
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, wait_state, write_file  # noqa: E402
from rawpeer import RawPeer, info_of, msg  # noqa: E402

c = Checks("unsolicited_hashes")
tmp = TestDir("shoal-hashes-")

src = tmp.sub("content")
write_file(os.path.join(src, "big.bin"), os.urandom(600 * 16384 + 11))  # two 512-hash chunks
seed = Daemon(tmp, "seed", ["--upload-limit", "20K"]).start()
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
info = info_of(open(torrent, "rb").read())
ih = bytes.fromhex(magnet.split("1220")[1][:64])
k = info.index(b"11:pieces root32:") + len(b"11:pieces root32:")
root = info[k:k + 32]
n_pieces = seed.api("GET", "/api/v1/swarms/1")["num_pieces"]
c.check(n_pieces > 512, "the file's layer needs two hash requests", str(n_pieces))
sent = {"hashes": 0}


def flood(conn):
    def run():
        while not conn.peer.stop_ev.is_set() and not conn.closed_by_other:
            hdr = root + struct.pack(">IIII", 0, 0, 512, 0)
            conn.send(msg(22, hdr + os.urandom(512 * 32)))
            sent["hashes"] += 1
            time.sleep(0.05)
    threading.Thread(target=run, daemon=True).start()


liar = RawPeer(ih, ext={"m": {"ut_metadata": 1}, "reqq": 250}, on_start=flood)
leech = Daemon(tmp, "leech", ["--log-level", "debug"]).start()
dl = tmp.sub("dl")
os.makedirs(dl)
st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": magnet, "into": dl,
                                                    "peers": ["127.0.0.1:%d" % seed.port]})
c.check(st in (200, 202), "the leecher joins with the honest seed", str(st))
st, _, _ = leech.request("POST", "/api/v1/swarms", {"link": magnet, "into": dl,
                                                    "peers": [liar.addr]})
c.check(st in (200, 202), "then the liar is added", str(st))
c.check(wait_for("the liar connected", lambda: liar.conns >= 1, 15), "the liar is connected")
wait_for("piece layers", lambda: "piece layers complete" in leech.log() or
         "banning" in leech.log(), 20)
lim = seed.api("POST", "/api/v1/limits", {"upload": 0})
c.equal(lim.get("upload_limit"), 0, "the seed's upload limit is lifted")
try:
    wait_state(leech, 1, timeout=90)
    done = True
except AssertionError as e:
    print("# %s" % e)
    done = False
banned_seed = "banning 127.0.0.1:%d" % seed.port in leech.log()
print("# liar sent %d unsolicited HASHES; seed banned: %s; completed: %s" % (
    sent["hashes"], banned_seed, done))
c.check(sent["hashes"] > 10, "the liar sent unsolicited hashes", str(sent))
c.check(not banned_seed, "the honest seed is not banned for the liar's hashes")
c.check(done, "the magnet join completes")
if done:
    c.equal(tree_digest(os.path.join(dl, "content")), tree_digest(src), "the download is byte-identical")
liar.stop()
c.equal(leech.stop(), 0, "leecher stops cleanly")
c.equal(seed.stop(), 0, "seed stops cleanly")
c.done()
