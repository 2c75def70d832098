"""netlab: emulated links between network namespaces for the benchmarks (stdlib only).

A `Lab` of H hosts, each in a network namespace of its own:

  peer link   one TAP per host (10.153.0.<i+1>/24), all of them ports of one
              `bench/linkemu` process in the root namespace: an Ethernet
              switch that holds every frame a host sends for that host's
              one-way delay and drops it with that host's loss probability
              (this kernel has no netem).  Rate shaping is tc on the TAP
              inside the namespace: the TAP's egress is the host's uplink
              (`shape`, tbf or htb), an ingress policer its downlink.
  management  one veth per host (10.153.<M>.<i+1>/24) on a bridge in the root
              namespace (10.153.<M>.254), no delay, no shaping: the benchmark
              reaches the daemons' APIs and nginx's readiness through it, so
              that traffic is neither shaped nor counted on the peer link.

Nothing is routed anywhere else: the namespaces have no default route, and the
root namespace only holds the management bridge.  Names start with
"shb<pid>" (bridge shb<pid>br, namespaces shb<pid>h<i>, TAPs shb<pid>t<i>,
veths shb<pid>m<i>), so two runs never collide; `delete()` removes all of it
and is registered with atexit, so a failing or interrupted run removes it too.
"""
import atexit
import json
import os
import select
import shutil
import subprocess
import time

PEER_NET = "10.153.0"


def netns_available():
    """(True, None) when this process can make namespaces, TAPs and qdiscs; else (False, why)."""
    if os.geteuid() != 0:
        return False, "needs root (ip netns, /dev/net/tun, tc)"
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            return False, "%s not found (apt-get install -y iproute2)" % tool
    if not os.path.exists("/dev/net/tun"):
        return False, "/dev/net/tun missing"
    name = "shb%dprobe" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return False, "ip netns add: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True, None


def run(cmd, check=True, timeout=30):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-400:]))
    return r


class Lab:
    """H hosts on one emulated switch; host i has delays_ms[i] and losses_pct[i]."""

    def __init__(self, linkemu, delays_ms, losses_pct, queue=1024, seed=1, tag=""):
        self.linkemu = linkemu
        self.delays = list(delays_ms)
        self.losses = list(losses_pct)
        self.queue = queue
        self.seed = seed
        pid = os.getpid()
        self.base = "shb%d%s" % (pid, tag)
        self.mgmt_net = "10.153.%d" % (1 + pid % 250 + (1 if tag else 0))
        self.bridge = self.base + "br"
        self.hosts = len(self.delays)
        self.ns = ["%sh%d" % (self.base, i) for i in range(self.hosts)]
        self.taps = ["%st%d" % (self.base, i) for i in range(self.hosts)]
        self.emu = None
        self._made_ns = []
        self._made_bridge = False
        atexit.register(self.delete)

    # ---- addresses and commands
    def peer_addr(self, i):
        return "%s.%d" % (PEER_NET, i + 1)

    def mgmt_addr(self, i):
        return "%s.%d" % (self.mgmt_net, i + 1)

    def prefix(self, i):
        """The command prefix that runs a program in host i's namespace."""
        return ["ip", "netns", "exec", self.ns[i]]

    def nsrun(self, i, cmd, check=True):
        return run(self.prefix(i) + cmd, check=check)

    # ---- life cycle
    def setup(self):
        for n in self.ns + [self.bridge]:
            if len(n) > 15:
                raise RuntimeError("interface name too long: %s" % n)
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._made_bridge = True
        run(["ip", "addr", "add", self.mgmt_net + ".254/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.hosts):
            run(["ip", "netns", "add", self.ns[i]])
            self._made_ns.append(self.ns[i])
            self.nsrun(i, ["ip", "link", "set", "lo", "up"])
            # IPv4 only: no router solicitations, MLD or DAD on the measured link.
            self.nsrun(i, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            self.nsrun(i, ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])
            veth = "%sm%d" % (self.base, i)
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "mg0",
                 "netns", self.ns[i]])
            run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            self.nsrun(i, ["ip", "addr", "add", self.mgmt_addr(i) + "/24", "dev", "mg0"])
            self.nsrun(i, ["ip", "link", "set", "mg0", "up"])
        args = [self.linkemu, "--queue", str(self.queue), "--seed", str(self.seed)]
        args += ["%s:%g:%g" % (self.taps[i], self.delays[i], self.losses[i])
                 for i in range(self.hosts)]
        self.emu = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True, bufsize=1)
        line = self._emu_line(10)
        if not line.startswith("READY"):
            raise RuntimeError("linkemu: %r %s" % (line, self.emu.stderr.read()[-400:]
                                                   if self.emu.poll() is not None else ""))
        for i in range(self.hosts):
            # The TAP moves; linkemu's descriptor stays valid across the move.
            run(["ip", "link", "set", self.taps[i], "netns", self.ns[i]])
            self.nsrun(i, ["ip", "addr", "add", self.peer_addr(i) + "/24", "dev", self.taps[i]])
            self.nsrun(i, ["ip", "link", "set", self.taps[i], "up"])
        return self

    def _emu_line(self, timeout):
        r, _, _ = select.select([self.emu.stdout], [], [], timeout)
        return self.emu.stdout.readline() if r else ""

    def emu_stats(self):
        """linkemu's counters now (SIGUSR1), as {tap name: {...}}."""
        if not self.emu or self.emu.poll() is not None:
            return {}
        self.emu.send_signal(10)  # SIGUSR1
        line = self._emu_line(5)
        try:
            doc = json.loads(line)
        except ValueError:
            return {}
        return {p["name"]: p for p in doc.get("ports", [])}

    def _drain(self, timeout):
        """Wait (at most `timeout` s) until no host has a TCP connection left
        (TIME-WAIT aside, which the kernel drops with the namespace):
        a connection still closing when linkemu stops would retransmit its FIN
        into a gone link for minutes, and hold its namespace (and the veth
        on the bridge's side) alive as long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for i in range(len(self._made_ns)):
                r = self.nsrun(i, ["ss", "-Htan"], check=False)
                if any(line.split()[0] not in ("LISTEN", "TIME-WAIT")
                       for line in r.stdout.splitlines() if line.strip()):
                    busy = True
                    break
            if not busy:
                return True
            time.sleep(0.1)
        return False

    def delete(self):
        """Stop linkemu (its TAPs go with it) once the hosts' connections have
        closed, remove the namespaces and the bridge."""
        if self.emu is not None and self.emu.poll() is None and self._made_ns:
            self._drain(5.0)
        if self.emu is not None:
            if self.emu.poll() is None:
                self.emu.terminate()
                try:
                    self.emu.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.emu.kill()
                    self.emu.wait(timeout=5)
            self.emu = None
        for n in self._made_ns:
            run(["ip", "netns", "del", n], check=False)
        self._made_ns = []
        if self._made_bridge:
            run(["ip", "link", "del", self.bridge], check=False)
            self._made_bridge = False

    # ---- shaping and counters
    def shape(self, i, up_Bps, down_Bps=None, kind="tbf"):
        """Host i's uplink at up_Bps (tc on the TAP's egress: tbf, or htb with
        one class), its downlink at down_Bps (the TAP's ingress redirected to
        an ifb device, shaped the same way on the ifb's egress: this kernel
        has no police action).  Bursts are 10 ms of the rate, at least two
        full frames; tbf queues at most 100 ms of it (a home router's
        buffer)."""
        tap = self.taps[i]
        self._egress(i, tap, up_Bps, kind)
        if down_Bps:
            self.nsrun(i, ["ip", "link", "add", "dl0", "type", "ifb"])
            self.nsrun(i, ["ip", "link", "set", "dl0", "up"])
            self._egress(i, "dl0", down_Bps, kind)
            self.nsrun(i, ["tc", "qdisc", "add", "dev", tap, "handle", "ffff:", "ingress"])
            self.nsrun(i, ["tc", "filter", "add", "dev", tap, "parent", "ffff:", "protocol",
                           "all", "prio", "1", "u32", "match", "u32", "0", "0",
                           "action", "mirred", "egress", "redirect", "dev", "dl0"])

    def _egress(self, i, dev, rate, kind):
        burst = max(3028, rate // 100)
        if kind == "tbf":
            self.nsrun(i, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                           "%dbps" % rate, "burst", str(burst), "latency", "100ms"])
        elif kind == "htb":
            self.nsrun(i, ["tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb",
                           "default", "10"])
            self.nsrun(i, ["tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10",
                           "htb", "rate", "%dbps" % rate, "ceil", "%dbps" % rate,
                           "burst", str(burst), "cburst", str(burst)])
        else:
            raise ValueError("shaper %r (tbf or htb)" % kind)

    def counters(self, i):
        """Host i's peer link as the kernel counts it: /proc/net/dev of its TAP
        (tx = what the host put on its uplink, Ethernet headers included) and
        the drops of its uplink shaper (tc -s)."""
        tap = self.taps[i]
        out = self.nsrun(i, ["cat", "/proc/net/dev"]).stdout
        c = {}
        for line in out.splitlines():
            if ":" in line and line.split(":", 1)[0].strip() == tap:
                f = line.split(":", 1)[1].split()
                c = {"rx_bytes": int(f[0]), "rx_packets": int(f[1]), "rx_drop": int(f[3]),
                     "tx_bytes": int(f[8]), "tx_packets": int(f[9]), "tx_drop": int(f[11])}
        q = self.nsrun(i, ["tc", "-s", "qdisc", "show", "dev", tap], check=False).stdout
        drops = 0
        for line in q.splitlines():
            line = line.strip()
            if line.startswith("Sent ") and "dropped" in line:
                try:
                    drops += int(line.split("dropped", 1)[1].split(",")[0].strip())
                except ValueError:
                    pass
        c["shaper_drops"] = drops
        return c


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def linkemu_ceiling(linkemu, seconds=1.0, payload=1400):
    """linkemu's ceiling in frames/s: a UDP flood from one host to another
    (no delay, no loss, no shaping) for `seconds`; counts the frames it
    delivered.  The flood is faster than the switch, so its rate is the
    switch's.  Returns a dict (frames_per_s, mbps of frame bytes, ...)."""
    lab = Lab(linkemu, [0, 0], [0, 0], queue=1024, tag="c")
    try:
        lab.setup()
        flood = ("import socket,time\n"
                 "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 "b=bytes(%d); end=time.monotonic()+%f; n=0\n"
                 "while time.monotonic()<end:\n"
                 "  for _ in range(64):\n"
                 "    try: s.sendto(b,('%s',9)); n+=1\n"
                 "    except OSError: pass\n"
                 "print(n)\n") % (payload, seconds, lab.peer_addr(1))
        _probe(lab, 0, 1, 1, 1.0)   # ARP first, so the count is switching only
        before = lab.emu_stats().get(lab.taps[0], {})
        t0 = time.monotonic()
        r = lab.nsrun(0, ["/usr/bin/python3", "-c", flood])
        wall = time.monotonic() - t0
        time.sleep(0.1)
        after = lab.emu_stats().get(lab.taps[0], {})
        sent = int(r.stdout.strip() or 0)
        delivered = after.get("delivered", 0) - before.get("delivered", 0)
        rx = after.get("rx_frames", 0) - before.get("rx_frames", 0)
        frame = payload + 42
        return {"frames_per_s": delivered / seconds, "mbps": delivered * frame / seconds / 1e6,
                "seconds": wall, "sent_by_flood": sent, "read_by_linkemu": rx,
                "delivered": delivered, "frame_bytes": frame,
                "queue_drops": after.get("queue_drops", 0) - before.get("queue_drops", 0)}
    finally:
        lab.delete()


_ECHO = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7))
s.settimeout(float(sys.argv[1]))
try:
    while True:
        b, a = s.recvfrom(64)
        s.sendto(b, a)
except socket.timeout:
    pass
"""

_PROBE = """import socket, sys, time
dst, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(wait)
rtts = []
for k in range(count):
    t = time.monotonic()
    s.sendto(b"%08d" % k, (dst, 7))
    try:
        while True:
            b, _ = s.recvfrom(64)
            if b == b"%08d" % k:
                rtts.append((time.monotonic() - t) * 1000.0)
                break
    except socket.timeout:
        pass
print(count, len(rtts), min(rtts) if rtts else -1)
"""


def _probe(lab, src, dst, count, wait):
    """(sent, answered, min round trip in ms or None): UDP probes from host src
    to an echo on host dst, one at a time (no ping on this machine)."""
    echo = subprocess.Popen(lab.prefix(dst) + ["/usr/bin/python3", "-c", _ECHO,
                                               str(count * wait + 5)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        r = lab.nsrun(src, ["/usr/bin/python3", "-c", _PROBE, lab.peer_addr(dst), str(count),
                            str(wait)])
        sent, got, rtt = r.stdout.split()
        return int(sent), int(got), (float(rtt) if float(rtt) >= 0 else None)
    finally:
        echo.kill()
        echo.wait(timeout=5)


def linkemu_check(linkemu):
    """linkemu does what it says: the round trip between a host with 10 ms
    and one with 30 ms is 40 ms; 20 % loss on one side loses about 20 % of
    the probes (UDP echo, one at a time).  Returns (ok, details)."""
    out = {}
    lab = Lab(linkemu, [10, 30], [0, 0], tag="c")
    try:
        lab.setup()
        _probe(lab, 0, 1, 1, 1.0)                # ARP
        sent, recv, rtt = _probe(lab, 0, 1, 10, 1.0)
        out["rtt_ms"] = {"want": 40.0, "min_measured": rtt, "sent": sent, "received": recv}
        ok = rtt is not None and 40.0 <= rtt <= 46.0 and recv == sent
    finally:
        lab.delete()
    lab = Lab(linkemu, [0, 0], [20, 0], tag="c", seed=7)
    try:
        lab.setup()
        _probe(lab, 1, 0, 3, 0.2)                # ARP (from the lossless side)
        sent, recv, _ = _probe(lab, 0, 1, 400, 0.05)
        lost = 100.0 * (sent - recv) / sent if sent else None
        out["loss_pct"] = {"want": 20.0, "measured": lost, "sent": sent}
        # 400 draws at p = 0.2: sd 2 %; 12..28 is four of them.
        ok = ok and lost is not None and 12.0 <= lost <= 28.0
    finally:
        lab.delete()
    return ok, out
