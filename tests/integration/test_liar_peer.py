"""A lying peer must never stop a download that honest peers can complete.

The liar (this script, plain BitTorrent on loopback) claims every piece,
unchokes, then answers BEP 9 metadata requests with garbage of the right
size, BEP 52 hash requests with made-up hashes, and block requests with
nothing.  A shoal leecher joins from the magnet link alone with the liar as
its first peer and an honest shoal seed as its second: it must finish
byte-identical and ban the liar."""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, free_port, tree_digest,  # noqa: E402
                           wait_state, write_file)
from rawpeer import benc_span, msg, split_frames  # noqa: E402

c = Checks("liar_peer")
tmp = TestDir()




src = tmp.sub("content")
write_file(os.path.join(src, "big.bin"), os.urandom(12 * 1024 * 1024 + 99))  # > 512 pieces of 16 KiB
write_file(os.path.join(src, "note.txt"), b"honest data\n")
seed = Daemon(tmp, "seed", ["--upload-limit", "8M"]).start()
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
tor = open(torrent, "rb").read()
k = tor.index(b"4:info") + 6
info = tor[k:benc_span(tor, k)]
ih = bytes.fromhex(magnet.split("urn:btmh:1220")[1][:64])
n_pieces = seed.api("GET", "/api/v1/swarms/1")["num_pieces"]
c.check(n_pieces > 512, "the content needs more than one hash request chunk", str(n_pieces))

liar_port = free_port()
lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", liar_port))
lsock.listen(8)
stats = {"conns": 0, "md": 0, "hash": 0, "req": 0}
stop = threading.Event()
mode = {"metadata": "lie"}  # round 2: "reject", so the hashes and bitfield lies get their turn


def serve(conn):
    stats["conns"] += 1
    conn.settimeout(1)
    buf = b""
    try:
        first = conn.recv(68)
        if not first.startswith(b"\x13BitTorrent protocol"):
            return  # an encrypted hello: close, shoal retries in plain
        while len(first) < 68:
            first += conn.recv(68 - len(first))
        conn.sendall(b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 0x10]) + ih[:20] +
                     b"-LIAR01-" + os.urandom(12))
        ext = b"d1:md11:ut_metadatai1ee13:metadata_sizei%de1:pi%de4:reqqi500ee" % (len(info),
                                                                                   liar_port)
        conn.sendall(msg(20, b"\x00" + ext) + msg(5, b"\xff" * ((n_pieces + 7) // 8 - 1) +
                                                  bytes([(0xff << (8 - (n_pieces % 8 or 8))) & 0xff]))
                     + msg(1))
        ut_md = 3
        while not stop.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            buf += data
            frames, buf = split_frames(buf)
            for m in frames:
                if not m:
                    continue
                if m[0] == 20 and m[1] == 0 and b"ut_metadatai" in m:
                    j = m.index(b"ut_metadatai") + 12
                    ut_md = int(m[j:m.index(b"e", j)])
                elif m[0] == 20 and m[1] == 1 and b"msg_typei0e" in m:
                    j = m.index(b"5:piecei") + 8
                    piece = int(m[j:m.index(b"e", j)])
                    if mode["metadata"] == "reject":
                        conn.sendall(msg(20, bytes([ut_md]) +
                                         b"d8:msg_typei2e5:piecei%dee" % piece))
                        continue
                    size = min(16384, len(info) - piece * 16384)
                    d = b"d8:msg_typei1e5:piecei%de10:total_sizei%dee" % (piece, len(info))
                    conn.sendall(msg(20, bytes([ut_md]) + d + os.urandom(size)))
                    stats["md"] += 1
                elif m[0] == 21 and len(m) == 49:
                    length = struct.unpack(">I", m[41:45])[0]
                    conn.sendall(msg(22, m[1:49] + os.urandom(32 * length)))
                    stats["hash"] += 1
                elif m[0] == 6:
                    stats["req"] += 1  # never answered
    except OSError:
        return
    finally:
        conn.close()


def accept_loop():
    lsock.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


threading.Thread(target=accept_loop, daemon=True).start()

for rnd, md_mode in ((1, "lie"), (2, "reject")):
    mode["metadata"] = md_mode
    for key in stats:
        stats[key] = 0
    leech = Daemon(tmp, "leech%d" % rnd, ["--log-level", "debug"]).start()
    dl = tmp.sub("dl%d" % rnd)
    os.makedirs(dl)
    r = leech.cli("join", magnet, "--into", dl, "--peer", "127.0.0.1:%d" % liar_port)
    c.equal(r.returncode, 0, "round %d: the leecher joins with the liar as its only peer" % rnd)
    time.sleep(3)  # let the liar answer first
    status, _, _ = leech.request("POST", "/api/v1/swarms", {"link": magnet, "into": dl,
                                                            "peers": ["127.0.0.1:%d" % seed.port]})
    c.equal(status, 200, "round %d: then the honest seed is added" % rnd)
    t0 = time.monotonic()
    wait_state(leech, 1, timeout=150)
    print("# round %d (metadata %s): completed %.1f s after the honest seed was added; liar: %s" % (
        rnd, md_mode, time.monotonic() - t0, stats))
    c.equal(tree_digest(os.path.join(dl, "content")), tree_digest(src),
            "round %d: the download is byte-identical" % rnd)
    c.check(stats["md"] > 0 or stats["hash"] > 0 or stats["req"] > 0,
            "round %d: the liar was asked and lied" % rnd, str(stats))
    peers = leech.api("GET", "/api/v1/swarms/1/peers")["peers"]
    c.check(all(p["address"] != "127.0.0.1:%d" % liar_port for p in peers),
            "round %d: the liar is no longer connected" % rnd, str([p["address"] for p in peers]))
    if stats["md"] or stats["hash"]:
        c.check("banning 127.0.0.1:%d" % liar_port in leech.log(),
                "round %d: the liar was banned" % rnd, "(see log)")
    c.equal(leech.stop(), 0, "round %d: leecher stops cleanly" % rnd)
stop.set()
lsock.close()
c.equal(seed.stop(), 0, "seed stops cleanly")
c.done()
