"""BEP 52 HASHES answers: exactly the requested hashes plus the uncle hashes
the proof layers ask for, and every uncle real.

A hash request names a chunk of a file's piece layer (index, length) and
`proof_layers`: the layers above the base layer the answer must prove the
chunk up to.  The lowest log2(length) - 1 of those follow from the chunk's
own hashes; each layer from the chunk's root up adds one uncle, the sibling
of the chunk's ancestor there (the count libtorrent 2.0 sends and expects).
Before the fix shoal sent `proof_layers` uncles whatever the chunk's size,
stopping at the root and leaving the rest of the answer uninitialised heap
memory: libtorrent dropped every such answer ("invalid hashes"), so it
could not download from a shoal magnet link.

A raw peer asks a shoal seed for chunks of a 1,000-piece file (a tree 10
layers high above the piece layer) with every proof_layers from 0 to 9 and
checks the answer's length, that the hashes are the file's layer, and that
hashes and uncles fold up to the file's pieces root.  proof_layers 10 would
need the root's sibling: it is rejected.
"""
import hashlib
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, write_file  # noqa: E402
from rawpeer import Dialer, msg  # noqa: E402

c = Checks("hash_proofs")
tmp = TestDir("shoal-proofs-")
PIECE = 16384
N_PIECES = 1000
src = tmp.sub("src", "proofs")
write_file(os.path.join(src, "big.bin"), os.urandom(N_PIECES * PIECE - 100))
write_file(os.path.join(src, "small.txt"), b"small\n")
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src, timeout=60)
c.equal(r.returncode, 0, "seed shares the directory")
sw = seed.api("GET", "/api/v1/swarms/1")
c.equal(sw.get("piece_length"), PIECE, "the share has 16 KiB pieces")
ih = bytes.fromhex(sw["info_hash"])
with open(sw["torrent"], "rb") as f:
    tor = f.read()
k = tor.index(b"11:pieces root32:")
root = tor[k + 17:k + 49]
# The layer: the torrent's "piece layers" value for that root.
k = tor.index(b"32:" + root, tor.index(b"12:piece layers")) + 35
n = int(tor[k:tor.index(b":", k)])
layer_raw = tor[tor.index(b":", k) + 1:tor.index(b":", k) + 1 + n]
layer = [layer_raw[i:i + 32] for i in range(0, len(layer_raw), 32)]
c.equal(len(layer), N_PIECES, "the big file's layer has one hash per piece")
WIDTH = 1024
LEVELS = 10


def h2(a, b):
    return hashlib.sha256(a + b).digest()


pad = b"\0" * 32  # 16 KiB pieces: a pad piece is a zero leaf (BEP 52)
leaves = layer + [pad] * (WIDTH - len(layer))


def fold(hashes):
    while len(hashes) > 1:
        hashes = [h2(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


c.equal(fold(leaves), root, "the layer, padded, folds to the pieces root")

answers = {}


def on_msg(d, m):
    if m[0] in (22, 23) and len(m) >= 49:
        answers[m[1:49]] = m


d = Dialer(seed.port, ih, on_msg=on_msg).dial(ext={"m": {}})
c.check(d.handshaken, "a raw peer connects to the seed")


def ask(index, length, proof):
    body = root + struct.pack(">IIII", 0, index, length, proof)
    answers.pop(body, None)
    d.send(msg(21, body))
    d.pump(5, until=lambda: body in answers)
    return answers.get(body)


for length, index in ((2, 6), (512, 512), (256, 768)):
    chunk_h = length.bit_length() - 1
    for proof in range(0, LEVELS):
        m = ask(index, length, proof)
        what = "length %d at %d, proof_layers %d" % (length, index, proof)
        if not m or m[0] != 22:
            c.check(False, what + ": answered with hashes", "(got %r)" % (m and m[0]))
            continue
        hashes = [m[49 + 32 * i:49 + 32 * (i + 1)] for i in range((len(m) - 49) // 32)]
        n_uncles = max(0, proof + 1 - chunk_h)
        ok = len(hashes) == length + n_uncles and len(m) == 49 + 32 * len(hashes)
        ok = ok and hashes[:length] == leaves[index:index + length]
        # Hashes and uncles fold up to the ancestor at height proof + 1
        # (the root when proof + 1 == LEVELS): check it against the tree.
        node, pos = fold(hashes[:length]), index >> chunk_h
        for u in hashes[length:]:
            node = h2(node, u) if pos % 2 == 0 else h2(u, node)
            pos //= 2
        height = max(chunk_h, proof + 1)
        want = fold(leaves[(index >> height) << height:((index >> height) + 1) << height])
        c.check(ok and node == want,
                what + ": %d hashes and %d uncles that prove it" % (length, n_uncles),
                "(got %d hashes)" % len(hashes))
m = ask(0, 2, LEVELS)
c.check(m is not None and m[0] == 23, "proof_layers past the root (%d) is rejected" % LEVELS,
        "(got %r)" % (m and m[0]))
d.close()
c.equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
