#!/usr/bin/python3
"""realpeers: real v1 BitTorrent clients from Debian packages as test peers.

Standard library only; run as root under /usr/bin/python3.  Transmission 3.00
(transmission-daemon, transmission-create) and aria2 1.36 (aria2c) are the v1
peers; libtorrent (tests/interop/lt_peer.py) is the v2 and hybrid one.

Transmission never connects to a peer on 127.0.0.0/8, and neither it nor aria2
can be told "connect to this peer": they meet peers through a tracker (the DHT,
LPD and PEX are the other ways).  So the tests give them network namespaces of
their own and a tracker in the test process:

    with Lan(2) as lan:                        # hub namespace with a bridge
        a, b = lan.members                     # two namespaces on one subnet
        with MiniTracker(lan.host_addr) as trk:    # this process, host side
            transmission_create(src, t, [trk.url])
            seed = Transmission(tmp + "/ta", ns=a).start()
            seed.add(t, os.path.dirname(src))
            leech = Transmission(tmp + "/tb", ns=b).start()
            leech.wait_done(leech.add(t, tmp + "/out"), 60)

Addresses.  Every subnet comes from 10.250.0.0/16; which one is derived from
the pid and checked against the addresses this (root) namespace already has,
under a lock file, so tests running in parallel never share one.
  Netns()  one namespace joined to this one by a veth pair on its own /30:
           host_addr (.1, this side) and addr (.2, its eth0).
  Lan(n)   a hub namespace holding a bridge, this side joined to it by a veth
           (host_addr, .1) and n member namespaces (.2, .3, ...) on the same
           /28, so every member reaches every other one and this side.
Each namespace's default route is this side's address, so it reaches every
address this namespace has (a Lan's host_addr from a Netns, say) -- but not
another namespace behind another veth: nothing forwards (ip_forward is left
alone).  Namespaces that must reach each other go on one Lan.
Inside each namespace `lo` is up.  Everything is removed on exit, exceptions
included (and at interpreter exit, and on SIGTERM/SIGINT/SIGHUP once
cleanup_on_signals() is called): first every process still in the namespace
(by the pids `ip netns pids` lists: only this process starts any there), then
the namespace, then this side's veth.

Transmission's RPC.  A daemon in a namespace binds its RPC port to its own
namespace address and whitelists this side's address; this process talks JSON
RPC to it over the veth with urllib (no proxies), answering the 409 with the
X-Transmission-Session-Id it is given.  A daemon in this namespace binds its
RPC to 127.0.0.1.

Skips.  require() exits 77 (automake's SKIP) with one line saying what is
missing: root, a program, or network namespaces (it tries to make one).

Neither Transmission nor aria2 creates an empty file (nor a folder holding only
empty files): compare_files_with_bytes() compares the files that have bytes.
"""
import atexit
import base64
import contextlib
import fcntl
import hashlib
import http.server
import ipaddress
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SKIP = 77
POOL = ipaddress.ip_network("10.250.0.0/16")
LOCK_FILE = "/run/lock/shoal-realpeers.lock" if os.path.isdir("/run/lock") else "/tmp/shoal-realpeers.lock"

_procs = []        # every Popen started here, stopped by pid at exit
_namespaces = []   # every live namespace object, removed at exit
_seq = [0]


class NetnsUnavailable(Exception):
    """Network namespaces (or veth pairs) cannot be made here."""


def _next_seq():
    _seq[0] += 1
    return _seq[0]


# ---------------------------------------------------------------- processes and skips

def which(prog):
    """Path of `prog` on PATH or in /usr/sbin, /sbin, or None."""
    return shutil.which(prog) or next((os.path.join(d, prog) for d in ("/usr/sbin", "/sbin")
                                       if os.access(os.path.join(d, prog), os.X_OK)), None)


def skip(msg):
    print("SKIP: " + msg)
    sys.stdout.flush()
    sys.exit(SKIP)


def require(root=True, programs=(), netns=True):
    """Exit 77 with a one-line reason unless this process is root, every program
    in `programs` is installed, and (netns) a network namespace with a veth pair
    can be made.  Debian package names are given in the message."""
    if root and os.geteuid() != 0:
        skip("needs root (network namespaces, veth pairs)")
    pkg = {"transmission-daemon": "transmission-daemon", "transmission-create": "transmission-cli",
           "transmission-remote": "transmission-cli", "aria2c": "aria2", "ip": "iproute2"}
    missing = [p for p in list(programs) + (["ip"] if netns else []) if not which(p)]
    if missing:
        skip("not installed: %s (apt-get install %s)" % (
            ", ".join(missing), " ".join(sorted({pkg.get(p, p) for p in missing}))))
    if netns:
        ok, why = netns_available()
        if not ok:
            skip("cannot make a network namespace with a veth pair here: " + why)


def netns_available():
    """(True, "") if a namespace with a veth pair can be made and entered, else
    (False, reason)."""
    try:
        with Netns(tag="probe") as ns:
            r = ns.run(["true"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                return False, "ip netns exec: %s" % r.stderr.strip()
    except (NetnsUnavailable, OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    return True, ""


def track(proc):
    """Remember `proc` so it is stopped (by its pid) at interpreter exit."""
    _procs.append(proc)
    return proc


def stop_process(proc, timeout=10):
    """SIGTERM by pid, wait up to `timeout`, then SIGKILL. Returns the exit code
    (None if it had to be killed)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return None


def _cleanup():
    for ns in list(reversed(_namespaces)):
        try:
            ns.close()
        except Exception as e:  # noqa: BLE001 - keep removing the rest
            sys.stderr.write("realpeers: cleanup of %s: %s\n" % (getattr(ns, "name", ns), e))
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


def cleanup_on_signals():
    """Turn SIGTERM, SIGINT and SIGHUP into SystemExit, so `with` blocks unwind and
    the atexit cleanup runs (namespaces removed, processes stopped)."""
    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise NetnsUnavailable("ip %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return r


# ---------------------------------------------------------------- addresses

@contextlib.contextmanager
def _address_lock():
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _networks_in_use():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                         timeout=10).stdout
    nets = []
    for line in out.splitlines():
        f = line.split()
        if "inet" in f:
            nets.append(ipaddress.ip_interface(f[f.index("inet") + 1]).network)
    return nets


def _pick_subnet(prefixlen):
    """A /prefixlen of POOL that overlaps no address of this namespace. Call it
    with the address lock held, and assign this side's address before letting go."""
    count = 1 << (prefixlen - POOL.prefixlen)
    size = 1 << (32 - prefixlen)
    used = [n for n in _networks_in_use() if n.overlaps(POOL)]
    start = (os.getpid() * 2654435761 + _seq[0] * 40503) % count
    for i in range(count):
        base = int(POOL.network_address) + ((start + i) % count) * size
        cand = ipaddress.ip_network((base, prefixlen))
        if not any(cand.overlaps(n) for n in used):
            return cand
    raise NetnsUnavailable("no free /%d left in %s" % (prefixlen, POOL))


# ---------------------------------------------------------------- namespaces

class _Ns:
    """One network namespace made by this process: run commands inside it."""

    def __init__(self, name):
        self.name = name
        self.addr = None        # its address (str)
        self.host_addr = None   # this side's address on the same link (str)
        self._ports = 20000

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + [str(a) for a in argv]

    def run(self, argv, **kw):
        """subprocess.run of argv inside the namespace (timeout 60 s unless given)."""
        kw.setdefault("timeout", 60)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(argv), **kw)

    def popen(self, argv, **kw):
        """subprocess.Popen of argv inside the namespace (`ip netns exec` execs
        it, so the Popen's pid is the program's). Tracked: stopped at exit."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        return track(subprocess.Popen(self.argv(argv), **kw))

    def port(self):
        """A port nothing in this (fresh) namespace uses yet."""
        self._ports += 1
        return self._ports

    def pids(self):
        r = _ip("netns", "pids", self.name, check=False)
        return [int(x) for x in r.stdout.split() if x.isdigit()]

    def _remove(self):
        """Stop what still runs inside (SIGTERM, then SIGKILL), delete the namespace."""
        pids = self.pids()
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while pids and time.monotonic() < deadline:
                for p in _procs:            # reap our own children so they go away
                    p.poll()
                pids = self.pids()
                if pids:
                    time.sleep(0.05)
            if not pids:
                break
        _ip("netns", "del", self.name, check=False)

    def __repr__(self):
        return "<%s %s %s>" % (type(self).__name__, self.name, self.addr)


def _new_namespace(name):
    r = _ip("netns", "add", name, check=False)
    if r.returncode != 0:
        raise NetnsUnavailable("ip netns add %s: %s" % (name, r.stderr.strip()))
    _ip("-n", name, "link", "set", "lo", "up")


class Netns(_Ns):
    """A namespace joined to this one by a veth pair on its own /30: host_addr
    (.1, this side) and addr (.2, the namespace's eth0).  A context manager:

        with Netns() as ns:
            ns.run(["ip", "addr"]); p = ns.popen([...])

    Raises NetnsUnavailable if it cannot be made (require() turns that into a
    skip)."""

    def __init__(self, tag="ns"):
        seq = _next_seq()
        super().__init__("shoal-%s-%d-%d" % (tag, os.getpid(), seq))
        self.host_if = "rp%dh%d" % (os.getpid(), seq)
        self.subnet = None
        self._made = False

    def __enter__(self):
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def open(self):
        _namespaces.append(self)
        self._made = True
        _new_namespace(self.name)
        with _address_lock():
            self.subnet = _pick_subnet(30)
            h = list(self.subnet.hosts())
            self.host_addr, self.addr = str(h[0]), str(h[1])
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", "eth0",
                "netns", self.name)
            _ip("addr", "add", "%s/30" % self.host_addr, "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.name, "addr", "add", "%s/30" % self.addr, "dev", "eth0")
        _ip("-n", self.name, "link", "set", "eth0", "up")
        _ip("-n", self.name, "route", "add", "default", "via", self.host_addr)
        return self

    def close(self):
        if not self._made:
            return
        self._made = False
        self._remove()
        _ip("link", "del", self.host_if, check=False)   # the pair goes with it
        if self in _namespaces:
            _namespaces.remove(self)

    def __exit__(self, *exc):
        self.close()
        return False


class Lan:
    """A hub namespace holding a bridge, this side joined to it by a veth
    (host_addr, the subnet's first address) and `members` namespaces on the same
    /28 (addresses .2, .3, ...): every member reaches every other and this side.
    A context manager; `members` is the list of namespaces (run/popen/addr/host_addr),
    add() makes another one (at most 13 in all)."""

    PREFIX = 28

    def __init__(self, members=2, tag="lan"):
        self.seq = _next_seq()
        self.tag = tag
        self.hub = _Ns("shoal-%s-%d-%d-hub" % (tag, os.getpid(), self.seq))
        self.host_if = "rp%dh%d" % (os.getpid(), self.seq)
        self.want = members
        self.members = []
        self.subnet = None
        self.host_addr = None
        self._hosts = []
        self._made = False
        self.name = self.hub.name

    def __enter__(self):
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def open(self):
        _namespaces.append(self)
        self._made = True
        _new_namespace(self.hub.name)
        _ip("-n", self.hub.name, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub.name, "link", "set", "br0", "up")
        with _address_lock():
            self.subnet = _pick_subnet(self.PREFIX)
            self._hosts = [str(a) for a in self.subnet.hosts()]
            self.host_addr = self._hosts.pop(0)
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", "host",
                "netns", self.hub.name)
            _ip("addr", "add", "%s/%d" % (self.host_addr, self.PREFIX), "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.hub.name, "link", "set", "host", "master", "br0", "up")
        for _ in range(self.want):
            self.add()
        return self

    def add(self):
        """One more member namespace on the LAN (its eth0 holds the next address)."""
        if not self._hosts:
            raise NetnsUnavailable("the /%d of this Lan is full" % self.PREFIX)
        k = len(self.members) + 1
        m = _Ns("shoal-%s-%d-%d-m%d" % (self.tag, os.getpid(), self.seq, k))
        m.addr, m.host_addr = self._hosts.pop(0), self.host_addr
        self.members.append(m)
        _new_namespace(m.name)
        port = "m%d" % k
        _ip("-n", self.hub.name, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", m.name)
        _ip("-n", self.hub.name, "link", "set", port, "master", "br0", "up")
        _ip("-n", m.name, "addr", "add", "%s/%d" % (m.addr, self.PREFIX), "dev", "eth0")
        _ip("-n", m.name, "link", "set", "eth0", "up")
        _ip("-n", m.name, "route", "add", "default", "via", self.host_addr)
        return m

    def names(self):
        return [self.hub.name] + [m.name for m in self.members]

    def close(self):
        if not self._made:
            return
        self._made = False
        for m in reversed(self.members):
            m._remove()
        self.hub._remove()
        _ip("link", "del", self.host_if, check=False)
        if self in _namespaces:
            _namespaces.remove(self)

    def __exit__(self, *exc):
        self.close()
        return False


def our_namespaces():
    """Names of the namespaces `ip netns list` shows that this process made."""
    out = _ip("netns", "list", check=False).stdout
    mark = "-%d-" % os.getpid()
    return [line.split()[0] for line in out.splitlines()
            if line.startswith("shoal-") and mark in line]


def _run_in(ns, argv, **kw):
    if ns is None:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return track(subprocess.Popen([str(a) for a in argv], **kw))
    return ns.popen(argv, **kw)


def free_port(addr="0.0.0.0"):
    """A TCP and UDP port free on `addr` in this namespace right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((addr, 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((addr, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _log_tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- bencode and v1 metainfo

def bencode(x):
    if isinstance(x, bool):
        x = int(x)
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, (bytes, bytearray)):
        return b"%d:%s" % (len(x), bytes(x))
    if isinstance(x, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in x) + b"e"
    if isinstance(x, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(x))


def _bdecode_at(b, i, spans, depth=0):
    """(value, next index); spans collects (key, start, end) of top-level dict values."""
    if depth > 64:
        raise ValueError("bencode nested too deep")
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while b[i:i + 1] != b"e":
            v, i = _bdecode_at(b, i, None, depth + 1)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while b[i:i + 1] != b"e":
            k, i = _bdecode_at(b, i, None, depth + 1)
            start = i
            v, i = _bdecode_at(b, i, None, depth + 1)
            out[k] = v
            if spans is not None:
                spans.append((k, start, i))
        return out, i + 1
    if c.isdigit():
        j = b.index(b":", i)
        n = int(b[i:j])
        if j + 1 + n > len(b):
            raise ValueError("bencode string runs past the end")
        return b[j + 1:j + 1 + n], j + 1 + n
    raise ValueError("bad bencode at %d" % i)


def bdecode(b):
    v, i = _bdecode_at(bytes(b), 0, None)
    if i != len(b):
        raise ValueError("trailing bytes after bencode")
    return v


def info_hash_v1(torrent):
    """The v1 info-hash (40 hex) of a .torrent (path or bytes): SHA-1 of its
    info dictionary exactly as written."""
    if not isinstance(torrent, (bytes, bytearray)):
        with open(torrent, "rb") as f:
            torrent = f.read()
    spans = []
    _bdecode_at(bytes(torrent), 0, spans)
    for k, s, e in spans:
        if k == b"info":
            return hashlib.sha1(torrent[s:e]).hexdigest()
    raise ValueError("no info dictionary")


def magnet_v1(torrent, trackers=(), name=None):
    """magnet:?xt=urn:btih:<hex>[&dn=..][&tr=...] for a .torrent (path or bytes)."""
    link = "magnet:?xt=urn:btih:" + info_hash_v1(torrent)
    if name:
        link += "&dn=" + urllib.parse.quote(name, safe="")
    for t in trackers:
        link += "&tr=" + urllib.parse.quote(t, safe="")
    return link


# ---------------------------------------------------------------- files

def tree_digest(root, with_bytes_only=False):
    """{path relative to root: sha256 hex} of every file under root (only the
    non-empty ones with with_bytes_only)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if with_bytes_only and os.path.getsize(p) == 0:
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def compare_files_with_bytes(src, dst):
    """The differences between the non-empty files under src and under dst, as a
    list of strings ("missing X", "extra X", "differs X"); empty when they hold
    the same files byte for byte.  Empty files are left out on both sides
    (Transmission and aria2 never create them)."""
    a = tree_digest(src, True)
    b = tree_digest(dst, True) if os.path.isdir(dst) else {}
    return (["missing " + k for k in sorted(set(a) - set(b))]
            + ["extra " + k for k in sorted(set(b) - set(a))]
            + ["differs " + k for k in sorted(set(a) & set(b)) if a[k] != b[k]])


# ---------------------------------------------------------------- a tracker

class _TrackerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):   # keep the test's output clean
        pass

    def _reply(self, doc, code=200):
        body = bencode(doc)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        q = {}
        for part in query.split("&"):
            k, _, v = part.partition("=")
            if k:
                # info_hash and peer_id are percent-encoded binary: decode to bytes.
                q.setdefault(urllib.parse.unquote(k), urllib.parse.unquote_to_bytes(v))
        trk = self.server.tracker
        if path.endswith("/announce"):
            self._reply(trk._announce(q, self.client_address[0]))
        elif path.endswith("/scrape"):
            self._reply(trk._scrape(q.get("info_hash")))
        else:
            self._reply({"failure reason": "no such path"}, 404)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MiniTracker:
    """A BEP 3 HTTP tracker in this process, only as a meeting point for test
    peers: it remembers (address the announce came from, announced port) per
    info-hash, answers every announce with the other peers in compact form
    (BEP 23), interval 5 s and min interval 1 s (no seed/leecher counts: see
    _announce), and rejects nothing.
    event=stopped removes a peer; a peer silent for `expire` seconds is dropped.

        with MiniTracker("10.250.3.1") as trk: ... trk.url ... trk.peers(ih)
    """

    def __init__(self, host="127.0.0.1", port=0, interval=5, expire=60):
        self.interval = interval
        self.expire = expire
        self.lock = threading.Lock()
        self.swarms = {}     # info_hash (20 bytes) -> {(ip, port): (last seen, left)}
        self.announces = []  # (monotonic time, ip, dict of the query)
        self.server = _Server((host, port), _TrackerHandler)
        self.server.tracker = self
        self.host, self.port = self.server.server_address[:2]
        self.url = "http://%s:%d/announce" % (self.host, self.port)
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def peers(self, info_hash):
        """[(ip, port), ...] known for an info-hash (20 bytes or 40 hex)."""
        if isinstance(info_hash, str):
            info_hash = bytes.fromhex(info_hash)
        with self.lock:
            return sorted(self.swarms.get(info_hash, {}))

    def _announce(self, q, ip):
        ih = q.get("info_hash", b"")
        if len(ih) != 20:
            return {"failure reason": "info_hash must be 20 bytes"}
        try:
            port = int(q.get("port", b"0"))
            left = int(q.get("left", b"0") or 0)
            numwant = int(q.get("numwant", b"50") or 50)
        except ValueError:
            return {"failure reason": "port, left and numwant are numbers"}
        event = q.get("event", b"").decode(errors="replace")
        now = time.monotonic()
        with self.lock:
            self.announces.append((now, ip, {k: v for k, v in q.items()}))
            swarm = self.swarms.setdefault(ih, {})
            for key in [k for k, (seen, _) in swarm.items() if now - seen > self.expire]:
                del swarm[key]
            me = (ip, port)
            if event == "stopped":
                swarm.pop(me, None)
            elif 0 < port < 65536:
                swarm[me] = (now, left)
            others = [(p, l) for p, (_, l) in swarm.items() if p != me][:max(0, numwant)]
        compact = b"".join(socket.inet_aton(a) + port.to_bytes(2, "big")
                           for (a, port), _ in others if "." in a)
        # No "complete"/"incomplete" counts: Transmission takes complete/(complete
        # + incomplete) = 100% as "every peer in this reply is a seed" and never
        # unchokes them, and aria2 announces left=0 while it fetches a magnet's
        # metadata, so counts would turn a leecher into a "seed".  (Scrape has them.)
        return {"interval": self.interval, "min interval": 1, "peers": compact}

    def _scrape(self, ih):
        with self.lock:
            keys = [ih] if ih else list(self.swarms)
            files = {}
            for k in keys:
                swarm = self.swarms.get(k, {})
                done = sum(1 for _, l in swarm.values() if l == 0)
                files[k] = {"complete": done, "incomplete": len(swarm) - done, "downloaded": 0}
        return {"files": files}


# ---------------------------------------------------------------- Transmission

def transmission_create(src, out, tracker_urls, piece_size=None, private=False, comment=None,
                        timeout=600):
    """A v1 .torrent of `src` (file or folder) written to `out` by transmission-create,
    announcing to `tracker_urls`; piece_size in bytes (a multiple of 1 KiB), or
    transmission-create's choice.  Returns out."""
    cmd = ["transmission-create", "-o", out]
    for t in tracker_urls:
        cmd += ["-t", t]
    if piece_size:
        if piece_size % 1024:
            raise ValueError("piece_size must be a multiple of 1 KiB")
        cmd += ["-s", str(piece_size // 1024)]
    if private:
        cmd.append("-p")
    if comment:
        cmd += ["-c", comment]
    if os.path.exists(out):
        os.unlink(out)          # so a failed run cannot leave an older file looking new
    r = subprocess.run(cmd + [src.rstrip("/")], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError("transmission-create: exit %s: %s" % (r.returncode,
                                                                 (r.stderr or r.stdout).strip()[-800:]))
    return out


class TransmissionError(RuntimeError):
    pass


# Transmission's torrent status numbers (RPC "status").
TR_STOPPED, TR_CHECK_WAIT, TR_CHECK, TR_DOWNLOAD_WAIT, TR_DOWNLOAD, TR_SEED_WAIT, TR_SEED = range(7)

INFO_FIELDS = ["id", "name", "hashString", "status", "percentDone", "leftUntilDone", "sizeWhenDone",
               "totalSize", "haveValid", "haveUnchecked", "error", "errorString", "peersConnected",
               "rateDownload", "rateUpload", "downloadedEver", "uploadedEver", "corruptEver",
               "isFinished", "downloadDir", "recheckProgress", "trackerStats", "peers"]


class Transmission:
    """One transmission-daemon 3.00 with its own confdir under `workdir`, in
    namespace `ns` (a Netns or Lan member) or in this one.

    encryption: 0 prefer plain, 1 prefer encrypted (Transmission's default),
    2 require.  bind_addr: the IPv4 address it listens on and connects from
    (default: the namespace's address; in this namespace pass one that is not
    on 127.0.0.0/8, or peers never meet it).  settings: more settings.json keys.
    Started by start(); stopped by stop() (SIGTERM by pid, SIGKILL after a bound)."""

    def __init__(self, workdir, ns=None, peer_port=None, rpc_port=None, encryption=1,
                 bind_addr=None, settings=None, cache_mb=4):
        self.workdir = os.path.abspath(workdir)
        self.confdir = os.path.join(self.workdir, "conf")
        self.download_dir = os.path.join(self.workdir, "downloads")
        self.log_path = os.path.join(self.workdir, "transmission.log")
        self.ns = ns
        if ns is not None:
            self.peer_port = peer_port or ns.port()
            self.rpc_port = rpc_port or ns.port()
            self.rpc_addr = ns.addr
            self.bind_addr = bind_addr or ns.addr
            whitelist = "127.0.0.1,%s" % ns.host_addr
        else:
            self.bind_addr = bind_addr or "0.0.0.0"
            self.peer_port = peer_port or free_port()
            self.rpc_port = rpc_port or free_port("127.0.0.1")
            self.rpc_addr = "127.0.0.1"
            whitelist = "127.0.0.1"
        self.addr = self.bind_addr
        self.url = "http://%s:%d/transmission/rpc" % (self.rpc_addr, self.rpc_port)
        self.settings = {
            "dht-enabled": False, "lpd-enabled": False, "utp-enabled": False,
            "port-forwarding-enabled": False, "pex-enabled": True,
            "peer-port": self.peer_port, "peer-port-random-on-start": False,
            "bind-address-ipv4": self.bind_addr,
            "rpc-enabled": True, "rpc-port": self.rpc_port, "rpc-bind-address": self.rpc_addr,
            "rpc-authentication-required": False,
            "rpc-whitelist-enabled": True, "rpc-whitelist": whitelist,
            "rpc-host-whitelist-enabled": False,
            "download-dir": self.download_dir, "incomplete-dir-enabled": False,
            "encryption": encryption,
            "start-added-torrents": True, "trash-original-torrent-files": False,
            "watch-dir-enabled": False, "blocklist-enabled": False,
            "speed-limit-down-enabled": False, "speed-limit-up-enabled": False,
            "alt-speed-enabled": False, "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "download-queue-enabled": False, "seed-queue-enabled": False,
            "queue-stalled-enabled": False, "scrape-paused-torrents-enabled": False,
            "rename-partial-files": False, "cache-size-mb": cache_mb, "message-level": 2,
            "peer-limit-global": 200, "peer-limit-per-torrent": 60,
        }
        self.settings.update(settings or {})
        self.proc = None
        self._sid = ""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self, timeout=20):
        """Write settings.json, start `transmission-daemon -f -g CONFDIR`, wait
        (bounded) until its RPC answers. Returns self."""
        os.makedirs(self.confdir, exist_ok=True)
        os.makedirs(self.download_dir, exist_ok=True)
        with open(os.path.join(self.confdir, "settings.json"), "w") as f:
            json.dump(self.settings, f, indent=1, sort_keys=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = _run_in(self.ns, ["transmission-daemon", "-f", "-g", self.confdir],
                                stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TransmissionError("transmission-daemon exited with %s: %s" % (
                    self.proc.returncode, _log_tail(self.log_path)))
            try:
                self.rpc("session-get", timeout=2)
                return self
            except (OSError, TransmissionError, ValueError) as e:
                last = e
                time.sleep(0.1)
        self.stop()
        raise TransmissionError("transmission RPC at %s did not answer within %ss (%s): %s" % (
            self.url, timeout, last, _log_tail(self.log_path)))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def rpc(self, method, arguments=None, timeout=10):
        """One JSON RPC call; returns its "arguments". Raises TransmissionError
        when the result is not "success"."""
        body = json.dumps({"method": method, "arguments": arguments or {}}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "X-Transmission-Session-Id": self._sid})
            try:
                with self._opener.open(req, timeout=timeout) as r:
                    doc = json.loads(r.read().decode())
            except urllib.error.HTTPError as e:
                if e.code == 409:    # the CSRF dance: retry with the id it hands out
                    self._sid = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise TransmissionError("%s: HTTP %d %s" % (method, e.code, e.reason))
            if doc.get("result") != "success":
                raise TransmissionError("%s: %s" % (method, doc.get("result")))
            return doc.get("arguments") or {}
        raise TransmissionError("%s: no session id accepted" % method)

    def add(self, torrent_or_magnet, download_dir=None, paused=False):
        """Add a .torrent (path) or a magnet link; returns the torrent id.
        download_dir: where its files go (the folder holding the torrent's name);
        default this daemon's downloads folder."""
        args = {"download-dir": os.path.abspath(download_dir or self.download_dir), "paused": paused}
        if torrent_or_magnet.startswith(("magnet:", "http://", "https://")):
            args["filename"] = torrent_or_magnet
        else:
            with open(torrent_or_magnet, "rb") as f:
                args["metainfo"] = base64.b64encode(f.read()).decode()
        res = self.rpc("torrent-add", args)
        t = res.get("torrent-added") or res.get("torrent-duplicate")
        if not t:
            raise TransmissionError("torrent-add: %r" % res)
        return t["id"]

    def info(self, tid, fields=None):
        """torrent-get of one torrent: a dict of `fields` (INFO_FIELDS by default)."""
        res = self.rpc("torrent-get", {"ids": [tid], "fields": fields or INFO_FIELDS})
        ts = res.get("torrents") or []
        if not ts:
            raise TransmissionError("no torrent %s" % tid)
        return ts[0]

    def wait_done(self, tid, timeout, poll=0.2, stall=None):
        """Wait (bounded) until torrent `tid` has every wanted byte, verified (not
        while it checks): returns its info. Raises TimeoutError with the last info,
        TransmissionError on a local error (error 3)."""
        return self._wait(tid, timeout, poll, stall,
                          lambda i: (i["leftUntilDone"] == 0 and i["percentDone"] >= 1
                                     and i["status"] not in (TR_CHECK_WAIT, TR_CHECK)
                                     and i["haveValid"] >= i["sizeWhenDone"]))

    def wait_seeding(self, tid, timeout, poll=0.2):
        """Wait (bounded) until `tid` is checked and seeding."""
        return self._wait(tid, timeout, poll, None,
                          lambda i: i["status"] == TR_SEED and i["leftUntilDone"] == 0)

    def _wait(self, tid, timeout, poll, stall, done):
        fields = ["id", "status", "percentDone", "leftUntilDone", "sizeWhenDone", "haveValid",
                  "error", "errorString", "peersConnected", "rateDownload", "recheckProgress"]
        t0 = last_t = time.monotonic()
        last_have = -1
        while True:
            if self.proc.poll() is not None:
                raise TransmissionError("transmission-daemon exited with %s: %s" % (
                    self.proc.returncode, _log_tail(self.log_path)))
            i = self.info(tid, fields)
            if i.get("error") == 3:
                raise TransmissionError("torrent %s: %s" % (tid, i.get("errorString")))
            if done(i):
                return i
            now = time.monotonic()
            if i["haveValid"] != last_have:
                last_have, last_t = i["haveValid"], now
            elif stall and now - last_t > stall:
                raise TimeoutError("transmission: no progress for %ss: %s" % (stall, i))
            if now - t0 > timeout:
                raise TimeoutError("transmission: torrent %s not there after %ss: %s" % (
                    tid, timeout, i))
            time.sleep(poll)

    def reannounce(self, tid):
        """Ask the tracker again now (Transmission honours the tracker's min interval)."""
        self.rpc("torrent-reannounce", {"ids": [tid]})

    def verify(self, tid):
        self.rpc("torrent-verify", {"ids": [tid]})

    def remove(self, tid, delete_data=False):
        self.rpc("torrent-remove", {"ids": [tid], "delete-local-data": delete_data})

    def log(self):
        return _log_tail(self.log_path, 1 << 20)

    def stop(self, timeout=10):
        """SIGTERM by pid (it announces "stopped" and exits), SIGKILL after `timeout`."""
        return stop_process(self.proc, timeout)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------- aria2

class Aria2Proc:
    """A running aria2c: .proc (Popen), .log_path, .dir, .port; wait(), stop()."""

    def __init__(self, proc, log_path, directory, port):
        self.proc, self.log_path, self.dir, self.port = proc, log_path, directory, port

    @property
    def pid(self):
        return self.proc.pid

    def wait(self, timeout):
        """The exit code once it exits (bounded: TimeoutError, it is then stopped)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError("aria2c still running after %ss: %s" % (timeout, self.log()[-1500:]))

    def log(self):
        return _log_tail(self.log_path, 1 << 20)

    def stop(self, timeout=10):
        return stop_process(self.proc, timeout)


def _aria2(args, directory, port, trackers, timeout, ns, log_path, extra):
    os.makedirs(directory, exist_ok=True)
    log_path = log_path or os.path.join(os.path.dirname(os.path.abspath(directory)),
                                        "aria2-%d.log" % port)
    cmd = ["aria2c", "--no-conf", "--enable-dht=false", "--enable-dht6=false",
           "--bt-enable-lpd=false", "--listen-port=%d" % port, "--dht-listen-port=%d" % port,
           "-d", directory, "--log=" + log_path, "--log-level=info", "--console-log-level=warn",
           "--summary-interval=0", "--file-allocation=none", "--allow-overwrite=true",
           "--auto-file-renaming=false", "--bt-save-metadata=false",
           # aria2 ends itself after the bound; the driver stops it by pid as well.
           "--stop=%d" % max(1, int(timeout))]
    if trackers:
        cmd.append("--bt-tracker=" + ",".join(trackers))
    cmd += list(extra) + list(args)
    out = open(log_path + ".out", "ab")
    try:
        proc = _run_in(ns, cmd, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()
    return Aria2Proc(proc, log_path, directory, port)


def aria2_download(link_or_torrent, directory, port=None, trackers=None, timeout=120, ns=None,
                   log_path=None, extra=()):
    """aria2c downloading a magnet link or .torrent into `directory` and exiting
    when done (--seed-time=0): DHT and LPD off, peers from the link's trackers
    or `trackers`.  Bounded by --stop=timeout.  Returns an Aria2Proc."""
    port = port or (ns.port() if ns else free_port())
    return _aria2(["--seed-time=0", link_or_torrent], directory, port, trackers, timeout, ns,
                  log_path, extra)


def aria2_seed(torrent, directory, port=None, trackers=None, timeout=120, ns=None, log_path=None,
               extra=()):
    """aria2c seeding .torrent `torrent` from the data in `directory` (the folder
    holding the torrent's name): checks it first (-V), then seeds whatever the
    ratio (--seed-ratio=0.0) until stopped or `timeout`. Returns an Aria2Proc."""
    port = port or (ns.port() if ns else free_port())
    return _aria2(["-V", "--seed-ratio=0.0", "--bt-seed-unverified=true", torrent], directory,
                  port, trackers, timeout, ns, log_path, extra)
