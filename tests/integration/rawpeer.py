"""rawpeer: a listening BitTorrent peer in plain Python for integration tests.

It speaks plain BitTorrent (no shoal transport: it closes an encrypted hello,
and shoal then retries in plain, as test_liar_peer.py relies on; it keeps
each such hello's flags byte, as an older shoal would see them), sends a
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


def split_frames(buf):
    """The whole length-prefixed messages at the start of `buf` (a
    keep-alive is b""), and the bytes left over for the next read."""
    out = []
    while len(buf) >= 4:
        n = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        out.append(buf[4:4 + n])
        buf = buf[4 + n:]
    return out, buf


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
        self.hello_flags = []  # the flags byte of each shoal hello it closed
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
                    if first[:1] == b"\0":
                        while len(first) < 8 and time.monotonic() < deadline:
                            try:
                                d = s.recv(8 - len(first))
                            except socket.timeout:
                                continue
                            if not d:
                                break
                            first += d
                        with self.lock:
                            self.hello_flags.append(first[7] if len(first) >= 8 else None)
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
                frames, buf = split_frames(buf)
                for m in frames:
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


class Dialer:
    """An outgoing raw connection to a shoal daemon's peer port, from a
    source address of the test's choosing (loopback is a /8: 127.0.0.2,
    127.0.0.3 ... are distinct hosts to shoal, so a ban by IP can be tested
    without touching the honest daemons on 127.0.0.1).

    dial() sends the BitTorrent handshake for `info_hash` and reads shoal's;
    then `ext` (a dict, bencoded; None: no extension handshake), a full
    bitfield of `n_pieces` if given, and an unchoke if `unchoke`.  pump()
    reads and parses what shoal sends for a bounded time, calling
    on_msg(dialer, m) for each message (m = id byte + payload) and noting
    whether shoal closed the connection."""

    def __init__(self, port, info_hash, src="127.0.0.1", peer_id=None, on_msg=None,
                 host="127.0.0.1"):
        self.port = port
        self.info_hash = info_hash
        self.src = src
        self.host = host
        self.peer_id = peer_id or (b"-RAWD01-" + os.urandom(12))
        self.on_msg = on_msg
        self.sock = None
        self.buf = b""
        self.closed_by_other = False
        self.handshaken = False     # shoal answered our handshake with its own
        self.ut_pex = 0             # shoal's id for ut_pex, from its extension handshake
        self.ut_metadata = 0
        self.counts = {}            # message id -> how many shoal sent
        self.bytes_in = 0

    def dial(self, ext=None, n_pieces=0, unchoke=False, timeout=5.0, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:  # a small window: what shoal sends piles up on its side
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((self.src, 0))
        s.settimeout(timeout)
        s.connect((self.host, self.port))
        self.sock = s
        self.send(PSTR + RSV + self.info_hash[:20] + self.peer_id)
        deadline = time.monotonic() + timeout
        first = b""
        while len(first) < 68 and time.monotonic() < deadline:
            try:
                d = s.recv(68 - len(first))
            except socket.timeout:
                break
            except OSError:
                d = b""
            if not d:
                self.closed_by_other = True
                return self
            first += d
        if len(first) < 68 or not first.startswith(PSTR):
            return self
        self.handshaken = True
        out = b""
        if ext is not None:
            out += msg(20, b"\x00" + benc(ext))
        if n_pieces:
            out += msg(5, full_bitfield(n_pieces))
        if unchoke:
            out += msg(1)
        if out:
            self.send(out)
        return self

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed_by_other = True

    def ext(self, ext_id, body):
        self.send(msg(20, bytes([ext_id]) + body))

    def pump(self, seconds, until=None):
        """Read for up to `seconds` (less if shoal closes, or `until()`
        becomes true); returns True if the connection is still open."""
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.1)
        while not self.closed_by_other and time.monotonic() < deadline:
            if until and until():
                break
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                d = b""
            if not d:
                self.closed_by_other = True
                break
            self.bytes_in += len(d)
            self.buf += d
            frames, self.buf = split_frames(self.buf)
            for m in frames:
                if not m:
                    continue
                self.counts[m[0]] = self.counts.get(m[0], 0) + 1
                if m[0] == 20 and len(m) > 1 and m[1] == 0:
                    for name in (b"ut_pex", b"ut_metadata"):
                        key = b"%d:%si" % (len(name), name)
                        if key in m:
                            j = m.index(key) + len(key)
                            setattr(self, name.decode(), int(m[j:m.index(b"e", j)]))
                if self.on_msg:
                    self.on_msg(self, m)
        return not self.closed_by_other

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
