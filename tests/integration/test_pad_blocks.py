"""Blocks inside BEP 47 pad files of a hybrid share are served as zeros.

In the v1 view of a hybrid torrent every file but the last is padded to a
piece boundary, so a v1 piece that holds a file's end is a whole piece
long: the file's bytes, then zeros.  A v1 client asks for every block of
it, including blocks that lie wholly inside the pad.  Before the fix shoal
took such a request for a protocol violation and closed the connection,
so a v1 client that does not skip pad files could never finish.

A raw v1 peer (handshake with the v1 info-hash) asks a --format hybrid seed
with 32 KiB pieces for the two blocks of the piece that holds the first
file's last 100 bytes: the first must be those bytes then zeros, the
second all zeros, and the connection must stay open.  A block past the
piece length is still refused.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, write_file  # noqa: E402
from rawpeer import Dialer, msg  # noqa: E402

c = Checks("pad_blocks")
tmp = TestDir("shoal-pad-")
PIECE = 32768
src = tmp.sub("src", "padded")
first = os.urandom(600 * PIECE + 100)   # its last piece: 100 bytes, then the pad
write_file(os.path.join(src, "a.bin"), first)
write_file(os.path.join(src, "b.bin"), os.urandom(21 * 1000 * 1000))  # > 32 MiB in all
seed = Daemon(tmp, "seed").start()
r = seed.cli("share", "--format", "hybrid", src, timeout=120)
c.equal(r.returncode, 0, "seed shares the directory as a hybrid")
sw = seed.api("GET", "/api/v1/swarms/1")
c.equal(sw.get("piece_length"), PIECE, "the share has 32 KiB pieces")
ih1 = bytes.fromhex(sw.get("info_hash_v1") or "00" * 20)
c.check(len(ih1) == 20 and any(ih1), "the swarm has a v1 info-hash", repr(sw.get("info_hash_v1")))
LAST = 600  # a.bin sorts first: its pieces are 0 .. 600

pieces = {}


def on_msg(d, m):
    if m[0] == 7 and len(m) >= 9:
        index, begin = struct.unpack(">II", m[1:9])
        pieces[(index, begin)] = m[9:]


d = Dialer(seed.port, ih1, on_msg=on_msg).dial(ext={"m": {}})
c.check(d.handshaken, "a v1 peer handshakes with the v1 info-hash")
d.send(msg(2))  # interested
d.pump(5, until=lambda: d.counts.get(1))
c.check(d.counts.get(1), "the seed unchokes the v1 peer")


def ask(index, begin, length):
    pieces.pop((index, begin), None)
    d.send(msg(6, struct.pack(">III", index, begin, length)))
    d.pump(5, until=lambda: (index, begin) in pieces)
    return pieces.get((index, begin))


got = ask(LAST, 0, 16384)
c.check(got == first[LAST * PIECE:] + b"\0" * (16384 - 100),
        "the block holding the file's end: its 100 bytes, then zeros",
        "(%s)" % (None if got is None else "%d bytes" % len(got)))
got = ask(LAST, 16384, 16384)
c.check(got == b"\0" * 16384, "a block wholly inside the pad file: zeros",
        "(%s; closed: %s)" % (None if got is None else "%d bytes" % len(got), d.closed_by_other))
got = ask(LAST - 1, 16384, 16384)
c.check(got == first[(LAST - 1) * PIECE + 16384:LAST * PIECE], "a block of a whole piece: its data")
c.check(not d.closed_by_other, "the connection stays open")
d.send(msg(6, struct.pack(">III", LAST, PIECE, 16384)))  # past the piece length
d.pump(5)
c.check(d.closed_by_other, "a block past the piece length is refused (connection closed)")
d.close()
c.equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
