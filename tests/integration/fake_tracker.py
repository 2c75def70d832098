"""fake_tracker: small HTTP and UDP BitTorrent trackers on 127.0.0.1 for
shoal's tests, each in its own thread, recording every announce.

    t = HttpTracker(interval=3)          # t.url("announce") -> http://127.0.0.1:P/announce
    u = UdpTracker(mode="spoof-first")   # u.url() -> udp://127.0.0.1:P
    t.announces                          # [{"info_hash": bytes, "event": "started", ...}]

HTTP paths pick a behaviour: /announce (a tracker), /dead/announce (never
answers), /garbage/announce (not bencode), /huge/announce (a
2 MiB body), /many/announce (10,000 peers on
127.1.0.0/16, where nothing listens), /loop/announce (redirects to
itself), /ftp/announce (redirects to ftp://), /fail/announce (a failure
reason), /noscrape/announce (no counts; its /noscrape/scrape answers),
/slow/announce (answers as /announce after `slow_s` seconds, counting
the requests it holds at once: max_active).
Every peer address handed out is on loopback: no test traffic leaves the
machine.
"""
import http.server
import os
import socket
import socketserver
import struct
import threading
import time
import urllib.parse


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        out = b"d"
        for k in sorted(v, key=lambda k: k.encode() if isinstance(k, str) else k):
            out += bencode(k) + bencode(v[k])
        return out + b"e"
    raise TypeError(type(v))


def parse_query(qs):
    """{key: bytes} of a query string, binary-safe."""
    out = {}
    for part in qs.split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = urllib.parse.unquote_to_bytes(v)
    return out


class Swarms:
    """Peers per info-hash: {hash: {(ip, port): left}}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.peers = {}
        self.announces = []

    def announce(self, rec):
        with self.lock:
            self.announces.append(rec)
            peers = self.peers.setdefault(rec["info_hash"], {})
            me = (rec["ip"], rec["port"])
            if rec["event"] == "stopped":
                peers.pop(me, None)
            else:
                peers[me] = rec["left"]
            others = [p for p in peers if p != me]
            seeds = sum(1 for p in peers if peers[p] == 0)
            return others, seeds, len(peers) - seeds

    def events(self, info_hash=None):
        with self.lock:
            return [a["event"] for a in self.announces
                    if info_hash is None or a["info_hash"] == info_hash]


def compact(peers):
    return b"".join(socket.inet_aton(ip) + struct.pack(">H", port) for ip, port in peers)


class HttpTracker:
    def __init__(self, interval=1800, min_interval=None, failure=None, tls=None, slow_s=2.0):
        """tls: (certfile, keyfile) to serve https."""
        self.interval = interval
        self.slow_s = slow_s
        self.active = 0            # /slow/ requests being held now
        self.max_active = 0        # ... at most, so far
        self.active_lock = threading.Lock()
        self.scheme = "https" if tls else "http"
        self.min_interval = min_interval
        self.failure = failure            # a failure reason for /announce, when set
        self.swarms = Swarms()
        self.hits = {}
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def reply(self, code, body, headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a body over its ceiling)

            def do_GET(self):
                path, _, qs = self.path.partition("?")
                tracker.hits[path] = tracker.hits.get(path, 0) + 1
                q = parse_query(qs)
                mode = path.rsplit("/", 1)[0].strip("/")
                if mode == "dead":
                    time.sleep(60)
                    return
                if mode == "slow":
                    with tracker.active_lock:
                        tracker.active += 1
                        tracker.max_active = max(tracker.max_active, tracker.active)
                    time.sleep(tracker.slow_s)
                    with tracker.active_lock:
                        tracker.active -= 1
                if mode == "garbage":
                    return self.reply(200, b"<html>\x00\xff not bencode at all" * 50)
                if mode == "huge":
                    return self.reply(200, b"d5:peers%d:" % (2 << 20) + b"\0" * (2 << 20) + b"e")
                if mode == "loop":
                    return self.reply(302, b"", [("Location", self.path)])
                if mode == "ftp":
                    return self.reply(302, b"", [("Location", "ftp://127.0.0.1/announce")])
                if mode == "fail":
                    return self.reply(200, bencode({"failure reason": "go away (test)"}))
                if path.endswith("/scrape"):
                    h = q.get("info_hash", b"")
                    with tracker.swarms.lock:
                        peers = tracker.swarms.peers.get(h, {})
                        seeds = sum(1 for p in peers if peers[p] == 0)
                        body = {"files": {h: {"complete": seeds, "incomplete": len(peers) - seeds,
                                              "downloaded": 7}}}
                    return self.reply(200, bencode(body))
                if not path.endswith("/announce") or "info_hash" not in q:
                    return self.reply(404, b"no such tracker path")
                rec = {"path": path, "info_hash": q["info_hash"], "peer_id": q.get("peer_id"),
                       "port": int(q.get("port", b"0")), "left": int(q.get("left", b"0")),
                       "event": q.get("event", b"").decode(), "ip": self.client_address[0],
                       "time": time.monotonic()}
                if tracker.failure and mode == "":
                    tracker.swarms.announces.append(dict(rec, refused=True))
                    return self.reply(200, bencode({"failure reason": tracker.failure}))
                others, seeds, leechers = tracker.swarms.announce(rec)
                if mode == "many":
                    others = [("127.1.%d.%d" % (i // 250, i % 250 + 1), 9) for i in range(10000)]
                body = {"interval": tracker.interval, "peers": compact(others)}
                if tracker.min_interval:
                    body["min interval"] = tracker.min_interval
                if mode != "noscrape":
                    body["complete"] = seeds
                    body["incomplete"] = leechers
                self.reply(200, bencode(body))

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256  # many swarms announce at once

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def announces(self):
        return self.swarms.announces

    def url(self, path="announce"):
        return "%s://127.0.0.1:%d/%s" % (self.scheme, self.port, path)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class UdpTracker:
    """BEP 15.  mode: "ok"; "spoof-first" (each announce answer is preceded
    by an error from another port with the right transaction id and one
    from this port with a wrong transaction id, both to be ignored);
    "dead" (never answers)."""

    def __init__(self, interval=1800, mode="ok"):
        self.interval = interval
        self.mode = mode
        self.swarms = Swarms()
        self.conn_ids = set()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.spoofer.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @property
    def announces(self):
        return self.swarms.announces

    def url(self):
        return "udp://127.0.0.1:%d" % self.port

    def loop(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.packets += 1
            if self.mode == "dead" or len(data) < 16:
                continue
            action, tid = struct.unpack(">II", data[8:16])
            if action == 0 and data[:8] == struct.pack(">Q", 0x41727101980):
                cid = os.urandom(8)
                self.conn_ids.add(cid)
                self.sock.sendto(struct.pack(">II", 0, tid) + cid, addr)
                continue
            if data[:8] not in self.conn_ids:
                self.sock.sendto(struct.pack(">II", 3, tid) + b"bad connection id", addr)
                continue
            if action == 1 and len(data) >= 98:
                h, pid = data[16:36], data[36:56]
                down, left, up = struct.unpack(">QQQ", data[56:80])
                ev = struct.unpack(">I", data[80:84])[0]
                port = struct.unpack(">H", data[96:98])[0]
                rec = {"info_hash": h, "peer_id": pid, "port": port, "left": left,
                       "event": ["", "completed", "started", "stopped"][ev] if ev < 4 else "?",
                       "ip": addr[0], "time": time.monotonic()}
                others, seeds, leechers = self.swarms.announce(rec)
                if self.mode == "spoof-first":
                    self.spoofer.sendto(struct.pack(">II", 3, tid) + b"spoofed from elsewhere", addr)
                    self.sock.sendto(struct.pack(">II", 3, tid ^ 0xffffffff) + b"wrong tid", addr)
                    time.sleep(0.05)
                self.sock.sendto(struct.pack(">IIIII", 1, tid, self.interval, leechers, seeds)
                                 + compact(others), addr)
            elif action == 2 and len(data) >= 36:
                h = data[16:36]
                with self.swarms.lock:
                    peers = self.swarms.peers.get(h, {})
                    seeds = sum(1 for p in peers if peers[p] == 0)
                self.sock.sendto(struct.pack(">IIIII", 2, tid, seeds, 3, len(peers) - seeds), addr)

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
        self.spoofer.close()
