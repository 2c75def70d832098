"""Port mapping through a real router, in network namespaces (nothing leaves the machine).

    root ns:  bridge shpN-bl 10.151.1.254 (LAN)    bridge shpN-bw 10.151.2.254 (WAN)
    router:   eth0 10.151.1.1 on the LAN, eth1 10.151.2.1 on the WAN, forwarding,
              nftables masquerade, a real miniupnpd (nftables flavour)
    lan:      10.151.1.2, default route via the router: the shoal node that maps
    lan2:     10.151.1.3: a second LAN node (the hostile cases' transfer)
    wan:      10.151.2.2, no route beyond its link: the outside peer

miniupnpd refuses every mapping when its external address is private or
reserved (10/8, 192.0.2/24, 203.0.113/24, 198.18/15 all are); its `ext_ip`
is set to EXT_IP, a public-looking address that exists nowhere here (no
namespace has a route towards it), while its WAN interface keeps 10.151.2.1,
where the outside peer connects.

1. UPnP (miniupnpd with NAT-PMP off): the node maps TCP and UDP of its peer
   port, status and `shoal status` say so, the outside peer downloads a share
   through the router's WAN address and mapped port, and the mapping is gone
   (miniupnpd's nftables rules, `upnpc -l`) once the node stopped.
2. NAT-PMP (miniupnpd with UPnP off): the same.
3. A router that goes dark while mapped: the node still stops within a bound.
4. Hostile routers (a python fake in the router namespace): SSDP pointing at a
   description that is garbage, one that is huge, a valid one whose SOAP
   answers are garbage and huge, a NAT-PMP responder sending garbage, and a
   router that never answers: the node keeps working (API, a LAN transfer)
   and its status says why it is not mapped.

Run as the fake router: test_portmap.py --fake-router MODE (inside the router ns).
"""
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

EXT_IP = "11.151.2.1"
LAN_GW, LAN_IP, LAN2_IP, WAN_GW, WAN_IP = "10.151.1.1", "10.151.1.2", "10.151.1.3", "10.151.2.1", "10.151.2.2"
FAKE_HTTP_PORT = 5000


# ---------------------------------------------------------------- fake router
def fake_router(mode):
    """SSDP, HTTP (description and SOAP) and NAT-PMP, each answering badly."""
    huge = 12 * 1024 * 1024
    desc = ("<?xml version=\"1.0\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
            "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
            "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
            "<friendlyName>fake</friendlyName><UDN>uuid:fake</UDN><deviceList><device>"
            "<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>"
            "<serviceList><service>"
            "<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
            "<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>"
            "<controlURL>/ctl-cif</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL>"
            "</service></serviceList><deviceList><device>"
            "<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>"
            "<serviceList><service>"
            "<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
            "<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>"
            "<controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL>"
            "</service></serviceList></device></deviceList></device></deviceList></device></root>")

    def body_for(path):
        if mode == "garbage-desc":
            return os.urandom(65536)
        if mode == "huge-desc":
            return b"<?xml version=\"1.0\"?><root>" + b"<a>" * (huge // 3)
        if path.startswith("/ctl"):  # soap: garbage, then huge
            return b"\x00\xff<s:Envelope><<<" + os.urandom(4096) + b"x" * huge
        return desc.encode()

    def http_conn(conn):
        conn.settimeout(10)
        try:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode(errors="replace") if b" " in data else "/"
            body = body_for(path)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        finally:
            conn.close()

    def http_server():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LAN_GW, FAKE_HTTP_PORT))
        s.listen(16)
        while True:
            conn, _ = s.accept()
            threading.Thread(target=http_conn, args=(conn,), daemon=True).start()

    def ssdp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 1900))
        mreq = socket.inet_aton("239.255.255.250") + socket.inet_aton(LAN_GW)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        while True:
            data, src = s.recvfrom(4096)
            if not data.startswith(b"M-SEARCH"):
                continue
            st = b"urn:schemas-upnp-org:device:InternetGatewayDevice:1"
            for line in data.split(b"\r\n"):
                if line.lower().startswith(b"st:"):
                    st = line[3:].strip()
            s.sendto(b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + st +
                     b"\r\nUSN: uuid:fake::" + st + b"\r\nEXT:\r\nSERVER: fake/1 UPnP/1.1\r\n"
                     b"LOCATION: http://%s:%d/rootDesc.xml\r\n\r\n" % (LAN_GW.encode(), FAKE_HTTP_PORT),
                     src)

    def natpmp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LAN_GW, 5351))
        n = 0
        while True:
            data, src = s.recvfrom(1024)
            n += 1
            if mode in ("cgnat", "zero-lease") and len(data) >= 2 and data[0] == 0:
                # Well-formed answers: a public address from the shared
                # 100.64/10 space (this router is behind another NAT), or
                # a mapping granted for 0 s (maps nothing).
                epoch = struct.pack(">I", n)
                if data[1] == 0:
                    s.sendto(b"\x00\x80\x00\x00" + epoch + socket.inet_aton("100.64.9.9"), src)
                elif data[1] in (1, 2) and len(data) >= 12:
                    priv, pub, life = struct.unpack(">HHI", data[4:12])
                    if mode == "zero-lease":
                        life = 0
                    s.sendto(bytes([0, 128 + data[1], 0, 0]) + epoch +
                             struct.pack(">HHI", priv, pub or priv, life), src)
                continue
            junk = [os.urandom(random.randint(0, 64)),             # noise
                    b"\x01" + os.urandom(15),                       # wrong version
                    b"\x00" + bytes([128 + (data[1] if len(data) > 1 else 0)]) + b"\x00",  # short
                    b"\x00\x80\x00\x03" + os.urandom(8)]            # an error code
            for j in junk:
                s.sendto(j, src)

    threading.Thread(target=http_server, daemon=True).start()
    threading.Thread(target=ssdp, daemon=True).start()
    threading.Thread(target=natpmp, daemon=True).start()
    time.sleep(600)  # the test stops us by PID long before


if len(sys.argv) >= 3 and sys.argv[1] == "--fake-router":
    fake_router(sys.argv[2])
    sys.exit(0)


# ---------------------------------------------------------------- the test
import netns as N  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, write_file  # noqa: E402

if not N.netns_available():
    N.skip("network namespaces are not available (not root, or no veth/bridge support)")
for tool in ("miniupnpd", "upnpc", "nft"):
    if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
        N.skip("%s is not installed (scripts/deps.sh installs it)" % tool)

N.exclusive("p")   # one run at a time owns 10.151.x
N.reap_stale("p")  # left by an earlier run that was killed with SIGKILL
c = Checks("portmap")
tmp = TestDir("shoal-portmap-")

br_lan = N.make_bridge(N.name("bl"), "10.151.1.254/24")
br_wan = N.make_bridge(N.name("bw"), "10.151.2.254/24")
router, lan, lan2, wan = (N.Netns(N.name(x)) for x in ("r", "lan", "lan2", "wan"))
N.veth_pair(router, "eth0", br_lan, LAN_GW + "/24")
N.veth_pair(router, "eth1", br_wan, WAN_GW + "/24")
N.veth_pair(lan, "eth0", br_lan, LAN_IP + "/24")
N.veth_pair(lan2, "eth0", br_lan, LAN2_IP + "/24")
N.veth_pair(wan, "eth0", br_wan, WAN_IP + "/24")
for ns in (lan, lan2):
    ns.run("ip", "route", "add", "default", "via", LAN_GW)
router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")

ROUTER_NFT = """
table inet filter {
  chain miniupnpd {
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "eth0" oifname "eth1" accept
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "eth1" masquerade
  }
}
"""


def router_reset():
    router.run("nft", "flush", "ruleset")
    nft = tmp.sub("router.nft")
    with open(nft, "w") as f:
        f.write(ROUTER_NFT)
    router.run("nft", "-f", nft)


def start_miniupnpd(upnp, natpmp, tag):
    router_reset()
    conf = tmp.sub("miniupnpd-%s.conf" % tag)
    with open(conf, "w") as f:
        f.write("ext_ifname=eth1\nlistening_ip=eth0\next_ip=%s\n"
                "enable_upnp=%s\nenable_natpmp=%s\nsecure_mode=yes\nsystem_uptime=yes\n"
                "min_lifetime=2\n"
                "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\n"
                "allow 1024-65535 10.151.1.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
                % (EXT_IP, "yes" if upnp else "no", "yes" if natpmp else "no"))
    log = open(tmp.sub("miniupnpd-%s.log" % tag), "w")
    p = router.popen(["miniupnpd", "-d", "-f", conf, "-P", tmp.sub("miniupnpd-%s.pid" % tag)],
                     stdout=log, stderr=subprocess.STDOUT)
    log.close()
    # Ready when a client on the LAN gets an answer (SSDP joined, HTTP or
    # NAT-PMP listening): a node started earlier would fail its first
    # attempt and back off 30 s.
    probe = ["upnpc", "-s"] if upnp else ["natpmpc"]
    want = "ExternalIPAddress = " if upnp else "Public IP address : "
    wait_for("miniupnpd to answer", lambda: p.poll() is None and want in lan.run(
        probe, check=False, timeout=20).stdout, 30, interval=0.3)
    return p


def stop_proc(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def dnat_rules(port):
    """miniupnpd's DNAT rules towards the LAN node's `port`, as nft prints them."""
    out = router.run("nft", "list", "ruleset").stdout
    return [line.strip() for line in out.splitlines()
            if "dnat" in line and "%s:%d" % (LAN_IP, port) in line]


def reach(d):
    return d.api("GET", "/api/v1/status").get("reachability") or {}


rnd = random.Random(15)
src = tmp.sub("share")
write_file(os.path.join(src, "big.bin"), bytes(rnd.getrandbits(8) for _ in range(3 * 1024 * 1024 + 17)))
write_file(os.path.join(src, "small.txt"), b"through the router\n" * 50)
want = tree_digest(src)


def share(seed):
    r = seed.cli("share", src)
    if not c.equal(r.returncode, 0, "%s shares the folder" % seed.name):
        print(r.stdout, r.stderr)
    return r.stdout.split("\n")[0]


def download(leech, magnet, peer, what):
    out = tmp.sub("out-" + leech.name)
    os.makedirs(out, exist_ok=True)
    r = leech.cli("join", magnet, "--into", out, "--peer", peer, "--wait", timeout=90)
    ok = c.equal(r.returncode, 0, "%s: the download completes" % what)
    if not ok:
        print("#", r.stdout[-500:], r.stderr[-500:])
    got = tree_digest(os.path.join(out, "share")) if ok else {}
    c.equal(got, want, "%s: byte-identical" % what)


def mapped_case(tag, upnp, natpmp, method, label, lease=None):
    """lease: ask for leases that short (the SHOAL_TEST_PORTMAP_LEASE knob) and
    check they are renewed at half-life."""
    mu = start_miniupnpd(upnp, natpmp, tag)
    env = {"SHOAL_TEST_PORTMAP_LEASE": str(lease)} if lease else None
    seed = Daemon(tmp, "seed-" + tag, args=["--port-mapping", "--no-dht"], netns=lan,
                  env=env).start()
    # 45 s: one retry (30 s backoff) if the first attempt lost a packet on a busy machine.
    st = wait_for("%s mapping" % method, lambda: reach(seed).get("method") == method, 45)
    r = reach(seed)
    c.check(st, "%s: the node maps its port (method %s)" % (label, method), "(status %r)" % r)
    c.equal(r.get("mapped_port"), seed.port, "%s: the TCP port is mapped to itself" % label)
    c.equal(r.get("external_addr"), EXT_IP, "%s: the external address is the router's word" % label)
    c.equal(r.get("external_addr_source"), "router", "%s: ... and says it is the router's" % label)
    lo, hi = (0, lease) if lease else (1700, 3600)
    c.check(isinstance(r.get("lease_expires_in"), int) and lo <= r["lease_expires_in"] <= hi,
            "%s: a lease of up to %d s" % (label, hi), "(%r)" % r.get("lease_expires_in"))
    if lease:
        n0 = r.get("attempts", 0)
        time.sleep(lease * 1.3)
        r = reach(seed)
        c.check(r.get("attempts", 0) >= n0 + 2 and r.get("method") == method,
                "%s: the %d s lease is renewed at half-life, still mapped" % (label, lease),
                "(attempts %r -> %r, %r)" % (n0, r.get("attempts"), r))
        c.check(len(dnat_rules(seed.port)) >= 2, "%s: ... and the router still holds it" % label)
    c.equal(r.get("last_error"), None, "%s: no error" % label)
    rules = dnat_rules(seed.port)
    c.check(len(rules) >= 2, "%s: the router holds DNAT rules for TCP and UDP" % label, "(%r)" % rules)
    if upnp:
        lst = lan.run("upnpc", "-l", check=False).stdout
        c.check(" %d->%s:%d " % (seed.port, LAN_IP, seed.port) in lst,
                "%s: upnpc -l lists the mapping" % label, lst[-400:])
    line = [ln for ln in seed.cli("status").stdout.splitlines() if ln.startswith("reach")]
    c.check(line and "reachable: %s:%d via %s" % (EXT_IP, seed.port, label) in line[0],
            "%s: shoal status prints the mapping" % label, "(%r)" % line)
    magnet = share(seed)
    leech = Daemon(tmp, "wan-" + tag, args=["--no-dht"], netns=wan).start()
    download(leech, magnet, "%s:%d" % (WAN_GW, r.get("mapped_port") or seed.port),
             "%s: a WAN peer through the router's mapped port" % label)
    r = reach(seed)
    c.check(r.get("peer_votes", 0) >= 1, "%s: the WAN peer's BEP 10 yourip was counted" % label,
            "(%r)" % r)
    c.equal(r.get("external_addr"), EXT_IP, "%s: ... and the router's word still wins" % label)
    c.equal(leech.stop(), 0, "%s: the WAN peer stops cleanly" % label)
    t0 = time.monotonic()
    c.equal(seed.stop(), 0, "%s: the node stops cleanly" % label)
    c.check(time.monotonic() - t0 < 5, "%s: ... within 5 s" % label)
    c.equal(dnat_rules(seed.port), [], "%s: the router's rules are gone after the stop" % label)
    if upnp:
        lst = lan.run("upnpc", "-l", check=False).stdout
        c.check("%s:%d" % (LAN_IP, seed.port) not in lst, "%s: upnpc -l no longer lists it" % label,
                lst[-300:])
    stop_proc(mu)


mapped_case("upnp", True, False, "upnp", "UPnP")
mapped_case("natpmp", False, True, "natpmp", "NAT-PMP", lease=6)

# --- 3. the router goes dark while we hold a mapping ------------------------
mu = start_miniupnpd(True, False, "dark")
seed = Daemon(tmp, "seed-dark", args=["--port-mapping", "--no-dht"], netns=lan).start()
c.check(wait_for("upnp mapping", lambda: reach(seed).get("method") == "upnp", 45),
        "dark router: mapped first")
router.run("nft", "add", "table", "inet", "dark")
router.run("nft", "add", "chain", "inet", "dark", "in",
           "{ type filter hook input priority -10; policy drop; }")
t0 = time.monotonic()
rc = seed.stop(timeout=20)
took = time.monotonic() - t0
c.equal(rc, 0, "dark router: the node stops cleanly")
c.check(took < 4.5, "dark router: shutdown bounded (removal given up after ~2 s)", "(%.1f s)" % took)
c.check("did not answer the removal" in seed.log() or took < 2.5,
        "dark router: the log says the leases were left to expire")
stop_proc(mu)
router.run("nft", "delete", "table", "inet", "dark")

# --- 4. hostile and silent routers ------------------------------------------
lan_seed = Daemon(tmp, "lan-seed", args=["--no-dht"], netns=lan2).start()
lan_magnet = share(lan_seed)
cases = [
    ("garbage-desc", "UPnP"),        # SSDP answers; the description is noise
    ("huge-desc", "UPnP"),           # ... 12 MiB of it
    ("soap", "UPnP TCP mapping"),    # a valid IGD whose SOAP answers are noise, 12 MiB
    ("silent", "no answer"),         # nothing answers SSDP; NAT-PMP dropped
    ("zero-lease", "maps nothing usable"),  # NAT-PMP grants every mapping for 0 s
]
for mode, hint in cases:
    router_reset()
    fake = None
    if mode == "silent":
        router.run("nft", "add", "table", "inet", "silent")
        router.run("nft", "add", "chain", "inet", "silent", "in",
                   "{ type filter hook input priority -10; policy accept; }")
        router.run("nft", "add", "rule", "inet", "silent", "in", "udp", "dport", "5351", "drop")
    else:
        flog = open(tmp.sub("fake-%s.log" % mode), "w")
        fake = router.popen([sys.executable, os.path.abspath(__file__), "--fake-router", mode],
                            stdout=flog, stderr=subprocess.STDOUT)
        flog.close()
        time.sleep(0.5)
    node = Daemon(tmp, "node-" + mode, args=["--port-mapping", "--no-dht"], netns=lan).start()
    t0 = time.monotonic()
    st = wait_for("a first attempt", lambda: (reach(node).get("attempts") or 0) >= 1, 60)
    r = reach(node)
    c.check(st, "%s: the first attempt ends" % mode, "(%r)" % r)
    c.equal(r.get("method"), "none", "%s: not mapped" % mode)
    why = r.get("last_error") or ""
    c.check(hint in why, "%s: status says why (%r)" % (mode, why))
    c.equal(r.get("mapped_port"), None, "%s: no mapped port claimed" % mode)
    line = [ln for ln in node.cli("status").stdout.splitlines() if ln.startswith("reach")]
    c.check(line and "not mapped: " in line[0], "%s: shoal status says not mapped" % mode,
            "(%r)" % line)
    t1 = time.monotonic()
    node.api("GET", "/api/v1/status")
    c.check(time.monotonic() - t1 < 1.0, "%s: the API answers at once" % mode)
    download(node, lan_magnet, "%s:%d" % (LAN2_IP, lan_seed.port), "%s: a LAN transfer" % mode)
    r = reach(node)
    c.check(r.get("peer_votes", 0) >= 1 and r.get("external_addr") is None,
            "%s: the LAN peer's yourip is counted, not taken for an external address" % mode,
            "(%r)" % r)
    t0 = time.monotonic()
    c.equal(node.stop(), 0, "%s: the node stops cleanly" % mode)
    c.check(time.monotonic() - t0 < 4.5, "%s: ... within a bound" % mode)
    if fake:
        stop_proc(fake)
    else:
        router.run("nft", "delete", "table", "inet", "silent")

# --- 5. a router behind another NAT: NAT-PMP maps, but its public address is
# 100.64.9.9 (carrier-grade NAT): not our external address, and shoal status
# does not call the node reachable.
router_reset()
flog = open(tmp.sub("fake-cgnat.log"), "w")
fake = router.popen([sys.executable, os.path.abspath(__file__), "--fake-router", "cgnat"],
                    stdout=flog, stderr=subprocess.STDOUT)
flog.close()
time.sleep(0.5)
node = Daemon(tmp, "node-cgnat", args=["--port-mapping", "--no-dht"], netns=lan).start()
wait_for("a mapping", lambda: reach(node).get("method") == "natpmp", 30)
r = reach(node)
c.equal(r.get("method"), "natpmp", "cgnat: the router's NAT-PMP maps the port")
c.equal(r.get("router_addr"), "100.64.9.9", "cgnat: router_addr shows what the router said")
c.equal((r.get("external_addr"), r.get("external_addr_source")), (None, None),
        "cgnat: a shared (100.64/10) address is not taken for our external address")
line = [ln for ln in node.cli("status").stdout.splitlines() if ln.startswith("reach")]
c.check(line and "behind another NAT" in line[0] and "reachable:" not in line[0],
        "cgnat: shoal status says the mapping does not make us reachable", "(%r)" % line)
c.equal(node.stop(), 0, "cgnat: the node stops cleanly")
stop_proc(fake)
c.equal(lan_seed.stop(), 0, "the LAN seed stops cleanly")

# Nothing of ours runs in the root namespace.
pids = subprocess.run(["pgrep", "-x", "miniupnpd"], capture_output=True, text=True).stdout.split()
stray = [p for p in pids if os.path.exists("/proc/%s/ns/net" % p)
         and os.readlink("/proc/%s/ns/net" % p) == os.readlink("/proc/self/ns/net")]
c.equal(stray, [], "no miniupnpd runs in the root namespace")
c.done()
