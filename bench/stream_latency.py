#!/usr/bin/python3
"""stream_latency: playing a file while it downloads, shoal's stream address against libtorrent's piece deadlines.

One shoal seed daemon (--encryption off, --upload-limit 2M: the link a
streaming leecher sees on the Internet, not loopback's GB/s) shares a folder
holding one file of random bytes, video.mp4 (64 MiB; --size-mib N), in
--format hybrid (the default share).  shoal picks the piece length (the rule in
transfer/metainfo.h: 32 KiB for 64 MiB); --piece-kib N instead makes the
.torrent with libtorrent at that piece length, and the seed joins it into the
folder (the file is adopted, so it seeds).  The same seed, started once,
serves every repeat of both leechers, each fresh (own data dir, empty
download dir), --repeats (5) times each, alternately (shoal, libtorrent,
shoal, ...), one at a time:

  shoal       a shoal daemon (--encryption off) joins the seed's .torrent
              (POST /api/v1/swarms, peers: the seed) and at once makes a stream
              address for the file (POST /api/v1/swarms/{id}/files/{n}/stream);
              an HTTP client on a plain socket reads it:
  libtorrent  a libtorrent 2.0 session (a child /usr/bin/python3 running this
              script with --lt-child; tests/interop/lt_peer.py's loopback
              settings, TCP, encryption off) adds the same .torrent and connects
              to the seed; the "reader" is set_piece_deadline on the W pieces
              from the read position (the way libtorrent-based players stream),
              W the pieces shoal's window holds (node/engine.c: 8 MiB, at least 4
              and at most 512 pieces), deadline i x (piece length / the cap) ms
              for the i-th, and have_piece polled every 5 ms; between phases
              clear_piece_deadlines() (the reader went away).
              request_queue_time is libtorrent's own (3 s; --lt-queue-time
              N sets it).  Until 2026-12-03 a shoal seed closed a peer whose
              257th request was queued (reqq 256), and libtorrent, whose
              time-critical requests come on top of a queue kept at the
              peer's reqq, was dropped after a few seconds; requests past
              the queue are now ignored (node/engine_wire.c on_request), so
              the default setting runs.

and measures, each in seconds from its phase's start:

  (a) start   from the moment the leecher has the metadata (for a .torrent
              that is when it is added: just before the join request / the
              add_torrent call), reading from byte 0: the first byte (shoal:
              the first body byte of `Range: bytes=0-`; libtorrent: the piece
              holding byte 0 is had, i.e. downloaded and hash-checked) and the
              first 1 MiB (1 MiB of body; every piece holding [0, 1 MiB) had);
  (b) seek    the reader of (a) closed, a new one at 90 % of the file (a new
              request `Range: bytes=P-`; new deadlines from P's piece): the
              first byte and the first 1 MiB, from the request;
  (c) sustain that reader closed, a new one from 10 % read for --sustain-seconds
              (10): MiB/s of in-order bytes delivered to the reader while the
              rest downloads (shoal: body bytes received; libtorrent: the bytes
              from 10 % up to the first piece not yet had, the deadlines moved
              along with that position).

During (c) both record a trace 4 times a second (raw.runs.*.sustain_trace:
seconds, bytes read; libtorrent adds its download rate, bytes had and the
blocks it has requested of the seed and not received, its peers and how
many of them choke it).

Then the leecher is stopped by PID (the rest of the file is not waited for).
shoal's bytes are compared with the source file afterwards.  libtorrent's
"first byte" is the piece being had, before anything reads it from disk (a
player on libtorrent still has read_piece or a file read to do), so it
flatters libtorrent slightly; shoal's includes its reader's disk read, its
25 ms poll for a missing piece and the HTTP hop.

Each figure: median and min-max over the repeats; the ratio shoal / libtorrent
per repeat pair (the i-th of each, which ran back to back) with its median and
range, and the ratio of the medians.  Below 1 is better for latency, above 1
for the sustained rate.  Output: one JSON line per run, a table, and
OUT/stream_latency.json in the shape bench/lib/benchlib.py documents.
Run with /usr/bin/python3 (Debian's, which has python3-libtorrent).
"""
import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import benchlib as bl  # noqa: E402

NAME = "stream_latency"
PY = "/usr/bin/python3"
LT_DIR = os.path.join(bl.REPO, "tests", "interop")
ONE_MIB = bl.MiB
FILE_NAME = "video.mp4"

# shoal's window (node/engine.c ENGINE_STREAM_WINDOW_BYTES / _MIN_PIECES /
# _MAX_PIECES), which libtorrent's deadlines mirror.
WINDOW_BYTES = 8 << 20
WINDOW_MIN, WINDOW_MAX = 4, 512

METRICS = [  # key, label, unit, higher_is_better
    ("start_first_byte_s", "start: first byte", "s", False),
    ("start_first_mib_s", "start: first 1 MiB", "s", False),
    ("seek_first_byte_s", "seek to 90 %: first byte", "s", False),
    ("seek_first_mib_s", "seek to 90 %: first 1 MiB", "s", False),
    ("sustain_mibps", "from 10 %: in-order MiB/s", "MiB/s", True),
]


class Unavailable(Exception):
    pass


def window_pieces(piece_length):
    return max(WINDOW_MIN, min(WINDOW_MAX, WINDOW_BYTES // piece_length))


def parse_rate(text):
    t = text.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def proc_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def make_data(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            f.write(os.urandom(k))
            left -= k
    with open(path, "rb") as f:       # read once: the seed serves from the page cache
        while f.read(4 << 20):
            pass


# ---------------------------------------------------------------- the seed

class Seed:
    """The one shoal seed every leecher downloads from."""

    def __init__(self, shoal, tmp, folder, cap, fmt, piece_kib, log_level):
        self.d = bl.Daemon(shoal, os.path.join(tmp, "seed"),
                           ["--encryption", "off", "--upload-limit", cap,
                            "--log-level", log_level]).start()
        if piece_kib:
            self.torrent = os.path.join(tmp, "lt-%dk.torrent" % piece_kib)
            code = ("import sys, libtorrent as lt\n"
                    "fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])\n"
                    "fl = {'hybrid': 0, 'v2': lt.create_torrent.v2_only,"
                    " 'v1': lt.create_torrent.v1_only}[sys.argv[3]]\n"
                    "ct = lt.create_torrent(fs, int(sys.argv[2]), flags=fl)\n"
                    "lt.set_piece_hashes(ct, sys.argv[4])\n"
                    "open(sys.argv[5], 'wb').write(lt.bencode(ct.generate()))\n")
            r = subprocess.run([PY, "-c", code, os.path.join(folder, FILE_NAME),
                                str(piece_kib * 1024), fmt, folder, self.torrent],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise Unavailable("libtorrent could not make the torrent: " + r.stderr[-300:])
            st, doc = self.d.request("POST", "/api/v1/swarms",
                                     {"link": self.torrent, "into": folder})
            if st not in (200, 202):
                raise RuntimeError("seed join: %s %s" % (st, doc))
            sid = doc["swarm"]["id"]
        else:
            st, doc = self.d.request("POST", "/api/v1/swarms", {"share": folder, "format": fmt})
            if st not in (200, 202):
                raise RuntimeError("seed share: %s %s" % (st, doc))
            sid = doc["swarm"]["id"]
        deadline = time.monotonic() + 300
        while True:
            st, sw = self.d.request("GET", "/api/v1/swarms/%s" % sid)
            if sw and sw["state"] == "seeding":
                break
            if (sw and sw["state"] == "error") or time.monotonic() > deadline:
                raise RuntimeError("seed not seeding: %s" % sw)
            time.sleep(0.05)
        self.sid = sid
        if not piece_kib:
            self.torrent = sw["torrent"]
        self.piece_length = sw["piece_length"]
        self.num_pieces = sw["num_pieces"]
        self.format = sw.get("format")
        self.port = self.d.port
        self.cpu0 = proc_cpu_seconds(self.d.pid)

    def uploaded(self):
        st, sw = self.d.request("GET", "/api/v1/swarms/%s" % self.sid)
        return sw["transfer"]["uploaded"] if sw else None

    def stop(self):
        info = {"peak_rss_kib": self.d.peak_rss_kib(), "cpu_seconds": proc_cpu_seconds(self.d.pid)}
        info["exit_code"] = self.d.stop()
        return info


# ---------------------------------------------------------------- shoal

def http_read(url, start, until_bytes=None, for_seconds=None, timeout=60.0):
    """GET url with `Range: bytes=start-` on a plain socket; reads the body
    until `until_bytes` of it or for `for_seconds`, then closes.  Returns
    (figures, body); times are from just before the connect."""
    assert url.startswith("http://")
    hostport, path = url[7:].split("/", 1)
    host, port = hostport.rsplit(":", 1)
    t0 = time.monotonic()
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-\r\n"
                   "Connection: close\r\n\r\n" % (path, hostport, start)).encode())
        s.setblocking(False)
        head = b""
        body = bytearray()
        first = got_mib = None
        status = None
        end = t0 + (for_seconds if for_seconds is not None else timeout)
        hard = t0 + timeout
        trace, next_trace = [], t0
        while True:
            now = time.monotonic()
            if for_seconds is not None and now >= next_trace:
                trace.append([round(now - t0, 3), len(body)])
                next_trace = now + 0.25
            if now >= end or now >= hard:
                break
            r, _, _ = select.select([s], [], [], min(end, hard, next_trace) - now
                                    if for_seconds is not None else min(end, hard) - now)
            if not r:
                continue
            chunk = s.recv(1 << 20)
            now = time.monotonic()
            if not chunk:
                break
            if status is None:
                head += chunk
                if b"\r\n\r\n" not in head:
                    continue
                head, chunk = head.split(b"\r\n\r\n", 1)
                status = int(head.split(b" ", 2)[1])
                if status != 206:
                    raise RuntimeError("stream GET from %d: HTTP %d: %r" % (start, status, head[:300]))
                if not chunk:
                    continue
            if first is None:
                first = now - t0
            body += chunk
            if got_mib is None and len(body) >= ONE_MIB:
                got_mib = now - t0
            if until_bytes is not None and len(body) >= until_bytes:
                break
        secs = time.monotonic() - t0
    finally:
        s.close()
    if until_bytes is not None and len(body) < until_bytes:
        raise RuntimeError("stream GET from %d: %d of %d bytes within %.0f s" % (
            start, len(body), until_bytes, timeout))
    res = {"first_byte_s": first, "first_mib_s": got_mib, "bytes": len(body), "seconds": secs}
    if trace:
        res["trace"] = trace
    return res, bytes(body)


def run_shoal(ctx, tag):
    os.sync()
    d = bl.Daemon(ctx.shoal, os.path.join(ctx.tmp, "shoal-leech-" + tag),
                  ["--encryption", "off", "--log-level", ctx.args.log_level]).start()
    into = os.path.join(ctx.tmp, "shoal-out-" + tag)
    os.makedirs(into)
    res = {}
    try:
        t0 = time.monotonic()
        st, doc = d.request("POST", "/api/v1/swarms",
                            {"link": ctx.seed.torrent, "into": into,
                             "peers": ["127.0.0.1:%d" % ctx.seed.port]})
        if st not in (200, 202):
            raise RuntimeError("shoal join: %s %s" % (st, doc))
        res["join_reply_s"] = time.monotonic() - t0
        sid = doc["swarm"]["id"]
        files = doc["swarm"].get("files") or []
        n = next((i for i, f in enumerate(files) if f["path"].endswith(FILE_NAME)), 0)
        st, tok = d.request("POST", "/api/v1/swarms/%s/files/%d/stream" % (sid, n), {})
        if st != 201:
            raise RuntimeError("stream address: %s %s" % (st, tok))
        res["address_s"] = time.monotonic() - t0
        url = tok["url"]

        a, body_a = http_read(url, 0, until_bytes=ONE_MIB, timeout=ctx.args.timeout)
        off_a = time.monotonic() - t0 - a["seconds"]      # the GET began this long after t0
        res["start_first_byte_s"] = off_a + a["first_byte_s"]
        res["start_first_mib_s"] = off_a + a["first_mib_s"]
        res["start_read"] = a

        pb = ctx.size * 9 // 10
        b, body_b = http_read(url, pb, until_bytes=ONE_MIB, timeout=ctx.args.timeout)
        res["seek_first_byte_s"] = b["first_byte_s"]
        res["seek_first_mib_s"] = b["first_mib_s"]
        res["seek_read"] = b

        pc = ctx.size // 10
        c, body_c = http_read(url, pc, for_seconds=ctx.args.sustain_seconds,
                              timeout=ctx.args.sustain_seconds + 5)
        res["sustain_first_byte_s"] = c["first_byte_s"]
        res["sustain_trace"] = c.get("trace")
        res["sustain_bytes"] = c["bytes"]
        res["sustain_seconds"] = c["seconds"]
        res["sustain_mibps"] = c["bytes"] / c["seconds"] / bl.MiB
        res["total_s"] = time.monotonic() - t0

        st, sw = d.request("GET", "/api/v1/swarms/%s" % sid)
        res["leech_bytes_have_at_end"] = sw.get("bytes_have") if sw else None
        res["hash_failures"] = sw["transfer"]["hash_failures"] if sw else None
        res["leech_cpu_seconds"] = proc_cpu_seconds(d.pid)
        res["leech_peak_rss_kib"] = d.peak_rss_kib()
        ok = all(body == ctx.source_slice(off, len(body))
                 for off, body in ((0, body_a), (pb, body_b), (pc, body_c)))
        res["bytes_match_source"] = ok
        if not ok:
            raise RuntimeError("shoal's streamed bytes differ from the source file")
        res["leech_exit_code"] = d.stop()
        return res
    finally:
        d.stop()
        bl.drop_tree(into)
        bl.drop_tree(d.data_dir)


# ---------------------------------------------------------------- libtorrent

def lt_child(argv):
    """The libtorrent leecher (run as a child process: --lt-child JSON)."""
    a = json.loads(argv)
    sys.path.insert(0, LT_DIR)
    import libtorrent as lt
    import lt_peer

    parent = os.getppid()
    hard = time.monotonic() + a["timeout_total"]

    def alive():
        if os.getppid() != parent or time.monotonic() > hard:
            raise SystemExit(3)

    ti = lt.torrent_info(a["torrent"])
    fs = ti.files()
    fidx = next(i for i in range(fs.num_files())
                if not fs.file_flags(i) & lt.file_storage.flag_pad_file
                and fs.file_path(i).endswith(FILE_NAME))
    fsize, foff, plen = fs.file_size(fidx), fs.file_offset(fidx), ti.piece_length()
    last_piece = (foff + fsize - 1) // plen
    W = a["window"]
    step_ms = max(1, int(plen * 1000 / a["cap_bytes"]))
    poll = a["poll"]

    def piece_of(off):
        return (foff + off) // plen

    def piece_end(p):       # file offset just past piece p
        return min(fsize, (p + 1) * plen - foff)

    cfg = lt_peer.settings(0, False, "off")
    if a["queue_time"]:
        cfg["request_queue_time"] = a["queue_time"]
    ses = lt.session(cfg)
    t0 = time.monotonic()
    h = lt_peer.add(ses, a["torrent"], a["save"])
    lt_peer.connect(h, a["seed_port"])
    res = {"piece_length": plen, "window_pieces": W, "deadline_step_ms": step_ms}

    def deadlines(first):
        for i, p in enumerate(range(first, min(first + W, last_piece + 1))):
            h.set_piece_deadline(p, i * step_ms)

    def wait_range(start, t_ref, timeout):
        """first byte, first MiB of the file from `start`, in s from t_ref."""
        p_first, p_mib = piece_of(start), piece_of(min(fsize, start + ONE_MIB) - 1)
        first = None
        while True:
            alive()
            now = time.monotonic()
            if first is None and h.have_piece(p_first):
                first = now - t_ref
            if first is not None and all(h.have_piece(p) for p in range(p_first, p_mib + 1)):
                return first, now - t_ref
            if now - t_ref > timeout:
                raise RuntimeError("libtorrent: no 1 MiB from %d within %ss: %s" % (
                    start, timeout, lt_peer.status(h)))
            time.sleep(poll)

    deadlines(piece_of(0))
    res["start_first_byte_s"], res["start_first_mib_s"] = wait_range(0, t0, a["timeout"])

    h.clear_piece_deadlines()
    pb = fsize * 9 // 10
    tb = time.monotonic()
    deadlines(piece_of(pb))
    res["seek_first_byte_s"], res["seek_first_mib_s"] = wait_range(pb, tb, a["timeout"])

    h.clear_piece_deadlines()
    pc = fsize // 10
    tc = time.monotonic()
    pos, first, set_to = pc, None, -1
    trace, next_trace = [], tc
    while True:
        alive()
        now = time.monotonic()
        if now - tc >= a["sustain_seconds"]:
            break
        if now >= next_trace:       # where the reader is, 4 times a second
            st = h.status()
            peers = h.get_peer_info()
            queued = sum(pi.download_queue_length for pi in peers)
            choked = sum(1 for pi in peers if pi.flags & lt.peer_info.choked)
            trace.append([round(now - tc, 3), pos - pc, st.download_payload_rate,
                          st.total_wanted_done, queued, len(peers), choked])
            next_trace = now + 0.25
        while pos < fsize and h.have_piece(piece_of(pos)):
            pos = piece_end(piece_of(pos))
        if first is None and pos > pc:
            first = now - tc
        cur = piece_of(min(pos, fsize - 1))
        if cur != set_to:            # the window follows the position
            for i, p in enumerate(range(cur, min(cur + W, last_piece + 1))):
                if p > set_to + W - 1 or set_to < 0:
                    h.set_piece_deadline(p, i * step_ms)
            set_to = cur
        time.sleep(poll)
    secs = time.monotonic() - tc
    res["sustain_first_byte_s"] = first
    res["sustain_trace"] = trace
    res["sustain_bytes"] = pos - pc
    res["sustain_seconds"] = secs
    res["sustain_mibps"] = (pos - pc) / secs / bl.MiB
    res["total_s"] = time.monotonic() - t0
    st = h.status()
    res["leech_bytes_have_at_end"] = st.total_wanted_done
    res["failed_bytes"] = st.total_failed_bytes
    res["peers_at_end"] = st.num_peers       # 0: the seed closed the connection
    res["libtorrent_version"] = lt.__version__
    t = os.times()
    res["leech_cpu_seconds"] = t.user + t.system
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
    ses.remove_torrent(h)
    return 0


def run_lt(ctx, tag):
    os.sync()
    save = os.path.join(ctx.tmp, "lt-out-" + tag)
    os.makedirs(save)
    args = {"torrent": ctx.seed.torrent, "save": save, "seed_port": ctx.seed.port,
            "window": ctx.args.lt_window or ctx.window, "cap_bytes": ctx.cap_bytes, "poll": 0.005,
            "queue_time": ctx.args.lt_queue_time,
            "sustain_seconds": ctx.args.sustain_seconds, "timeout": ctx.args.timeout,
            "timeout_total": 3 * ctx.args.timeout + ctx.args.sustain_seconds + 30}
    p = subprocess.Popen([PY, os.path.abspath(__file__), "--lt-child", json.dumps(args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    bl._started.append(p)
    try:
        try:
            out, err = p.communicate(timeout=args["timeout_total"] + 10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            raise RuntimeError("libtorrent leecher timed out: %s" % err[-500:])
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if p.returncode != 0 or not lines:
            raise RuntimeError("libtorrent leecher: exit %s: %s" % (p.returncode, err[-800:]))
        return json.loads(lines[-1])
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        bl.drop_tree(save)


# ---------------------------------------------------------------- main

class Ctx:
    pass


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": bl.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt_stat(s, digits=3):
    if s["median"] is None:
        return "-"
    return "%.*f (%.*f-%.*f)" % (digits, s["median"], digits, s["min"], digits, s["max"])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--lt-child":
        return lt_child(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, 5 s sustained reads")
    ap.add_argument("--out", default=bl.DEFAULT_OUT)
    ap.add_argument("--shoal", help="shoal binary (default $SHOAL_BIN or _build/bench/shoal)")
    ap.add_argument("--repeats", type=int, help="runs of each contender (default 5; --quick 2)")
    ap.add_argument("--size-mib", type=int, default=64, help="the file's size (default 64)")
    ap.add_argument("--cap", default="2M", help="the seed's upload limit (default 2M = 2 MiB/s)")
    ap.add_argument("--format", default="hybrid", choices=("hybrid", "v2", "v1"))
    ap.add_argument("--piece-kib", type=int, default=0,
                    help="make the torrent with libtorrent at this piece length (default: shoal share's own)")
    ap.add_argument("--sustain-seconds", type=float, help="the sustained read (default 10; --quick 5)")
    ap.add_argument("--timeout", type=float, default=60, help="bound on each phase, seconds")
    ap.add_argument("--only", help="shoal,libtorrent (default both)")
    ap.add_argument("--lt-window", type=int, default=0,
                    help="pieces libtorrent puts deadlines on (default: as many as shoal's window)")
    ap.add_argument("--lt-queue-time", type=int, default=0,
                    help="libtorrent's request_queue_time, s (default 0: its own, 3)")
    ap.add_argument("--log-level", default="info", help="the shoal daemons' (debug: see --keep)")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    if a.repeats is None:
        a.repeats = 2 if a.quick else 5
    if a.sustain_seconds is None:
        a.sustain_seconds = 5.0 if a.quick else 10.0
    want = (a.only or "shoal,libtorrent").split(",")
    if any(w not in ("shoal", "libtorrent") for w in want):
        ap.error("--only takes shoal and/or libtorrent")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    m = bl.machine()
    shoal = bl.shoal_binary(a.shoal)
    if not shoal:
        bl.write_result(out, NAME, "unavailable", reason="no shoal binary", quick=a.quick, m=m)
        print("%s: not available: no shoal binary (build it: see bench/README.md)" % NAME)
        return bl.EXIT_UNAVAILABLE
    if "libtorrent" in want:
        r = subprocess.run([PY, "-c", "import libtorrent"], capture_output=True)
        if r.returncode != 0:
            bl.write_result(out, NAME, "unavailable", quick=a.quick, m=m,
                            reason="libtorrent not importable by %s (apt-get install python3-libtorrent)" % PY)
            print("%s: not available: no python3-libtorrent" % NAME)
            return bl.EXIT_UNAVAILABLE

    ctx = Ctx()
    ctx.args, ctx.shoal = a, shoal
    ctx.size = a.size_mib * bl.MiB
    ctx.cap_bytes = parse_rate(a.cap)
    ctx.tmp = tempfile.mkdtemp(prefix="shoal-bench-stream-", dir=a.tmp)
    folder = os.path.join(ctx.tmp, "src", "movie")
    path = os.path.join(folder, FILE_NAME)
    ctx.seed = None
    raw = {"size_bytes": ctx.size, "cap": a.cap, "cap_bytes_per_s": ctx.cap_bytes,
           "repeats": a.repeats, "sustain_seconds": a.sustain_seconds, "format": a.format,
           "piece_kib_asked": a.piece_kib, "order": want, "tmp": ctx.tmp,
           "lt_request_queue_time": a.lt_queue_time or "libtorrent's default (3)",
           "runs": {w: [] for w in want}}
    try:
        print("%s: %d MiB of random bytes as %s, seed upload capped at %s/s" % (
            NAME, a.size_mib, FILE_NAME, a.cap))
        sys.stdout.flush()
        make_data(path, ctx.size)

        def source_slice(off, n):
            with open(path, "rb") as f:
                f.seek(off)
                return f.read(n)
        ctx.source_slice = source_slice
        ctx.seed = Seed(shoal, ctx.tmp, folder, a.cap, a.format, a.piece_kib, a.log_level)
        ctx.window = window_pieces(ctx.seed.piece_length)
        raw.update(piece_length=ctx.seed.piece_length, num_pieces=ctx.seed.num_pieces,
                   torrent_format=ctx.seed.format, window_pieces=ctx.window,
                   window_bytes=ctx.window * ctx.seed.piece_length,
                   lt_window_pieces=a.lt_window or ctx.window,
                   torrent_made_by="libtorrent" if a.piece_kib else "shoal share")
        print("  seed ready: %s torrent, piece length %d KiB, %d pieces; window %d pieces (%.2f MiB)" % (
            ctx.seed.format, ctx.seed.piece_length // 1024, ctx.seed.num_pieces, ctx.window,
            ctx.window * ctx.seed.piece_length / bl.MiB))
        sys.stdout.flush()
        runners = {"shoal": run_shoal, "libtorrent": run_lt}
        for rep in range(a.repeats):
            for name in want:
                tag = "%s-r%d" % (name, rep)
                up0 = ctx.seed.uploaded()
                res = runners[name](ctx, tag)
                res["seed_uploaded_bytes"] = (ctx.seed.uploaded() or 0) - (up0 or 0)
                res["repeat"] = rep + 1
                raw["runs"][name].append(res)
                line = {"contender": name, "repeat": rep + 1}
                line.update({k: res.get(k) for k, _, _, _ in METRICS})
                if res.get("peers_at_end") == 0:
                    line["warning"] = "the seed closed libtorrent's connection (see its log)"
                print(json.dumps(line, sort_keys=True))
                sys.stdout.flush()
                time.sleep(0.5)       # the seed's bucket refills the same way for everyone
        raw["seed"] = ctx.seed.stop()
    except Unavailable as e:
        bl.write_result(out, NAME, "unavailable", reason=str(e), quick=a.quick, m=m, raw=raw)
        print("%s: not available: %s" % (NAME, e))
        return bl.EXIT_UNAVAILABLE
    except Exception as e:  # noqa: BLE001 - reported in the result file
        bl.write_result(out, NAME, "failed", reason="%s: %s" % (type(e).__name__, e),
                        quick=a.quick, m=m, raw=raw)
        print("%s: FAILED: %s: %s" % (NAME, type(e).__name__, e))
        return bl.EXIT_FAILED
    finally:
        if ctx.seed is not None:
            ctx.seed.d.stop()
        if not a.keep:
            bl.drop_tree(ctx.tmp)

    # ---------------------------------------------------------------- summary
    summary, rows, table = {}, [], []
    both = "shoal" in want and "libtorrent" in want
    ltv = next((r.get("libtorrent_version") for r in raw["runs"].get("libtorrent", [])), None)
    for key, label, unit, hib in METRICS:
        s = {w: stats([r.get(key) for r in raw["runs"][w]]) for w in want}
        pair = None
        if both:
            pair = stats([bl.ratio(x.get(key), y.get(key))
                          for x, y in zip(raw["runs"]["shoal"], raw["runs"]["libtorrent"])])
        summary[key] = {"shoal": s.get("shoal"), "libtorrent": s.get("libtorrent"),
                        "ratio_per_pair": pair}
        sh, lt_ = s.get("shoal", {}).get("median"), s.get("libtorrent", {}).get("median")
        note = None
        if both:
            note = "medians of %d; shoal %s, libtorrent %s; shoal/libtorrent per pair %s" % (
                a.repeats, fmt_stat(s["shoal"]), fmt_stat(s["libtorrent"]), fmt_stat(pair, 2))
        rows.append(bl.row("stream %s (%s/s cap)" % (label, a.cap), sh, unit,
                           "libtorrent %s set_piece_deadline" % (ltv or "2.0"), lt_,
                           higher_is_better=hib, note=note))
        table.append([label + " (" + unit + ")", fmt_stat(s["shoal"]) if "shoal" in s else "-",
                      fmt_stat(s["libtorrent"]) if "libtorrent" in s else "-",
                      fmt_stat(pair, 2) if pair else "-",
                      bl.ratio(sh, lt_)])
    raw["summary"] = summary
    raw["libtorrent_version"] = ltv
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)

    print("\n%s: %d MiB %s, %s torrent, piece %d KiB, window %d pieces, seed capped at %s/s; "
          "%d runs each, alternating" % (NAME, a.size_mib, FILE_NAME, raw["torrent_format"],
                                         raw["piece_length"] // 1024, raw["window_pieces"], a.cap,
                                         a.repeats))
    print("machine: " + bl.machine_line(m))
    print(bl.table(["figure", "shoal median (min-max)", "libtorrent median (min-max)",
                    "shoal/lt per pair median (min-max)", "ratio of medians"], table))
    print("(seconds from the phase's start; lower is better, but MiB/s higher is better)")
    print("result: %s" % os.path.join(out, NAME + ".json"))
    return bl.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
