"""GET /api/v1/events (node/api_events.c), GET /api/v1/swarms/{id}/pieces and
the base64 .torrent upload of POST /api/v1/swarms, against real daemons.

Events: a snapshot first, then swarm-added / swarm-changed / swarm-removed
in order with increasing ids; Last-Event-ID resumes without a snapshot (also
across a time with no stream open), a bogus one gets a snapshot; 100 streams
stay fed while a leecher downloads 32 MiB; the 129th stream is refused (503);
no token is 401; a client that never reads is closed by the daemon once
8 MiB wait unsent, and the daemon's memory stays bounded."""
import base64
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, sanitizer_build, wait_for, wait_state,  # noqa: E402
                           write_file)


c = Checks("events")
tmp = TestDir("shoal-events-")


class Stream:
    """One event stream on a raw socket: the HTTP head, then the chunked
    body split into server-sent events."""

    def __init__(self, d, last_id=None, token=True, rcvbuf=None):
        host, port = d.api_addr.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((host.strip("[]"), int(port)))
        head = "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\n" % d.api_addr
        if token:
            head += "Authorization: Bearer %s\r\n" % d.token
        if last_id:
            head += "Last-Event-ID: %s\r\n" % last_id
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""
        self.body = b""
        self.status = None
        self.headers = {}
        self.eof = False
        self.received = 0
        self.retry = None

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            got = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except OSError:
            got = b""
        if not got:
            self.eof = True
            return False
        self.received += len(got)
        self.raw += got
        return True

    def _parse(self):
        if self.status is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.raw[:end].decode().split("\r\n")
            self.status = int(lines[0].split()[1])
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.raw = self.raw[end + 4:]
        if self.headers.get("transfer-encoding") != "chunked":
            self.body += self.raw
            self.raw = b""
            return
        while True:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                return
            size = int(self.raw[:nl], 16)
            if len(self.raw) < nl + 2 + size + 2:
                return
            self.body += self.raw[nl + 2:nl + 2 + size]
            self.raw = self.raw[nl + 2 + size + 2:]

    def head(self, timeout=10):
        deadline = time.monotonic() + timeout
        while self.status is None and not self.eof and time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
            self._parse()
        return self.status

    def next(self, timeout=10):
        """The next event as a dict (id, event, data parsed), comments and
        data-less blocks skipped; None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            self._parse()
            while b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                ev = {}
                for ln in block.decode().split("\n"):
                    if ln.startswith(":"):
                        continue
                    k, _, v = ln.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
                if "retry" in ev:
                    self.retry = ev["retry"]
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    return ev
            if self.eof or time.monotonic() >= deadline:
                return None
            self._recv(deadline - time.monotonic())

    def until(self, pred, timeout=20):
        """Events up to and including the first for which pred(ev) holds."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self.next(deadline - time.monotonic())
            if ev is None:
                break
            seen.append(ev)
            if pred(ev):
                return seen
        print("# gave up; saw %s" % [(e.get("event"), e.get("id")) for e in seen][-10:])
        return None

    def close(self):
        self.sock.close()


def seq(ev):
    return int(ev["id"].split("-")[1])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


d = Daemon(tmp, "node").start()

# --- no token, wrong method
st, doc, _ = d.request("GET", "/api/v1/events", token=False)
c.equal(st, 401, "no token: 401")
st, doc, _ = d.request("POST", "/api/v1/events", body={})
c.equal(st, 405, "POST /events: 405")

# --- snapshot, then added / changed / removed in order
s = Stream(d)
c.equal(s.head(), 200, "the stream answers 200")
c.equal(s.headers.get("content-type"), "text/event-stream", "Content-Type: text/event-stream")
c.equal(s.headers.get("cache-control"), "no-store", "Cache-Control: no-store")
first = s.next()
c.equal(s.retry, "2000", "the stream starts with retry: 2000")
c.equal(first and first["event"], "snapshot", "the first event is the snapshot")
c.check(first and first["data"]["swarms"] == [] and "node" in first["data"],
        "the snapshot of an empty node: no swarms, a node object")
node0 = first["data"]["node"] if first else {}
c.check(all(k in node0 for k in ("peers", "dht_nodes", "download_rate", "upload_rate",
                                 "download_limit", "upload_limit", "swarms")),
        "the node object has its counters", repr(node0))
run = first["id"].split("-")[0] if first else ""
c.check(len(run) == 8 and all(ch in "0123456789abcdef" for ch in run), "RUN is 8 hex digits")

src = tmp.sub("share1")
# 64 MiB (sparse: no disk): hashing may still run at the first round (it
# usually ends within the second, so the test takes either path); the
# test does not rely on it.
os.makedirs(src)
with open(os.path.join(src, "big.bin"), "wb") as f:
    f.truncate(64 << 20)
write_file(os.path.join(src, "small.txt"), b"hello\n")
sid = d.api("POST", "/api/v1/swarms", {"share": src}, expect=202)["swarm"]["id"]
evs = s.until(lambda e: e["event"] == "swarm-added" and e["data"]["id"] == sid)
c.check(evs is not None, "swarm-added for the new share")
events = list(evs or [])
state = evs[-1]["data"]["state"] if evs else None
if state != "seeding":
    more = s.until(lambda e: e["event"] == "swarm-changed" and e["data"]["id"] == sid and
                   e["data"].get("state") == "seeding", timeout=60)
    c.check(more is not None, "swarm-changed to seeding after hashing (was %s)" % state)
    events += more or []
else:
    c.check(True, "the share was seeding by the first round (hashing took under a second)")
wait_state(d, sid)
d.api("POST", "/api/v1/swarms/%d/pause" % sid)
more = s.until(lambda e: e["event"] == "swarm-changed" and e["data"]["id"] == sid and
               e["data"].get("state") == "paused")
c.check(more is not None, "swarm-changed state paused after pause")
if more:
    ch = more[-1]["data"]
    c.check("name" not in ch and "root" not in ch, "swarm-changed carries only what changed",
            repr(ch))
events += more or []
d.api("POST", "/api/v1/swarms/%d/resume" % sid)
more = s.until(lambda e: e["event"] == "swarm-changed" and e["data"]["id"] == sid and
               e["data"].get("state") == "seeding")
c.check(more is not None, "swarm-changed state seeding after resume")
events += more or []
d.api("DELETE", "/api/v1/swarms/%d" % sid)
more = s.until(lambda e: e["event"] == "swarm-removed")
c.check(more is not None and more[-1]["data"] == {"id": sid}, "swarm-removed {id} after DELETE")
events += more or []
nodes = [e["data"] for e in events if e["event"] == "node" and "swarms" in e["data"]]
c.check(nodes and all(set(x["swarms"]) >= {"total", "seeding", "by_state"} and
                      len(x["swarms"]["by_state"]) == 7 for x in nodes),
        "node events give a changed field whole (swarms with every count)", repr(nodes[:1]))
changes = [e["data"] for e in events if e["event"] == "swarm-changed"]
c.check(all(set(x) - {"id"} for x in changes), "no swarm-changed without a change")
ids = [seq(e) for e in events]
c.check(ids == sorted(ids) and len(set(ids)) == len(ids) and all(i > 0 for i in ids),
        "event ids increase", repr(ids))
c.check(all(e["id"].startswith(run + "-") for e in events), "every id is RUN-SEQ")
last_id = events[-1]["id"] if events else ""

# --- resume: a change made while no stream is open comes on reconnect
s.close()
time.sleep(0.5)
src2 = tmp.sub("share2")
write_file(os.path.join(src2, "f.txt"), b"second\n" * 1000)
sid2 = d.api("POST", "/api/v1/swarms", {"share": src2}, expect=202)["swarm"]["id"]
wait_state(d, sid2)
s = Stream(d, last_id=last_id)
ev = s.next()
c.check(ev is not None and ev["event"] != "snapshot", "Last-Event-ID of this run: no snapshot",
        repr(ev and ev["event"]))
c.check(ev is not None and seq(ev) == seq(events[-1]) + 1, "resume starts right after the id")
got = [ev] if ev else []
more = s.until(lambda e: e["event"] == "swarm-added" and e["data"]["id"] == sid2, timeout=5) \
    if not (ev and ev["event"] == "swarm-added" and ev["data"]["id"] == sid2) else []
c.check(more is not None, "the swarm added while disconnected arrives as swarm-added")
got += more or []
# A second resume while this stream is open replays the ring.
s2 = Stream(d, last_id=last_id)
ev2 = s2.next()
c.check(ev2 is not None and ev2["event"] != "snapshot" and seq(ev2) == seq(events[-1]) + 1,
        "a resume while other streams are open replays the same events")
s2.close()
s.close()
for bogus in ("deadbeef-3", "%s-999999" % run, "nonsense"):
    b = Stream(d, last_id=bogus)
    ev = b.next()
    c.check(ev is not None and ev["event"] == "snapshot" and
            [x["id"] for x in ev["data"]["swarms"]] == [sid2],
            "Last-Event-ID %s: a fresh snapshot" % bogus)
    b.close()

# --- /pieces
pc = d.api("GET", "/api/v1/swarms/%d/pieces" % sid2)
sw2 = d.api("GET", "/api/v1/swarms/%d" % sid2)
bits = base64.b64decode(pc["bitfield"])
n = pc["num_pieces"]
c.equal(n, sw2["num_pieces"], "/pieces num_pieces")
c.equal(pc["pieces_have"], n, "/pieces pieces_have of a seed")
c.equal(len(bits), (n + 7) // 8, "bitfield length")
set_bits = sum(bin(x).count("1") for x in bits)
c.equal(set_bits, n, "a seed's bitfield has num_pieces bits set")
c.check(all((bits[i // 8] >> (7 - i % 8)) & 1 for i in range(n)), "the first num_pieces bits")
big = tmp.sub("share3")
write_file(os.path.join(big, "a.bin"), os.urandom(16384 * 11 + 5))
sid3 = d.api("POST", "/api/v1/swarms", {"share": big}, expect=202)["swarm"]["id"]
wait_state(d, sid3)
pc = d.api("GET", "/api/v1/swarms/%d/pieces" % sid3)
bits = base64.b64decode(pc["bitfield"])
c.equal((pc["num_pieces"], pc["pieces_have"]), (12, 12), "12 pieces, all had")
c.equal(bits, b"\xff\xf0", "piece 0 is the high bit; the trailing bits are zero")
st, doc, _ = d.request("GET", "/api/v1/swarms/999/pieces")
c.equal(st, 404, "/pieces of no swarm: 404")
mag = "magnet:?xt=urn:btmh:1220" + "ab" * 32 + "&dn=nometa"
dlm = tmp.sub("dl-magnet")
jm = d.api("POST", "/api/v1/swarms", {"link": mag, "into": dlm}, expect=202)["swarm"]["id"]
pc = d.api("GET", "/api/v1/swarms/%d/pieces" % jm)
c.equal((pc["num_pieces"], pc["bitfield"]), (0, ""), "no metadata: 0 pieces, empty bitfield")
d.api("DELETE", "/api/v1/swarms/%d" % jm)

# --- upload errors
st, doc, _ = d.request("POST", "/api/v1/swarms", {"torrent": "%%% not base64 %%%"})
c.check(st == 400 and doc["error"]["code"] == "bad_link", "garbage base64: 400 bad_link")
st, doc, _ = d.request("POST", "/api/v1/swarms",
                       {"torrent": base64.b64encode(b"d4:spam4:eggse").decode()})
c.check(st == 400 and doc["error"]["code"] == "bad_link", "base64 of a non-torrent: 400 bad_link")
st, doc, _ = d.request("POST", "/api/v1/swarms", {"torrent": "", "into": tmp.sub("x")})
c.check(st == 400 and doc["error"]["code"] == "bad_link", "empty torrent: 400 bad_link")
st, doc, _ = d.request("POST", "/api/v1/swarms", {"torrent": "AAAA", "link": mag})
c.check(st == 400 and doc["error"]["code"] == "bad_request", "torrent and link: 400 bad_request")
st, doc, _ = d.request("POST", "/api/v1/swarms", {"torrent": 5})
c.check(st == 400 and doc["error"]["code"] == "bad_request", "torrent not a string: 400")

# --- 100 streams while a leecher downloads 32 MiB, joined by upload
seed = Daemon(tmp, "seed").start()
content = tmp.sub("content")
write_file(os.path.join(content, "data.bin"), os.urandom(32 << 20))
ssid = seed.api("POST", "/api/v1/swarms", {"share": content}, expect=202)["swarm"]["id"]
ssw = wait_state(seed, ssid)
with open(ssw["torrent"], "rb") as f:
    tb64 = base64.b64encode(f.read()).decode()
leech = Daemon(tmp, "leech").start()
streams = [Stream(leech) for _ in range(100)]
c.check(all(x.next() and True for x in streams[:1]), "streams open")
t0 = time.monotonic()
dl = tmp.sub("dl")
r = leech.api("POST", "/api/v1/swarms", {"torrent": tb64, "into": dl,
                                         "peers": ["127.0.0.1:%d" % seed.port]}, expect=202)
lsid = r["swarm"]["id"]
c.equal(r["swarm"]["info_hash"], ssw["info_hash"], "the uploaded .torrent joins the seed's swarm")
wait_state(leech, lsid, timeout=180)
took = time.monotonic() - t0
print("# 32 MiB with 100 event streams open: %.1f s" % took)
with open(os.path.join(dl, "content", "data.bin"), "rb") as f, \
        open(os.path.join(content, "data.bin"), "rb") as g:
    c.check(f.read() == g.read(), "the download completes byte-identical")
extra = [Stream(leech) for _ in range(28)]
c.check(all(x.head() == 200 for x in extra), "streams 101..128 open")
over = Stream(leech)
c.equal(over.head(), 503, "the 129th stream: 503")
over.next(timeout=1)
c.check(b"too_many_streams" in over.body + over.raw, "... too_many_streams")
over.close()
fed = 0
for x in streams:
    # The download may end within one round: the swarm then comes as
    # swarm-added already seeding.
    got = x.until(lambda e: e["event"] in ("swarm-added", "swarm-changed") and
                  e["data"]["id"] == lsid and e["data"].get("state") == "seeding", timeout=10)
    fed += got is not None and any(e["event"] == "swarm-added" and e["data"]["id"] == lsid
                                   for e in got)
c.equal(fed, 100, "every one of the 100 streams saw the swarm added, and seeding")
for x in streams + extra:
    x.close()
wait_for("streams closed",
         lambda: leech.api("GET", "/api/v1/status")["events"]["streams"] == 0, 10)
c.equal(leech.api("GET", "/api/v1/status")["events"]["streams"], 0,
        "closed streams are freed (status events.streams 0)")

# --- a client that never reads is dropped; memory stays bounded.  Each
# share's root is ~4000 bytes of \x01 under long directory names, which
# JSON writes as \u0001: ~24 KiB per swarm object, so a few hundred shares
# make well over 8 MiB of events.
deep = tmp.sub("deep")
part = "\x01" * 250
root = deep
while len(root) + 260 < 3900:
    root = os.path.join(root, part)
os.makedirs(root)
rss0 = rss_kib(d.proc.pid)
stall = Stream(d, rcvbuf=4096)
c.equal(stall.head(timeout=5), 200, "the stalled client's stream opens")
made = 0
for i in range(700):
    p = os.path.join(root, "s%d" % i)
    os.makedirs(p)
    with open(os.path.join(p, "f"), "wb") as f:
        f.write(b"%d" % i)
    d.api("POST", "/api/v1/swarms", {"share": p}, expect=202)
    made += 1
    if i % 50 == 49 and d.api("GET", "/api/v1/status")["events"]["dropped"]:
        break
dropped = wait_for("the stalled stream dropped",
                   lambda: d.api("GET", "/api/v1/status")["events"]["dropped"], 10)
c.check(dropped == 1, "the daemon closed the stream that was not read (after %d shares)" % made)
rss1 = rss_kib(d.proc.pid)
print("# VmRSS %d -> %d KiB" % (rss0, rss1))
if sanitizer_build():
    print("# RSS bound not checked: a sanitizer's shadow memory and quarantine")
else:
    # The ~600 swarms themselves take ~20 MiB (their JSON baseline and
    # records, 4 KiB roots each); the stream adds at most 8 MiB.
    c.check(rss1 - rss0 < 48 * 1024, "the daemon's RSS grew by less than 48 MiB",
            "(%d KiB)" % (rss1 - rss0))
deadline = time.monotonic() + 20
while not stall.eof and time.monotonic() < deadline:
    stall._recv(1)
    stall.raw = stall.raw[-1024:]
c.check(stall.eof, "the stalled client sees the connection closed by the daemon")
print("# the stalled client got %d bytes before the close" % stall.received)
stall.close()
ok = Stream(d)
ev = ok.next(timeout=15)
c.check(ev is not None and ev["event"] == "snapshot" and len(ev["data"]["swarms"]) >= made,
        "a new stream still gets a full snapshot")
ok.close()

for x in (d, seed, leech):
    c.equal(x.stop(), 0, "%s stops cleanly" % x.name)
c.done()
