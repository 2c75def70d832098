"""BitTorrent v1 swarms between shoal daemons: `shoal share --format v1` of
a folder whose pieces span files (an empty file, a file smaller than a
piece, one spanning several), joined by a urn:btih magnet alone and by the
.torrent; a restart that keeps every piece without fetching again; a crash
mid-download that resumes; a hybrid joined by its v1 link alone, which must
end up keyed by its v2 hash; hostile v1 metadata refused with a clear
error while the other swarms go on; and a private torrent (BEP 27) kept off
the DHT and out of peer exchange."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, compare_trees, wait_for,  # noqa: E402
                           wait_state, write_file)

c = Checks("v1")
tmp = TestDir()

src = tmp.sub("content")
write_file(os.path.join(src, "a.txt"), b"small file, smaller than one piece\n")
write_file(os.path.join(src, "big.bin"), os.urandom(3 * 1024 * 1024 + 777))
write_file(os.path.join(src, "empty"), b"")
write_file(os.path.join(src, "sub", "c.bin"), os.urandom(40000))
write_file(os.path.join(src, "sub", "d.bin"), os.urandom(16384 * 3))

seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src, "--format", "v1")
c.equal(r.returncode, 0, "share --format v1 exits 0")
magnet, torrent = (r.stdout.split("\n") + ["", ""])[:2]
c.check(magnet.startswith("magnet:?xt=urn:btih:") and "btmh" not in magnet,
        "a v1 share's magnet carries the v1 hash only", magnet)
v1_hash = magnet.split("urn:btih:")[1][:40]
sw = seed.api("GET", "/api/v1/swarms/1")
c.equal(sw["format"], "v1", "the swarm's format is v1")
c.equal(sw["info_hash"], v1_hash, "its key is the 40-digit v1 info-hash")
c.equal(sw["info_hash_v1"], v1_hash, "and so is info_hash_v1")
c.equal(sw["pieces_have"], sw["num_pieces"], "every piece verified")
c.check(torrent.endswith(v1_hash + ".torrent") and os.path.isfile(torrent),
        ".torrent written, named by the v1 hash", torrent)
seed_addr = "127.0.0.1:%d" % seed.port
r = seed.cli("share", src, "--format", "v2")
c.check(r.returncode != 0 and "format v1" in (r.stdout + r.stderr),
        "sharing it again in another format names the format it has", r.stdout + r.stderr)

# 1. A urn:btih magnet alone (plus the seed's address), encrypted: this
#    leecher requires it, so completing proves the v1 swarm was encrypted.
l1 = Daemon(tmp, "leech1", ["--encryption", "require"]).start()
dl1 = tmp.sub("dl1")
os.makedirs(dl1)
btih_only = "magnet:?xt=urn:btih:%s&dn=content" % v1_hash
r = l1.cli("join", btih_only, "--into", dl1, "--peer", seed_addr, "--wait", timeout=120)
c.equal(r.returncode, 0, "join of a v1 magnet completes")
compare_trees(c, src, os.path.join(dl1, "content"), "v1 download by magnet")
lsw = l1.api("GET", "/api/v1/swarms/1")
c.equal(lsw["format"], "v1", "the leecher sees a v1 torrent")
c.equal(lsw["state"], "seeding", "and seeds it")

# 2. A restart: every piece is still there (checked by SHA-1 across files),
#    nothing is fetched again.
c.equal(l1.stop(), 0, "leecher stops cleanly")
l1.start()
lsw = wait_state(l1, 1, "seeding", timeout=60)
c.equal(lsw["pieces_have"], lsw["num_pieces"], "after a restart every v1 piece is kept")
c.equal(lsw["transfer"]["downloaded"], 0, "nothing downloaded again after the restart")
# A file changed on disk while stopped loses exactly the pieces it touches.
c.equal(l1.stop(), 0, "leecher stops again")
with open(os.path.join(dl1, "content", "sub", "c.bin"), "r+b") as f:
    f.seek(100)
    f.write(b"\xff" * 10)
future = time.time() + 5
os.utime(os.path.join(dl1, "content", "sub", "c.bin"), (future, future))
l1.start()
lsw = wait_state(l1, 1, None, timeout=60, leave=("checking",))
c.check(lsw["pieces_have"] < lsw["num_pieces"],
        "a changed file's pieces are dropped by the check", str(lsw["pieces_have"]))
r = l1.cli("join", btih_only, "--into", dl1, "--peer", seed_addr)
lsw = wait_state(l1, 1, "seeding", timeout=60)
c.equal(lsw["pieces_have"], lsw["num_pieces"], "the dropped pieces come back from the seed")
compare_trees(c, src, os.path.join(dl1, "content"), "v1 repaired download")
c.equal(l1.stop(), 0, "leecher 1 stops")

# 3. The .torrent, with a download limit, killed mid-way, resumed.
l2 = Daemon(tmp, "leech2").start()
dl2 = tmp.sub("dl2")
os.makedirs(dl2)
r = l2.cli("join", torrent, "--into", dl2)
c.equal(r.returncode, 0, "join of the v1 .torrent")
l2.cli("limit", "1", "--download", "600K")
l2.api("POST", "/api/v1/swarms", {"link": torrent, "into": dl2, "peers": [seed_addr]})
got = wait_for("some v1 pieces", lambda: l2.api("GET", "/api/v1/swarms/1")["pieces_have"] > 20, 30)
c.check(got, "the limited leecher gets some pieces")
l2.kill9()
l2.start()
l2.cli("limit", "1", "--download", "0")
l2.api("POST", "/api/v1/swarms", {"link": torrent, "into": dl2, "peers": [seed_addr]})
lsw = wait_state(l2, 1, "seeding", timeout=90)
compare_trees(c, src, os.path.join(dl2, "content"), "v1 download resumed after kill -9")
c.check(lsw["transfer"]["downloaded"] < 3 * 1024 * 1024 + 200000,
        "the resume does not fetch everything again", str(lsw["transfer"]["downloaded"]))
c.equal(l2.stop(), 0, "leecher 2 stops cleanly")

# 4. A hybrid joined by its v1 link alone: once the metadata is in, the swarm
#    is keyed by the v2 hash and v2 peers can use it.
hsrc = tmp.sub("hybrid")
write_file(os.path.join(hsrc, "one.bin"), os.urandom(70000))
write_file(os.path.join(hsrc, "two.bin"), os.urandom(1000))
r = seed.cli("share", hsrc)
hmagnet = r.stdout.split("\n")[0]
hv1 = hmagnet.split("urn:btih:")[1][:40]
hv2 = hmagnet.split("urn:btmh:1220")[1][:64]
hsw = seed.api("GET", "/api/v1/swarms/2")
c.equal(hsw["format"], "hybrid", "share defaults to hybrid")
l3 = Daemon(tmp, "leech3").start()
dl3 = tmp.sub("dl3")
os.makedirs(dl3)
r = l3.cli("join", "magnet:?xt=urn:btih:%s" % hv1, "--into", dl3, "--peer", seed_addr, "--wait",
           timeout=90)
c.equal(r.returncode, 0, "a hybrid joined by its v1 link completes")
compare_trees(c, hsrc, os.path.join(dl3, "hybrid"), "hybrid via its v1 link")
lsw = l3.api("GET", "/api/v1/swarms/1")
c.equal(lsw["format"], "hybrid", "the joiner learns it is a hybrid")
c.equal(lsw["info_hash"], hv2, "and takes the v2 hash as its key")
c.equal(lsw["info_hash_v1"], hv1, "keeping the v1 hash beside it")
c.equal(l3.stop(), 0, "leecher 3 stops cleanly")
l3.start()
lsw = wait_state(l3, 1, "seeding", timeout=60)
c.equal(lsw["info_hash"], hv2, "the v2 key is recorded across a restart")
r = l3.cli("join", hmagnet, "--into", dl3)
c.check(r.returncode == 0 and "already" in (r.stdout + r.stderr).lower() or r.returncode == 0,
        "its hybrid magnet names the same swarm", r.stdout + r.stderr)
c.equal(len(l3.api("GET", "/api/v1/swarms")["swarms"]), 1, "still one swarm")

# 5. Hostile v1 metadata: clear errors, nothing created, the seed goes on.
def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, str):
        return bencode(v.encode())
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


def v1_torrent(files, plen=16384, npieces=1, name="evil"):
    info = {"name": name, "piece length": plen, "pieces": b"P" * 20 * npieces,
            "files": [{"length": n, "path": p} for p, n in files]}
    return bencode({"info": info})


bad = {
    "dotdot": v1_torrent([(["..", "escape"], 5)]),
    "absolute": v1_torrent([(["/etc", "passwd"], 5)]),
    "plen0": v1_torrent([(["a"], 5)], plen=0),
    "plen2g": v1_torrent([(["a"], 5)], plen=1 << 31),
    "overflow": v1_torrent([(["a"], (1 << 63) - 1), (["b"], (1 << 63) - 1)]),
    "pieces": v1_torrent([(["a"], 40000)], npieces=1),
}
for what, data in bad.items():
    path = tmp.sub("%s.torrent" % what)
    with open(path, "wb") as f:
        f.write(data)
    out = tmp.sub("bad-%s" % what)
    os.makedirs(out)
    r = seed.cli("join", path, "--into", out)
    c.check(r.returncode != 0 and len((r.stdout + r.stderr).strip()) > 0,
            "hostile v1 torrent (%s) is refused with a message" % what, r.stdout + r.stderr)
    c.equal(os.listdir(out), [], "nothing created for %s" % what)
c.check(not os.path.exists(os.path.join(os.path.dirname(tmp.sub("x")), "escape")),
        "nothing written outside the target")
c.equal(seed.api("GET", "/api/v1/swarms/1")["state"], "seeding", "the v1 share seeds on")

# 6. BEP 27: a private torrent is never announced on the DHT and exchanges
#    no peers (no ut_pex in our extension handshake); the same torrent
#    without the flag does both.
import hashlib  # noqa: E402
from rawpeer import Dialer  # noqa: E402
pdata = os.urandom(40000)
hashes = {}
for priv in (True, False):
    info = {"name": "priv" if priv else "open", "piece length": 16384, "length": len(pdata),
            "pieces": b"".join(hashlib.sha1(pdata[i:i + 16384]).digest()
                               for i in range(0, len(pdata), 16384))}
    if priv:
        info["private"] = 1
    hashes[priv] = hashlib.sha1(bencode(info)).digest()
    path = tmp.sub("%s.torrent" % info["name"])
    with open(path, "wb") as f:
        f.write(bencode({"info": info}))
    out = tmp.sub("dl-" + info["name"])
    os.makedirs(out)
    r = seed.cli("join", path, "--into", out)
    c.equal(r.returncode, 0, "joins the %s torrent" % ("private" if priv else "public"))
keys = lambda: {t["key"] for t in seed.api("GET", "/api/v1/dht").get("swarms", [])}
c.check(wait_for("public tracked", lambda: hashes[False].hex() in keys(), 10),
        "the public torrent is tracked on the DHT")
c.check(hashes[True].hex() not in keys(), "the private torrent is not on the DHT (BEP 27)")
for priv in (True, False):
    d = Dialer(seed.port, hashes[priv]).dial(ext={"m": {"ut_pex": 1, "ut_metadata": 2}})
    d.pump(3, until=lambda: d.ut_metadata)
    if priv:
        c.check(d.handshaken and d.ut_metadata and not d.ut_pex,
                "a private swarm's extension handshake offers no ut_pex", str(d.counts))
    else:
        c.check(d.handshaken and d.ut_pex, "a public swarm's offers ut_pex", str(d.counts))
    d.close()
c.equal(seed.stop(), 0, "seed stops cleanly")
c.done()
