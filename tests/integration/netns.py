"""netns: network namespaces, bridges and veth pairs for integration tests.

A test that turns on something that talks to the network (port mapping,
LAN discovery) runs its daemons inside namespaces it makes here, so that
nothing leaves the machine.  Names carry the test's part letter and PID
(`shp1234-lan`), everything made is removed at exit (atexit, and SIGTERM
is turned into a normal exit so that runs too), and every process started
in a namespace is killed by PID before the namespace goes.

    if not netns_available(): skip("...")        # exit 77: automake's SKIP
    br = make_bridge(name("br"), "10.151.1.254/24")   # the host joins it
    lan = Netns(name("lan"))
    veth_pair(lan, "eth0", br, "10.151.1.2/24")
    lan.run("ip", "route", "add", "default", "via", "10.151.1.1")
    p = lan.popen(["some", "daemon"])             # stopped by PID at exit

Interface names are at most 15 characters; a veth is made in the root
namespace under a unique temporary name and renamed once inside its
namespace, so two tests may both call theirs eth0.
"""
import atexit
import os
import signal
import subprocess
import sys
import time

IP = "ip"
_namespaces = []   # Netns objects not yet deleted, deleted at exit
_links = []        # root-namespace link names (bridges, veth ends) to remove
_counter = [0]


def name(suffix, letter="p"):
    """A name unique to this test process: sh + part letter + pid + '-' + suffix."""
    n = "sh%s%d-%s" % (letter, os.getpid(), suffix)
    if len(n) > 15:
        raise ValueError("interface/namespace name %r is longer than 15 characters" % n)
    return n


def _tmp_ifname():
    _counter[0] += 1
    return "sh%dv%d" % (os.getpid() % 1000000, _counter[0])


def _ip(*args, check=True, timeout=10):
    r = subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def netns_available():
    """True when this process may make namespaces, veth pairs and bridges
    (root, `ip` present, the kernel allows it).  Tries once, cleans up."""
    if os.geteuid() != 0:
        return False
    probe = "sh%d-probe" % (os.getpid() % 100000)
    try:
        if _ip("netns", "add", probe, check=False).returncode != 0:
            return False
        ok = _ip("link", "add", probe + "a", "type", "veth", "peer", "name", probe + "b",
                 check=False).returncode == 0
        if ok:
            _ip("link", "del", probe + "a", check=False)
        return ok
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        try:
            _ip("netns", "del", probe, check=False)
        except (OSError, subprocess.SubprocessError):
            pass


def skip(why):
    """Print a SKIP line and exit 77 (automake counts it as skipped)."""
    print("SKIP: %s" % why)
    sys.stdout.flush()
    sys.exit(77)


class Netns:
    """A network namespace made now (loopback up) and deleted at exit."""

    def __init__(self, nsname):
        self.name = nsname
        self.procs = []
        self.addr4 = None   # the first IPv4 address given to it by veth_pair
        self.addr6 = None
        _ip("netns", "add", nsname)
        _namespaces.append(self)
        self.run(IP, "link", "set", "lo", "up")

    def exec_prefix(self):
        return [IP, "netns", "exec", self.name]

    def run(self, *cmd, check=True, timeout=30, **kw):
        """Run cmd inside the namespace, bounded in time; CompletedProcess."""
        if len(cmd) == 1 and isinstance(cmd[0], (list, tuple)):
            cmd = cmd[0]
        r = subprocess.run(self.exec_prefix() + list(cmd), capture_output=True, text=True,
                           timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("[%s] %s -> %d: %s" % (self.name, " ".join(cmd), r.returncode,
                                                      (r.stderr or r.stdout).strip()))
        return r

    def popen(self, *cmd, **kw):
        """Start cmd inside the namespace (`ip netns exec` execs it, so the
        PID is the command's); killed by PID at delete()/exit."""
        if len(cmd) == 1 and isinstance(cmd[0], (list, tuple)):
            cmd = cmd[0]
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.exec_prefix() + list(cmd), **kw)
        self.procs.append(p)
        return p

    def delete(self):
        """Stop what we started in it (by PID), then remove it."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []
        _ip("netns", "del", self.name, check=False)
        if self in _namespaces:
            _namespaces.remove(self)


def make_bridge(brname, addr4=None, addr6=None):
    """A bridge in the root namespace (up, multicast snooping off so
    multicast reaches every port), optionally with the host's own address
    on it (e.g. 10.151.1.254/24) so the test process reaches daemons there."""
    _ip("link", "add", brname, "type", "bridge")
    _links.append(brname)
    _ip("link", "set", brname, "type", "bridge", "mcast_snooping", "0", check=False)
    if addr4:
        _ip("addr", "add", addr4, "dev", brname)
    if addr6:
        _ip("-6", "addr", "add", addr6, "dev", brname, "nodad")
    _ip("link", "set", brname, "up")
    return brname


def _addr(ns, ifname, addr4, addr6):
    if addr4:
        ns.run(IP, "addr", "add", addr4, "dev", ifname)
        if ns.addr4 is None:
            ns.addr4 = addr4.split("/")[0]
    if addr6:
        ns.run(IP, "-6", "addr", "add", addr6, "dev", ifname, "nodad")
        if ns.addr6 is None:
            ns.addr6 = addr6.split("/")[0]
    ns.run(IP, "link", "set", ifname, "up")


def veth_pair(ns, ifname, bridge_or_ns, addr4=None, addr6=None,
              peer_ifname=None, peer_addr4=None, peer_addr6=None):
    """A veth pair: one end named `ifname` inside Netns `ns` with addr4
    and/or addr6 (CIDR strings; IPv6 without DAD); the other end either
    enslaved to the root-namespace bridge named `bridge_or_ns` (a str), or
    moved into the Netns `bridge_or_ns` as `peer_ifname` (default: ifname)
    with peer_addr4/peer_addr6.  Returns the root-side name (or None)."""
    a, b = _tmp_ifname(), _tmp_ifname()
    _ip("link", "add", a, "type", "veth", "peer", "name", b)
    _ip("link", "set", a, "netns", ns.name)
    ns.run(IP, "link", "set", a, "name", ifname)
    _addr(ns, ifname, addr4, addr6)
    if isinstance(bridge_or_ns, Netns):
        other = bridge_or_ns
        pname = peer_ifname or ifname
        _ip("link", "set", b, "netns", other.name)
        other.run(IP, "link", "set", b, "name", pname)
        _addr(other, pname, peer_addr4, peer_addr6)
        return None
    _links.append(b)
    _ip("link", "set", b, "master", bridge_or_ns)
    _ip("link", "set", b, "up")
    return b


_locks = []  # open lock files, held until the process exits


def exclusive(letter, timeout=900):
    """Wait until no other process holds this part's address space
    (each test has fixed subnets: 10.151.x for p, 10.152.x for l), then
    hold it until this process exits.  Two copies of one test at once (a
    distcheck beside a developer's run) would otherwise share a subnet on
    two bridges and route each other's packets wrong."""
    import fcntl
    f = open("/tmp/shoal-netns-%s.lock" % letter, "a")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() >= deadline:
                print("FAIL: another run has held the %s address space for %d s" % (letter, timeout))
                sys.exit(1)
            time.sleep(0.5)
    _locks.append(f)


def reap_stale(letter):
    """Remove namespaces and root-namespace links named sh<letter><pid>-...
    whose test process is gone (one killed with SIGKILL cannot clean up).
    Only names of that part letter, only dead PIDs: a test running beside
    this one keeps its own."""
    import re
    pat = re.compile(r"^sh%s(\d+)-" % re.escape(letter))

    def dead(name):
        m = pat.match(name)
        return m and int(m.group(1)) != os.getpid() and not os.path.exists("/proc/" + m.group(1))

    for line in _ip("netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if dead(ns):
            _ip("netns", "del", ns, check=False)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if dead(link):
                _ip("link", "del", link, check=False)


def cleanup():
    """Delete every namespace and root-namespace link this process made."""
    for ns in list(_namespaces):
        try:
            ns.delete()
        except (OSError, subprocess.SubprocessError):
            pass
    for link in reversed(_links):
        try:
            _ip("link", "del", link, check=False)
        except (OSError, subprocess.SubprocessError):
            pass
    del _links[:]


atexit.register(cleanup)


def _on_term(signum, frame):
    sys.exit(128 + signum)   # runs atexit: namespaces do not outlive the test


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _on_term)
