"""opentracker: Debian's opentracker as a loopback tracker for interop tests.

    ot = OpenTracker()                 # HTTP and UDP on one free port of 127.0.0.1
    ot.http_url(), ot.udp_url()        # http://127.0.0.1:P/announce, udp://127.0.0.1:P
    ot.allow(hash20_hex, ...)          # whitelist (v1 or truncated v2 hashes), reloaded by SIGHUP
    ot.stop()                          # by PID; also at exit

Debian's build serves only whitelisted info-hashes: anything else gets the
failure reason "Requested download is not authorized for use with this
tracker."  It reads the whitelist as another user, so the file and every
folder above it are world-readable here (a mkdtemp folder is not).
`available()` is false when the program is not installed (apt-get install
opentracker; scripts/deps.sh does).
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from realpeers import free_port  # a TCP and UDP port free on an address

BIN = shutil.which("opentracker") or "/usr/bin/opentracker"


def available():
    return os.access(BIN, os.X_OK)


class OpenTracker:
    def __init__(self, hashes=(), timeout=10, addr="127.0.0.1"):
        """addr: the IPv4 address to serve on (a network namespace's peer
        reaches this side's veth address, not 127.0.0.1)."""
        self.addr = addr
        self.dir = tempfile.mkdtemp(prefix="shoal-opentracker-")
        os.chmod(self.dir, 0o755)
        atexit.register(shutil.rmtree, self.dir, True)
        self.whitelist = os.path.join(self.dir, "whitelist")
        self.hashes = []
        # An empty whitelist file is fine; a placeholder keeps the format obvious.
        self._write(list(hashes) or ["00" * 20])
        self.conf = os.path.join(self.dir, "opentracker.conf")
        with open(self.conf, "w") as f:
            f.write("access.whitelist %s\n" % self.whitelist)
        os.chmod(self.conf, 0o644)
        self.port = free_port(addr)
        self.log_path = os.path.join(self.dir, "opentracker.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "-f", self.conf, "-i", addr, "-p", str(self.port),
                                      "-P", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("opentracker exited: %s" % self.log())
            try:
                with urllib.request.urlopen("http://%s:%d/stats" % (addr, self.port), timeout=1):
                    return
            except OSError as e:
                if getattr(e, "code", None):   # an HTTP error is an answer
                    return
                time.sleep(0.1)
        raise RuntimeError("opentracker did not answer on port %d: %s" % (self.port, self.log()))

    def _write(self, hashes):
        with open(self.whitelist, "w") as f:
            for h in hashes:
                f.write(h.lower() + "\n")
        os.chmod(self.whitelist, 0o644)
        self.hashes = list(hashes)

    def allow(self, *hashes):
        """Add 40-hex-digit hashes to the whitelist and reload it (SIGHUP)."""
        self._write(self.hashes + [h for h in hashes if h not in self.hashes])
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def http_url(self):
        return "http://%s:%d/announce" % (self.addr, self.port)

    def udp_url(self):
        return "udp://%s:%d" % (self.addr, self.port)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
