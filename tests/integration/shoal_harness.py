"""shoal_harness: start real shoal daemons on loopback for integration tests.

Every daemon gets its own data directory and ports, every wait is bounded,
and every process started is stopped by its PID (see Daemon.stop / cleanup).
"""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SHOAL = os.environ.get("SHOAL_BIN") or os.path.join(os.getcwd(), "shoal")
SRCDIR = os.environ.get("SHOAL_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

_started = []
_sanitizer_hits = []   # (daemon name, first lines of a sanitizer report)
_daemons = []
SANITIZER_MARKS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def _cleanup():
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


def free_port():
    """A port that is free right now for what a daemon binds: TCP and UDP on
    every IPv4 address (and TCP on every IPv6 one, where there is IPv6).
    Asking for 127.0.0.1 alone was not enough: a test connecting from
    127.0.0.2 or 127.0.0.3 holds ports there that a wildcard bind collides
    with ("Address already in use")."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("0.0.0.0", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("0.0.0.0", port))
                if socket.has_ipv6:
                    try:
                        t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                    except OSError:
                        t6 = None  # no IPv6 here: the daemon will not bind it either
                    if t6:
                        with t6:
                            t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                            t6.bind(("::", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class TestDir:
    """A temporary directory removed at exit unless SHOAL_KEEP_TMP is set."""

    def __init__(self, prefix="shoal-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        if not os.environ.get("SHOAL_KEEP_TMP"):
            atexit.register(shutil.rmtree, self.path, True)

    def sub(self, *parts):
        return os.path.join(self.path, *parts)


class Daemon:
    def __init__(self, tmp, name, args=(), env=None, netns=None, api_bind=None):
        """netns: a netns.Netns to run the daemon in (`ip netns exec`).  Its
        API then binds `api_bind` (default: the namespace's first LAN
        address, netns.addr4) and the test reaches it from the root
        namespace over a bridge that has a host address of its own."""
        self.netns = netns
        self.api_bind = api_bind or (netns.addr4 if netns is not None else None)
        if netns is not None and not self.api_bind:
            raise ValueError("Daemon in netns %s needs an api_bind address" % netns.name)
        self.data_dir = tmp.sub(name)
        self.name = name
        self.port = free_port()
        self.args = list(args)
        self.env = env  # extra environment for the daemon (e.g. LD_PRELOAD)
        _daemons.append(self)
        self.proc = None
        self.log_path = tmp.sub(name + ".log")
        self.api_addr = None
        self.token = None

    def command(self):
        cmd = [SHOAL, "daemon", "--data-dir", self.data_dir, "--port", str(self.port),
               "--api-port", "0", "--bootstrap", "",
               # Nothing leaves the machine: LAN discovery and the router's
               # port mapping are off unless a test turns them on (--lsd,
               # --port-mapping, later flags win), inside its own namespaces.
               "--no-lsd", "--no-port-mapping"] + self.args
        if self.api_bind:
            cmd[cmd.index("--api-port"):cmd.index("--api-port")] = ["--api-bind", self.api_bind]
        if os.environ.get("SHOAL_VALGRIND"):
            # `shoal daemon` execs shoal-daemon; memcheck must watch the
            # daemon itself, not the CLI that starts it.
            cmd[:2] = [os.path.join(os.path.dirname(SHOAL), "shoal-daemon")]
            # memcheck: any error or definite leak turns the exit code to 99,
            # which the tests' "stops cleanly" checks catch.
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--track-fds=no"] + cmd
        if self.netns is not None:
            cmd = self.netns.exec_prefix() + cmd
        return cmd

    def start(self, timeout=None, expect_ok=True, env=None):
        """Start the daemon; `env` overrides variables of its environment
        (None as a value removes one), and is kept for later restarts."""
        if env is not None:
            self.env = env
        if timeout is None:
            timeout = 120 if os.environ.get("SHOAL_VALGRIND") else 15
        addr_file = os.path.join(self.data_dir, "api.addr")
        if expect_ok and os.path.exists(addr_file):
            os.unlink(addr_file)  # left by a daemon killed with SIGKILL
        log = open(self.log_path, "ab")
        e = dict(os.environ)
        for k, v in (getattr(self, "env", None) or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e)
        log.close()
        _started.append(self.proc)
        if self.netns is not None:
            self.netns.procs.append(self.proc)  # stopped before its namespace goes
        if not expect_ok:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (
                    self.name, self.proc.returncode, self.log()))
            if os.path.exists(addr_file):
                with open(addr_file) as f:
                    self.api_addr = f.read().strip()
                with open(os.path.join(self.data_dir, "api.token")) as f:
                    self.token = f.read().strip()
                return self
            time.sleep(0.05)
        raise AssertionError("%s did not publish its API in %ss:\n%s" % (
            self.name, timeout, self.log()))

    def scan_sanitizer(self):
        """Record every sanitizer report in this daemon's log (once)."""
        lines = self.log().splitlines()
        seen = getattr(self, "_scanned", 0)
        self._scanned = len(lines)
        for i in range(seen, len(lines)):
            if any(m in lines[i] for m in SANITIZER_MARKS):
                _sanitizer_hits.append((self.name, lines[i:i + 12]))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, token=True, host=None, headers=None,
                raw_body=None, timeout=30):
        """Returns (status, parsed JSON or None, headers dict lower-cased)."""
        hostname, port = self.api_addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=timeout)
        h = {"Host": host or self.api_addr}
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = "Bearer " + token
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        return resp.status, doc, {k.lower(): v for k, v in resp.getheaders()}

    def api(self, method, path, body=None, expect=200):
        status, doc, _ = self.request(method, path, body)
        if expect is not None and status != expect:
            raise AssertionError("%s %s -> %s (wanted %s): %s" % (method, path, status, expect, doc))
        return doc

    def cli(self, *args, timeout=60, env=None, cwd=None):
        """Run `shoal ARGS --data-dir D`; returns CompletedProcess."""
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run([SHOAL] + list(args) + ["--data-dir", self.data_dir],
                              capture_output=True, text=True, timeout=timeout, env=e,
                              cwd=cwd)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the daemon by PID and wait; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
            self.scan_sanitizer()
            if rc not in (0, -signal.SIGKILL) and os.environ.get("SHOAL_VALGRIND"):
                # memcheck's report is in the daemon's log: show it.
                for line in self.log().splitlines()[-80:]:
                    print("# %s: %s" % (self.name, line))
            return rc
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError("%s did not stop within %ss after signal %s" % (
                self.name, timeout, sig))

    def kill9(self):
        return self.stop(signal.SIGKILL)


class Checks:
    """Counts named checks, prints one line for each, exits non-zero on any failure."""

    def __init__(self, name):
        self.name = name
        self.failed = 0
        self.passed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % what)
        else:
            self.failed += 1
            print("not ok - %s %s" % (what, detail))
        sys.stdout.flush()
        return cond

    def equal(self, got, want, what):
        return self.check(got == want, what, "(got %r, want %r)" % (got, want))

    def done(self):
        # A sanitizer build's daemons report races and memory errors in
        # their logs, even when they were killed with SIGKILL afterwards.
        for d in _daemons:
            d.scan_sanitizer()
        for name, report in _sanitizer_hits[:5]:
            print("# %s:\n#   %s" % (name, "\n#   ".join(report)))
        self.check(not _sanitizer_hits, "no sanitizer report in any daemon's log",
                   "(%d reports)" % len(_sanitizer_hits))
        print("%s: %d checks passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def write_file(path, data):
    """Create `path` (and its folders) holding `data` (bytes)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tree_digest(root):
    """{relative path: sha256 hex} of every file under `root`."""
    import hashlib
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def compare_trees(checks, src, dst, what, skip_empty=False):
    """One check: the files under `dst` are those under `src`, byte for
    byte.  skip_empty: leave empty files out (clients that never create
    them)."""
    import hashlib
    a, b = tree_digest(src), tree_digest(dst) if os.path.isdir(dst) else {}
    if skip_empty:
        empty = hashlib.sha256(b"").hexdigest()
        a = {k: v for k, v in a.items() if v != empty}
        b = {k: v for k, v in b.items() if v != empty}
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    return checks.check(not missing and not extra and not differ, what,
                        "(missing %s, extra %s, differ %s)" % (missing, extra, differ))



def sanitizer_runtime():
    """The ASan or TSan runtime the daemon links (which must come first in
    LD_PRELOAD for a shim of ours to load beside it), or ''."""
    daemon = os.path.join(os.path.dirname(SHOAL), "shoal-daemon")
    try:
        out = subprocess.run(["ldd", daemon if os.path.exists(daemon) else SHOAL],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        if ("libasan" in line or "libtsan" in line) and "=>" in line:
            return line.split("=>")[1].split("(")[0].strip()
    return ""


def sanitizer_build():
    """True when the daemon is built with ASan or TSan, whose shadow memory
    and quarantine make RSS figures meaningless."""
    return bool(sanitizer_runtime())


def wait_for(what, fn, timeout, interval=0.2):
    """Poll fn() until it returns something true; returns it, or the last
    (false) value after `timeout` seconds, saying so."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() >= deadline:
            if not got:
                print("# gave up waiting for %s after %ss" % (what, timeout))
            return got
        time.sleep(interval)


def wait_state(d, sid, want="seeding", timeout=90, leave=("hashing", "checking")):
    """Poll GET /swarms/SID on daemon `d` until its state is `want` (or, with
    want=None, until it leaves the `leave` states); returns the swarm.
    Raises AssertionError on "error" or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    sw = None
    while time.monotonic() < deadline:
        sw = d.api("GET", "/api/v1/swarms/%s" % sid)
        if (want and sw["state"] == want) or (not want and sw["state"] not in leave):
            return sw
        if sw["state"] == "error" and want != "error":
            break
        time.sleep(0.1)
    raise AssertionError("swarm %s on %s: %s, wanted %s" % (
        sid, d.name, sw and sw["state"], want or "not " + "/".join(leave)))
