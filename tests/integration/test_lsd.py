#!/usr/bin/env python3
"""Local peer discovery (BEP 14, node/lsd.c) between real daemons, each in
a network namespace of its own on one bridge made here (nothing leaves
the machine): DHT off, no --peer, no tracker.

1. IPv4: a node shares, another joins by magnet; they find each other on
   239.192.152.143:6771 and the copy is byte-identical.  A listener in a
   third namespace hears a real announce (the format on the wire).
2. Hostile: garbage, a datagram one byte over the limit and one of 64 KiB,
   a malformed header, our own announce played back (own cookie), and
   1,000 packets a second from one source: counted, dropped, and a second
   transfer completes after.
3. A node with --no-lsd (the harness's default) sends nothing.  A node
   restarted with 30 swarms announces all of them at once in a few full
   packets (two hashes each: hybrids), none twice, none over 1,400 bytes.
4. IPv6 only (no IPv4 address on the veths): the same download over
   [ff15::efc0:988f]:6771.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, write_file  # noqa: E402

GROUP4, GROUP6, PORT = "239.192.152.143", "ff15::efc0:988f", 6771

if not netns.netns_available():
    netns.skip("network namespaces are not available (needs root, ip, veth)")
netns.exclusive("l")  # one run at a time owns 10.152.x and fd52::/64

c = Checks("test_lsd")
tmp = TestDir("shoal-lsd-")
T0 = time.monotonic()


def elapsed():
    return "%.1fs" % (time.monotonic() - T0)


def nsname(s):
    return netns.name(s, "l")


# A listener / sender run inside a namespace: joins the group on its one
# interface, records every datagram for `secs` seconds into a JSON file.
LISTENER = r"""
import json, socket, struct, sys, time
fam, group, ifaddr, secs, out = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, %d))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton(ifaddr))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", %d))
    idx = socket.if_nametoindex("eth0")
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", idx))
s.settimeout(0.2)
got = []
end = time.monotonic() + secs
print("listening", flush=True)
while time.monotonic() < end:
    try:
        data, src = s.recvfrom(70000)
    except socket.timeout:
        continue
    got.append([src[0], data.decode("latin-1"), time.monotonic()])
    with open(out + ".tmp", "w") as f:
        json.dump(got, f)
    import os; os.replace(out + ".tmp", out)
with open(out + ".tmp", "w") as f:
    json.dump(got, f)
import os; os.replace(out + ".tmp", out)
""" % (PORT, PORT)
listener_py = tmp.sub("listener.py")
with open(listener_py, "w") as f:
    f.write(LISTENER)


def listen(ns, fam, ifaddr, secs, out):
    p = ns.popen([sys.executable, listener_py, fam, GROUP4 if fam == "4" else GROUP6, ifaddr,
                  str(secs), out], stdout=open(out + ".log", "w"), stderr=subprocess.STDOUT)
    wait_for("the listener to start", lambda: "listening" in open(out + ".log").read(), 10)
    return p


def heard(out, times=False):
    """[(source, text)] heard, or with times=True [(source, text, when)]."""
    try:
        with open(out) as f:
            got = json.load(f)
    except (OSError, ValueError):
        return []
    return [tuple(g) if times else (g[0], g[1]) for g in got]


# Every UDP datagram leaving a namespace's eth0, seen by a packet socket
# there (whatever its destination: a group, a unicast address, any port).
SNIFFER = r"""
import json, socket, struct, sys, time
secs, out = float(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
s.settimeout(0.2)
print("listening", flush=True)
got = []
end = time.monotonic() + secs
while time.monotonic() < end:
    try:
        frame, addr = s.recvfrom(70000)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING:
        continue
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if etype == 0x0800 and len(ip) >= 28 and ip[9] == 17:
        udp = ip[(ip[0] & 15) * 4:]
        got.append([socket.inet_ntoa(ip[16:20]), struct.unpack("!H", udp[2:4])[0], udp[8:].hex()])
    elif etype == 0x86dd and len(ip) >= 48 and ip[6] == 17:
        got.append([socket.inet_ntop(socket.AF_INET6, ip[24:40]),
                    struct.unpack("!H", ip[42:44])[0], ip[48:].hex()])
with open(out, "w") as f:
    json.dump(got, f)
"""
sniffer_py = tmp.sub("sniffer.py")
with open(sniffer_py, "w") as f:
    f.write(SNIFFER)



def lsd(d):
    return d.api("GET", "/api/v1/status")["lsd"]


def swarm_state(d, info_hash):
    sws = d.api("GET", "/api/v1/swarms")
    for s in sws.get("swarms", sws) if isinstance(sws, dict) else sws:
        if s.get("info_hash") == info_hash:
            return s.get("state")
    return None


V1 = {}


def share(d, name, size):
    src = tmp.sub(name)
    write_file(os.path.join(src, "payload.bin"), os.urandom(size))
    write_file(os.path.join(src, "sub", "note.txt"), b"found on the LAN\n")
    r = d.cli("share", src)
    c.equal(r.returncode, 0, "%s shares %s" % (d.name, name))
    magnet = r.stdout.split("\n")[0]
    ih = magnet.split("urn:btmh:1220")[1][:64]
    V1[ih] = magnet.split("urn:btih:")[1][:40].lower() if "urn:btih:" in magnet else None
    wait_for("the share to seed", lambda: swarm_state(d, ih) == "seeding", 30)
    return src, magnet, ih


def download(seed, leech, name, size, what):
    src, magnet, ih = share(seed, name, size)
    dl = tmp.sub(name + "-dl-" + leech.name)
    os.makedirs(dl)
    r = leech.cli("join", magnet, "--into", dl)
    c.check(r.returncode == 0, "%s joins by magnet alone (no --peer, no tracker, no DHT)" %
            leech.name, r.stderr)
    done = wait_for(what, lambda: swarm_state(leech, ih) == "seeding", 60)
    c.check(done, "%s completes %s (%s)" % (leech.name, what, elapsed()),
            "seed: %s leech: %s" % (lsd(seed), lsd(leech)))
    c.equal(tree_digest(os.path.join(dl, os.path.basename(src))), tree_digest(src),
            "%s: the copy is byte-identical" % what)
    return ih


def unicast(ns, host):
    """Send three garbage datagrams to host:6771 from namespace ns."""
    code = r"""
import os, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"\xff" + os.urandom(99), (sys.argv[1], %d))
print("sent")
""" % PORT
    r = ns.run([sys.executable, "-c", code, host], timeout=10)
    return "sent" in r.stdout


LSD_ARGS = ["--no-dht", "--lsd"]
try:
    # ------------------------------------------------------------ 1. IPv4
    br = netns.make_bridge(nsname("br"), "10.152.1.254/24", "fd52::fe/64")
    na, nb, nx, ny, nz, nw = (netns.Netns(nsname(s)) for s in ("a", "b", "x", "y", "z", "w"))
    for ns, i in ((na, 1), (nb, 2), (nx, 3), (ny, 4), (nz, 5), (nw, 6)):
        netns.veth_pair(ns, "eth0", br, "10.152.1.%d/24" % i)
    # An interface without multicast is left alone; the minute's re-scan
    # finds it once it has multicast (checked at the end of part 3).
    nw.run("ip", "link", "set", "eth0", "multicast", "off")
    late = Daemon(tmp, "late", LSD_ARGS, netns=nw).start()
    c.equal(lsd(late)["interfaces"], 0, "an interface without multicast is not joined")
    share(late, "late-share", 3000)
    nw.run("ip", "link", "set", "eth0", "multicast", "on")
    flipped = time.monotonic()
    # Not LAN interfaces: one with public addresses only (it faces a
    # provider's network) and a point-to-point tunnel (a VPN's tun says
    # MULTICAST too), even with a private address.  The seed joins eth0 only.
    na.run("ip", "link", "add", "pub0", "type", "veth", "peer", "name", "pub1")
    na.run("ip", "addr", "add", "11.152.0.1/24", "dev", "pub0")
    na.run("ip", "link", "set", "pub0", "up")
    na.run("ip", "link", "set", "pub1", "up")
    na.run("ip", "tuntap", "add", "mode", "tun", "name", "tun0")
    na.run("ip", "link", "set", "tun0", "multicast", "on")
    na.run("ip", "addr", "add", "10.152.9.1/32", "dev", "tun0")
    na.run("ip", "link", "set", "tun0", "up")
    seed = Daemon(tmp, "seed", LSD_ARGS, netns=na).start()
    leech = Daemon(tmp, "leech", LSD_ARGS, netns=nb).start()
    joined = re.findall(r"lsd: joined \S+ on (\S+)", seed.log())
    c.check("eth0" in joined and "pub0" not in joined and "tun0" not in joined,
            "neither a public-only interface nor a tunnel is joined, eth0 is", str(joined))
    st = lsd(seed)
    c.check(st["enabled"] and st["interfaces"] == 1 and st["ipv4"],
            "LSD is on, on the one LAN interface (not loopback)", str(st))
    if6 = json.loads(na.run("ip", "-j", "-6", "addr", "show", "dev", "eth0").stdout)
    scopes = [a.get("scope") for i in if6 for a in i.get("addr_info", [])]
    c.check(scopes and all(s == "link" for s in scopes),
            "the IPv4 host's eth0 has only a link-local IPv6 address (%s)" % scopes)
    cap = tmp.sub("heard4.json")
    lp = listen(nx, "4", "10.152.1.3", 60, cap)
    ih1 = download(seed, leech, "first", 2 * 1024 * 1024 + 77, "a download found through LSD")
    # The leecher's swarm goes out on its next tick once it transfers; a
    # download quicker than that (or a slow sanitizer build) must not race it.
    wait_for("both nodes to announce",
             lambda: lsd(seed)["announces_sent"] >= 1 and lsd(leech)["announces_sent"] >= 1, 15)
    s_st, l_st = lsd(seed), lsd(leech)
    c.check(s_st["announces_sent"] >= 1 and l_st["announces_sent"] >= 1,
            "both announced (%d, %d)" % (s_st["announces_sent"], l_st["announces_sent"]))
    c.check(s_st["peers_found"] + l_st["peers_found"] >= 1,
            "a peer came from LSD (seed %d, leech %d)" % (s_st["peers_found"], l_st["peers_found"]))
    got = heard(cap)
    mine = [d for src, d in got if src == "10.152.1.1"]
    c.check(any(d.startswith("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n") and
                ("Port: %d\r\n" % seed.port) in d and ("Infohash: %s\r\n" % ih1[:40]) in d and
                d.endswith("\r\n\r\n\r\n") for d in mine),
            "a third host hears the seed's announce in BEP 14's format, with the truncated v2 hash",
            repr(got[:3]))
    cookie = None
    for d in mine:
        for line in d.split("\r\n"):
            if line.lower().startswith("cookie: "):
                cookie = line[8:]
    c.check(cookie and len(cookie) >= 8, "the announce carries a cookie (%r)" % cookie)
    v1 = V1[ih1]
    c.check(v1 is None or any(("Infohash: %s\r\n" % v1) in d for d in mine),
            "a hybrid is announced by its v1 info-hash too (%s)" % v1)

    # ------------------------------------------------------------ 2. hostile
    before = {d.name: lsd(d) for d in (seed, leech)}
    head = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
    valid = head + "Infohash: %s\r\n\r\n\r\n" % ("ab" * 20)
    just_over = (head + "X-Pad: " + "a" * (1473 - len(head) - 7 - 4 - 52) +
                 "\r\nInfohash: %s\r\n\r\n" % ("ab" * 20))
    assert len(just_over) == 1473, len(just_over)
    own = next((d for d in mine if ("cookie: %s" % cookie) in d), valid)
    hostile = [bytes(range(256)) * 2,                      # garbage
               just_over.encode(),                         # one byte over 1472
               b"B" * 65000,                               # 64 KiB-ish
               (head + "Infohash: nothex\r\n\r\n").encode(),  # malformed header
               own.encode()]                               # our own announce, played back
    flood = valid.encode()
    sender = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.152.1.3"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
pkts = [bytes.fromhex(h) for h in open(sys.argv[2]).read().split(",")]
for p in pkts:
    s.sendto(p, ("%s", %d)); time.sleep(0.05)
flood = bytes.fromhex(sys.argv[1])
t0 = time.monotonic()
for i in range(1000):
    s.sendto(flood, ("%s", %d))
    while time.monotonic() < t0 + (i + 1) / 1000.0:
        time.sleep(0.0005)
print("sent", time.monotonic() - t0)
""" % (GROUP4, PORT, GROUP4, PORT)
    pkt_file = tmp.sub("hostile.hex")
    with open(pkt_file, "w") as f:
        f.write(",".join(p.hex() for p in hostile))
    r = nx.run([sys.executable, "-c", sender, flood.hex(), pkt_file], timeout=30)
    c.check("sent" in r.stdout, "a hostile host sent its packets and 1,000 more in about a second",
            r.stdout + r.stderr)
    time.sleep(1)
    for d in (seed, leech):
        a, b = before[d.name], lsd(d)
        grew = {k: b[k] - a[k] for k in ("received", "malformed", "oversized", "own",
                                           "rate_limited", "peers_found")}
        c.check(grew["received"] >= 500, "%s received the flood (%s)" % (d.name, grew))
        c.check(grew["oversized"] == 2, "%s: both oversized datagrams refused unparsed" % d.name,
                str(grew))
        c.check(grew["malformed"] == 4, "%s: garbage, the two oversized and the bad header "
                "counted as malformed" % d.name, str(grew))
        c.check(grew["own"] == (1 if d is seed else 0),
                "%s: its own cookie dropped (the other's is just another peer)" % d.name,
                str(grew))
        # Past the source's burst (8 packets, 3 of them the hostile ones
        # above), every packet of the flood is dropped before parsing.
        c.check(grew["rate_limited"] >= grew["received"] - 2 - 10,
                "%s: the flood from one source is rate-limited" % d.name, str(grew))
        c.check(grew["peers_found"] <= 10, "%s: the flood gave the engine few peers" % d.name,
                str(grew))
        c.check(d.proc.poll() is None, "%s still runs" % d.name)
    download(seed, leech, "second", 1024 * 1024 + 5, "a download after the hostile packets")

    # A unicast datagram to port 6771 (anyone who reaches the address can
    # send one, from anywhere) is never read: the sockets are bound to the
    # groups.  Garbage, so that read it would count as malformed (the LAN's
    # own announces in the same second are well-formed).
    # (nx's bucket may still be empty after its flood: read, the datagrams
    # would count as rate_limited then, so both counters are watched.)
    st0 = lsd(seed)
    c.check(unicast(nx, "10.152.1.1"), "three unicast datagrams sent to the seed's port 6771")
    time.sleep(1)
    st1 = lsd(seed)
    c.equal(st1["malformed"] + st1["rate_limited"] - st0["malformed"] - st0["rate_limited"], 0,
            "IPv4: a unicast datagram to port 6771 is never read")

    # ------------------------------------------------------------ 3. --no-lsd sends nothing
    quiet = Daemon(tmp, "quiet", ["--no-dht"], netns=ny).start()
    c.check(not lsd(quiet)["enabled"], "--no-lsd: status says LSD is off", str(lsd(quiet)))
    r = quiet.cli("status")
    c.check("LAN" in r.stdout and "off" in r.stdout.split("LAN", 1)[1].split("\n")[0],
            "shoal status prints LSD off", r.stdout)
    cap2 = tmp.sub("heard-quiet.json")
    lp2 = listen(nx, "4", "10.152.1.3", 8, cap2)
    sniffed = tmp.sub("sniffed-quiet.json")
    sp = ny.popen([sys.executable, sniffer_py, "8", sniffed], stdout=open(sniffed + ".log", "w"),
                  stderr=subprocess.STDOUT)
    wait_for("the sniffer to start", lambda: "listening" in open(sniffed + ".log").read(), 10)
    share(quiet, "quiet-share", 4096)
    time.sleep(5)
    # The sniffer's own control: one datagram sent from the namespace.
    ny.run([sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET, "
            "socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, "
            "socket.inet_aton('10.152.1.4')); s.sendto(b'control', ('%s', %d))" % (GROUP4, PORT)])
    lp2.wait(timeout=20)
    sp.wait(timeout=20)
    from_quiet = [d for src, d in heard(cap2) if src == "10.152.1.4"]
    try:
        with open(sniffed) as f:
            udp_out = json.load(f)
    except (OSError, ValueError):
        udp_out = None
    c.check(udp_out == [[GROUP4, PORT, b"control".hex()]],
            "a node with --no-lsd sends no UDP datagram at all (8 s sniffed on its interface, a "
            "swarm seeding; only the sniffer's own control datagram seen)", repr(udp_out))
    c.equal(from_quiet, ["control"],
            "a listener on the group hears nothing from it but the control datagram")
    c.check(seed.proc.poll() is None and lsd(seed)["announces_sent"] == 2,
            "the seed sent one IPv4 packet per new swarm, none on IPv6 with only a link-local "
            "address, none every second (%d packets)" % lsd(seed)["announces_sent"])

    # 30 swarms, then a restart: all go out at once, batched.
    many = Daemon(tmp, "many", LSD_ARGS, netns=nz).start()
    keys = set()
    for i in range(30):
        d = tmp.sub("m%02d" % i)
        write_file(os.path.join(d, "f.bin"), os.urandom(1000 + i))
        r = many.cli("share", d)
        if r.returncode == 0:
            m = r.stdout.split("\n")[0]
            keys.add(m.split("urn:btmh:1220")[1][:40])
            if "urn:btih:" in m:
                keys.add(m.split("urn:btih:")[1][:40].lower())
    c.equal(len(keys), 60, "30 hybrid shares: 60 keys to announce")
    wait_for("30 swarms seeding", lambda: many.api("GET", "/api/v1/status")["swarms"]["by_state"]
             ["seeding"] == 30, 60)
    c.equal(many.stop(), 0, "the node with 30 swarms stops")
    cap3 = tmp.sub("heard-many.json")
    lp3 = listen(nx, "4", "10.152.1.3", 12, cap3)
    many.start()
    lp3.wait(timeout=30)
    pk = [d for src, d, _ in heard(cap3, True) if src == "10.152.1.5"]
    when = [t for src, _, t in heard(cap3, True) if src == "10.152.1.5"]
    gaps = [b - a for a, b in zip(when, when[1:])]
    c.check(all(g >= 0.8 for g in gaps), "never two packets within a second (gaps %s)" %
            ["%.2f" % g for g in gaps])
    hashes = [line[10:].lower() for d in pk for line in d.split("\r\n")
              if line.startswith("Infohash: ")]
    c.check(set(hashes) == keys, "after a restart every swarm is announced within 12 s "
            "(%d of %d keys)" % (len(set(hashes) & keys), len(keys)))
    c.check(len(hashes) == len(set(hashes)), "no key twice (%d sent)" % len(hashes))
    c.check(3 <= len(pk) <= 5 and max(len(d) for d in pk) <= 1400,
            "in %d packets of at most 1,400 bytes (%s)" % (len(pk), [len(d) for d in pk]))
    c.equal(many.stop(), 0, "many stops cleanly")
    joined = wait_for("the re-scan", lambda: lsd(late)["interfaces"] == 1,
                      max(1, 75 - (time.monotonic() - flipped)))
    c.check(joined, "the interface is joined by the next re-scan, %.0fs after it got multicast"
            % (time.monotonic() - flipped), str(lsd(late)))
    c.check(wait_for("late's announce", lambda: lsd(late)["announces_sent"] >= 1, 5),
            "the swarm that waited for an interface is announced then")
    c.equal(late.stop(), 0, "late stops cleanly")
    r = seed.cli("status")
    c.check("LAN" in r.stdout and "interface" in r.stdout, "shoal status prints the LSD line",
            r.stdout)
    for d in (seed, leech, quiet):
        c.equal(d.stop(), 0, "%s stops cleanly" % d.name)

    # ------------------------------------------------------------ 4. IPv6 only
    n6a, n6b = netns.Netns(nsname("6a")), netns.Netns(nsname("6b"))
    netns.veth_pair(n6a, "eth0", br, None, "fd52::11/64")
    netns.veth_pair(n6b, "eth0", br, None, "fd52::12/64")
    cap6 = tmp.sub("heard6.json")
    lp6 = listen(nx, "6", "", 40, cap6)
    seed6 = Daemon(tmp, "seed6", LSD_ARGS, netns=n6a, api_bind="fd52::11").start()
    leech6 = Daemon(tmp, "leech6", LSD_ARGS, netns=n6b, api_bind="fd52::12").start()
    st = lsd(seed6)
    c.check(st["interfaces"] == 1 and st["ipv6"], "IPv6 only: LSD joins the v6 group", str(st))
    download(seed6, leech6, "six", 1024 * 1024 + 66, "a download found over IPv6 LSD")
    st = lsd(seed6)
    c.check(st["peers_found"] + lsd(leech6)["peers_found"] >= 1, "IPv6: a peer came from LSD")
    a = lsd(seed6)["malformed"]
    c.check(unicast(n6b, "fd52::11"), "three unicast datagrams sent to the IPv6 seed's port 6771")
    time.sleep(1)
    c.equal(lsd(seed6)["malformed"] - a, 0, "IPv6: a unicast datagram to port 6771 is never read")
    six = [d for src, d in heard(cap6) if src == "fd52::11"]
    c.check(any(d.startswith("BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\n")
                for d in six), "a third host hears the IPv6 announce", repr(heard(cap6)[:3]))
    for d in (seed6, leech6):
        c.equal(d.stop(), 0, "%s stops cleanly" % d.name)
finally:
    netns.cleanup()
c.done()
