"""rawpeer: a listening BitTorrent peer in plain Python for integration tests.

It speaks plain BitTorrent (no shoal transport: it closes an encrypted hello,
and shoal then retries in plain, as test_liar_peer.py relies on), sends a
BEP 10 extension handshake of the test's choosing, optionally a full
bitfield and an unchoke, and hands every later message to a callback.  It
counts connections and the ones the other side closed, so a test can assert
"shoal dropped it".  Everything is bounded: sockets time out, threads are
daemons, stop() closes the listener.
"""
import os
import socket
import struct
import threading
import time

from shoal_harness import free_port

PSTR = b"\x13BitTorrent protocol"
RSV = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x10])  # BEP 10 extensions, BEP 52 v2


def msg(mid, body=b""):
    return struct.pack(">IB", 1 + len(body), mid) + body


def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, str):
        return benc(x.encode())
    if isinstance(x, dict):
        return b"d" + b"".join(benc(k) + benc(x[k]) for k in sorted(x)) + b"e"
    if isinstance(x, list):
        return b"l" + b"".join(benc(v) for v in x) + b"e"
    raise TypeError(x)


def benc_span(b, i):
    """End index of the bencoded value starting at b[i]."""
    ch = b[i:i + 1]
    if ch == b"i":
        return b.index(b"e", i) + 1
    if ch in (b"l", b"d"):
        i += 1
        while b[i:i + 1] != b"e":
            i = benc_span(b, i)
        return i + 1
    colon = b.index(b":", i)
    return colon + 1 + int(b[i:colon])


def info_of(torrent_bytes):
    """The raw bencoded info dictionary of a .torrent file."""
    k = torrent_bytes.index(b"4:info") + 6
    return torrent_bytes[k:benc_span(torrent_bytes, k)]


def full_bitfield(n_pieces):
    body = b"\xff" * ((n_pieces + 7) // 8 - 1)
    return body + bytes([(0xff << (8 - (n_pieces % 8 or 8))) & 0xff])


class Conn:
    """One accepted connection, as the callback sees it."""

    def __init__(self, peer, sock):
        self.peer = peer
        self.sock = sock
        self.ut_metadata = 0   # the id shoal asked us to use for ut_metadata
        self.closed_by_other = False

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def ext(self, ext_id, body):
        self.send(msg(20, bytes([ext_id]) + body))


class RawPeer:
    """Listen on 127.0.0.1:port (or `host`); for each connection: handshake
    for `info_hash`, send `ext` (a dict, bencoded; None: no extension
    handshake), then a full bitfield of `n_pieces` if given, unchoke if
    `unchoke`, then call on_msg(conn, m) for each message (m = id byte +
    payload; keep-alives are skipped).  on_start(conn) runs after the
    opening messages."""

    def __init__(self, info_hash, ext=None, n_pieces=0, unchoke=False, on_msg=None,
                 on_start=None, peer_id=None, host="127.0.0.1", port=None):
        self.info_hash = info_hash
        self.ext = ext
        self.n_pieces = n_pieces
        self.unchoke = unchoke
        self.on_msg = on_msg
        self.on_start = on_start
        self.peer_id = peer_id
        self.host = host
        self.port = port or free_port()
        self.conns = 0        # handshakes completed
        self.closed = 0       # connections the other side closed
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, self.port))
        self.lsock.listen(16)
        self.lsock.settimeout(0.3)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        self.stop_ev.set()
        self.lsock.close()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        c = Conn(self, s)
        s.settimeout(0.5)
        buf = b""
        try:
            first = b""
            deadline = time.monotonic() + 10
            while len(first) < 68 and time.monotonic() < deadline:
                try:
                    d = s.recv(68 - len(first))
                except socket.timeout:
                    continue
                if not d:
                    return
                first += d
                if not PSTR.startswith(first[:20]):
                    return  # an encrypted hello: close, shoal retries in plain
            if len(first) < 68:
                return
            pid = self.peer_id or (b"-RAWP01-" + os.urandom(12))
            s.sendall(PSTR + RSV + self.info_hash[:20] + pid)
            out = b""
            if self.ext is not None:
                out += msg(20, b"\x00" + benc(self.ext))
            if self.n_pieces:
                out += msg(5, full_bitfield(self.n_pieces))
            if self.unchoke:
                out += msg(1)
            s.sendall(out)
            with self.lock:
                self.conns += 1
            if self.on_start:
                self.on_start(c)
            while not self.stop_ev.is_set():
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    c.closed_by_other = True
                    with self.lock:
                        self.closed += 1
                    return
                buf += d
                while len(buf) >= 4:
                    n = struct.unpack(">I", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    m, buf = buf[4:4 + n], buf[4 + n:]
                    if not m:
                        continue
                    if m[0] == 20 and m[1] == 0 and b"ut_metadatai" in m:
                        j = m.index(b"ut_metadatai") + 12
                        c.ut_metadata = int(m[j:m.index(b"e", j)])
                    if self.on_msg:
                        self.on_msg(c, m)
        except OSError:
            with self.lock:
                self.closed += 1
            return
        finally:
            s.close()
