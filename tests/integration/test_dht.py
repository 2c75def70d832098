"""The DHT inside real daemons on loopback: a network of shoal nodes that find
each other, a download found through the DHT alone, a restart that rejoins
from the saved routing table, and a flood of junk datagrams that must not
stop a node from answering pings."""
import os
import random
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, tree_digest, wait_for, write_file  # noqa: E402,E501

N = 9  # one bootstrap node and eight that know only it
c = Checks("dht")
tmp = TestDir()
T0 = time.monotonic()


def elapsed():
    return "%.1fs" % (time.monotonic() - T0)





def dht(d):
    return d.api("GET", "/api/v1/dht")


def krpc_ping(port, src_ip="127.0.0.1", timeout=0.5, tid=b"pg"):
    """Send a BEP 5 ping (read-only, BEP 43, so we do not enter its table);
    return the raw reply or None."""
    my_id = os.urandom(20)
    msg = (b"d1:ad2:id20:" + my_id + b"e1:q4:ping2:roi1e1:t2:" + tid + b"1:y1:qe")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src_ip, 0))
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if b"1:t2:" + tid in data:
                    return data
        except socket.timeout:
            return None


def ping_answered(d, src_ip="127.0.0.1", tries=10):
    want_id = bytes.fromhex(d.api("GET", "/api/v1/status")["node"]["id"])
    for _ in range(tries):
        r = krpc_ping(d.port, src_ip)
        if r is not None:
            return b"1:y1:r" in r and b"2:id20:" + want_id in r
    return False


# ---------------------------------------------------------------- 1. a network
boot = Daemon(tmp, "dht0").start()
boot_addr = "127.0.0.1:%d" % boot.port
nodes = [boot]
for i in range(1, N):
    nodes.append(Daemon(tmp, "dht%d" % i, ["--bootstrap", boot_addr]).start())

st = boot.api("GET", "/api/v1/status")["dht"]
c.check(st.get("running") is True and st.get("port") == boot.port and "nodes" in st and
        "good_nodes" in st, "status has a running dht section on the peer port", str(st))
d1 = dht(nodes[1])
c.equal(d1["bootstrap"], [boot_addr], "GET /api/v1/dht lists the bootstrap node")
c.check(len(d1["id"]) == 40 and d1["id"] == nodes[1].api("GET", "/api/v1/status")["node"]["id"],
        "the DHT id is the node's persistent id")
for key in ("nodes", "good_nodes", "buckets", "lookups_running", "lookups_done", "keys_stored",
            "peers_stored", "malformed", "rate_limited"):
    c.check(isinstance(d1.get(key), int), "GET /api/v1/dht has %s" % key)

found = wait_for("every node to know every other", lambda: all(
    dht(d)["nodes"] >= N - 1 and dht(d)["good_nodes"] >= 1 for d in nodes), 30)
c.check(found, "all %d nodes know the other %d, each with a good node (%s)" % (N, N - 1, elapsed()),
        str([(dht(d)["good_nodes"], dht(d)["nodes"]) for d in nodes]))
c.check(dht(boot)["good_nodes"] >= N - 1, "the bootstrap node counts every node as good")

# ---------------------------------------------------------------- 2. download through the DHT
src = tmp.sub("dht-content")
write_file(os.path.join(src, "payload.bin"), os.urandom(3 * 1024 * 1024 + 4321))
write_file(os.path.join(src, "sub", "note.txt"), b"found through the DHT\n")
want = tree_digest(src)
seed = nodes[3]
r = seed.cli("share", src)
c.equal(r.returncode, 0, "a network node shares a directory")
magnet = r.stdout.split("\n")[0]
info_hash = magnet.split("urn:btmh:1220")[1][:64]
key20 = info_hash[:40]


def seed_announced():
    for s in dht(seed)["swarms"]:
        if s["key"] == key20 and s["announce_acks"] > 0:
            return s
    return None


ann = wait_for("the seed to announce", seed_announced, 30)
c.check(ann, "the seed announces the first 20 bytes of its v2 info-hash (%s)" % elapsed(),
        str(dht(seed)["swarms"]))
c.check(sum(dht(d)["peers_stored"] for d in nodes) >= 1, "other nodes store the announce")

leech = Daemon(tmp, "leecher", ["--bootstrap", "127.0.0.1:%d" % nodes[5].port]).start()
dl = tmp.sub("dht-dl")
os.makedirs(dl)
r = leech.cli("join", magnet, "--into", dl)
c.check(r.returncode == 0, "the leecher joins with the magnet alone (no --peer)", r.stderr)


def leech_done():
    sws = leech.api("GET", "/api/v1/swarms")
    lst = sws.get("swarms", sws) if isinstance(sws, dict) else sws
    for s in lst:
        if s.get("info_hash") == info_hash and s.get("state") == "seeding":
            return s
    return None


done = wait_for("the DHT-only download", leech_done, 60)
c.check(done, "the leecher completes through the DHT alone (%s)" % elapsed())
c.equal(tree_digest(os.path.join(dl, os.path.basename(src))), want,
        "the download is byte-identical")
ls = [s for s in dht(leech)["swarms"] if s["key"] == key20]
c.check(ls and ls[0]["peers_found"] >= 1, "the leecher's peers came from the DHT", str(ls))

# ---------------------------------------------------------------- 3. restart without bootstrap
again = nodes[7]
c.equal(again.stop(), 0, "a node stops cleanly")
db = sqlite3.connect(os.path.join(again.data_dir, "shoal.db"))
rows = db.execute("SELECT count(*), min(length(id)) FROM dht_nodes").fetchone()
db.close()
c.check(rows[0] >= N - 2 and rows[1] == 20, "its routing table is saved in dht_nodes", str(rows))
again.args = []  # the harness passes --bootstrap "": no bootstrap at all
again.start()
d = dht(again)
c.equal(d["bootstrap"], [], "restarted with no bootstrap list")
c.check(d["nodes_loaded"] >= N - 2, "restored %d nodes from the database" % d["nodes_loaded"])
rejoined = wait_for("the restarted node to rejoin", lambda: dht(again)["good_nodes"] >= 3, 20)
c.check(rejoined, "it rejoins from the saved table: %s good nodes (%s)" % (
    dht(again)["good_nodes"], elapsed()))

# ---------------------------------------------------------------- 4. junk datagrams
victim = nodes[1]
before = dht(victim)
rng = random.Random(5)
junk = [
    b"", b"d", b"de", b"le", b"i1e", b"d1:y1:qe", b"d1:y1:re", b"d1:y1:ee",
    b"d1:t2:aa1:y1:q1:q4:pinge",                                    # no arguments
    b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",                       # short id
    b"d1:ad2:id20:" + b"x" * 20 + b"e1:q9:find_node1:t2:aa1:y1:qe",  # no target
    b"d1:rd2:id20:" + b"y" * 20 + b"5:nodes5:abcdee1:t4:zzzz1:y1:re",  # unsolicited reply
    b"l" * 5000 + b"e" * 5000,                                      # too deep and too long
    b"d1:ad2:id20:" + b"z" * 20 + b"9:info_hash20:" + b"k" * 20 +
    b"4:porti99999e5:token4:abcde1:q13:announce_peer1:t2:aa1:y1:qe",  # bad token, bad port
    b"d1:ai-1e1:q4:ping1:t2:aa1:y1:qe", b"d1:y1:q1:y1:qe",          # wrong type, duplicate key
    b"i99999999999999999999999e", b"d2:id20:" + b"\x00" * 19 + b"e",
]
sent = 0
t_flood = time.monotonic()
socks = []
for k in range(40):  # 40 sources x 125 datagrams: each source's burst reaches the decoder
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.%d" % (10 + k), 0))
    socks.append(s)
for i in range(5000):
    if i % 3 == 0:
        pkt = junk[i % len(junk)]
    else:
        pkt = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 20, 60, 300, 1400, 1600))))
    try:
        socks[i % len(socks)].sendto(pkt, ("127.0.0.1", victim.port))
        sent += 1
    except OSError:
        pass
    if i % 500 == 499:
        time.sleep(0.01)  # let the kernel buffer drain a little: more of it reaches the node
for s in socks:
    s.close()
print("# sent %d junk datagrams in %.2fs" % (sent, time.monotonic() - t_flood))
c.check(victim.proc.poll() is None, "the node survives %d junk datagrams" % sent)
c.check(ping_answered(victim, "127.0.0.200"), "a ping from another address is answered")
c.check(ping_answered(victim, "127.0.0.10", tries=20),
        "a ping from a flooding address is answered once its rate allows")
after = dht(victim)
c.check(after["malformed"] - before["malformed"] >= 100,
        "junk was decoded and dropped as malformed (%d)" % (after["malformed"] - before["malformed"]))
c.check(after["rate_limited"] - before["rate_limited"] >= 100,
        "the per-source limit dropped the excess (%d)" % (
            after["rate_limited"] - before["rate_limited"]))
c.equal(victim.api("GET", "/api/v1/status")["dht"]["running"], True, "its API still works")
c.check(after["nodes"] >= N - 2, "its routing table survived (%d nodes)" % after["nodes"])

# ---------------------------------------------------------------- 5. UDP port taken
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squat:
    # A port free for TCP too, so it is the UDP bind that fails (an
    # ephemeral UDP port may well be taken for TCP by some connection).
    busy = Daemon(tmp, "busy")
    squat.bind(("0.0.0.0", busy.port))
    busy.start(expect_ok=False)
    try:
        rc = busy.proc.wait(timeout=15)
    except Exception:
        rc = None
    c.equal(rc, 1, "a daemon whose UDP port is taken exits 1")
    c.check("cannot bind UDP port %d" % busy.port in busy.log(), "and says why", busy.log())

# ---------------------------------------------------------------- stop everyone by PID
for d in nodes + [leech]:
    c.equal(d.stop(), 0, "%s stops cleanly" % d.name)
print("# total %s" % elapsed())
c.done()
