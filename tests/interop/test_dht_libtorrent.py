"""shoal's DHT and libtorrent's DHT in one loopback network.

Two libtorrent sessions and three shoal daemons bootstrap from one shoal
node.  (1) A libtorrent session announces the first 20 bytes of a v2
info-hash (dht_announce) and seeds that torrent; a shoal daemon that joins
the magnet with no --peer finds it through the DHT (and downloads from it).
(2) A shoal daemon shares a directory and announces; libtorrent's
dht_get_peers finds the shoal seed's address.  Exit 77 only when
python3-libtorrent cannot be imported."""
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from shoal_harness import (Checks, Daemon, TestDir, free_port, tree_digest, wait_for,  # noqa: E402
                           write_file)

try:
    import libtorrent as lt
except ImportError as e:
    print("SKIP: python3-libtorrent cannot be imported (%s); run with /usr/bin/python3" % e)
    sys.exit(77)

c = Checks("dht-libtorrent")
tmp = TestDir()
T0 = time.monotonic()


def elapsed():
    return "%.1fs" % (time.monotonic() - T0)





def dht(d):
    return d.api("GET", "/api/v1/dht")


def lt_session(port, bootstrap):
    """A libtorrent session whose DHT works on loopback (see NOTES-libtorrent)."""
    return lt.session({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": True, "dht_bootstrap_nodes": bootstrap,
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False, "dht_ignore_dark_internet": False,
        "dht_prefer_verified_node_ids": False,
        # Every shoal node is 127.0.0.1: do not block the address for talking a lot.
        "dht_block_ratelimit": 100000,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.dht_notification
                      | lt.alert.category_t.dht_operation_notification
                      | lt.alert.category_t.status_notification
                      | lt.alert.category_t.error_notification,
    })


def lt_dht_nodes(ses):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # session.status(): still exact
        return getattr(ses.status(), "dht_nodes", 0)


# ---------------------------------------------------------------- the network
boot = Daemon(tmp, "boot").start()
boot_addr = "127.0.0.1:%d" % boot.port
shoal_seed = Daemon(tmp, "shoal-seed", ["--bootstrap", boot_addr]).start()
shoal_mid = Daemon(tmp, "shoal-mid", ["--bootstrap", boot_addr]).start()
lt_a_port, lt_b_port = free_port(), free_port()
lt_a = lt_session(lt_a_port, boot_addr)   # announces and seeds
lt_b = lt_session(lt_b_port, boot_addr)   # looks up the shoal seed

ok = wait_for("libtorrent to join through shoal", lambda: lt_dht_nodes(lt_a) >= 2 and
              lt_dht_nodes(lt_b) >= 2, 30)
c.check(ok, "both libtorrent sessions bootstrap from a shoal node (%s nodes, %s nodes; %s)" % (
    lt_dht_nodes(lt_a), lt_dht_nodes(lt_b), elapsed()))
ok = wait_for("shoal to know the libtorrent nodes", lambda: dht(boot)["good_nodes"] >= 4, 20)
c.check(ok, "the shoal bootstrap node counts the libtorrent nodes as good (%d good)" %
        dht(boot)["good_nodes"])

# ---------------------------------------------------------------- 1. shoal finds libtorrent
src = tmp.sub("lt-content")
write_file(os.path.join(src, "blob.bin"), os.urandom(2 * 1024 * 1024 + 99))
write_file(os.path.join(src, "t", "readme.txt"), b"seeded by libtorrent, found through shoal's DHT\n")
want = tree_digest(src)
fs = lt.file_storage()
lt.add_files(fs, src)
ct = lt.create_torrent(fs, 0, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, os.path.dirname(src))
ti = lt.torrent_info(lt.bdecode(lt.bencode(ct.generate())))
v2 = ti.info_hashes().v2.to_bytes()
key20 = v2[:20]
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = os.path.dirname(src)
h = lt_a.add_torrent(atp)
ok = wait_for("libtorrent to seed", lambda: h.status().is_seeding, 20)
c.check(ok, "libtorrent seeds a v2 torrent")
try:
    lt_a.dht_announce(lt.sha1_hash(key20), lt_a_port, 0)
    print("# announced with session.dht_announce")
except TypeError as e:  # Boost.Python.ArgumentError
    # The 2.0.8 bindings do not expose dht_announce's flags type, so the call
    # cannot be made from Python; the torrent's own DHT announce sends the
    # same announce_peer for the same 20-byte key.
    print("# session.dht_announce cannot be called from these bindings (%s); "
          "using the torrent's force_dht_announce" % type(e).__name__)
    h.force_dht_announce()

# Give the announce a moment to reach the nodes closest to the key.
stored = wait_for("the libtorrent announce to be stored", lambda: sum(
    dht(d)["peers_stored"] for d in (boot, shoal_seed, shoal_mid)) >= 1, 20)
c.check(stored, "shoal nodes store libtorrent's announce_peer (%s)" % elapsed())

finder = Daemon(tmp, "shoal-finder", ["--bootstrap", "127.0.0.1:%d" % shoal_mid.port]).start()
dl = tmp.sub("from-lt")
os.makedirs(dl)
magnet = "magnet:?xt=urn:btmh:1220" + v2.hex() + "&dn=lt-content"
r = finder.cli("join", magnet, "--into", dl)
c.check(r.returncode == 0, "a shoal daemon joins libtorrent's magnet without --peer", r.stderr)


def found_lt():
    for s in dht(finder)["swarms"]:
        if s["key"] == key20.hex() and s["peers_found"] >= 1:
            return s
    return None


c.check(wait_for("shoal to find libtorrent", found_lt, 30),
        "shoal finds libtorrent's announce through the DHT (%s)" % elapsed(),
        str(dht(finder)["swarms"]))


def lt_connected():
    sws = finder.api("GET", "/api/v1/swarms")["swarms"]
    for s in sws:
        if s["info_hash"] == v2.hex():
            peers = finder.api("GET", "/api/v1/swarms/%s/peers" % s["id"])["peers"]
            return s if any(p["address"].endswith(":%d" % lt_a_port) for p in peers) or \
                s["state"] == "seeding" else None
    return None


sw = wait_for("shoal to connect to libtorrent", lt_connected, 30)
c.check(sw, "shoal connects to the libtorrent peer it found")


def finder_done():
    for s in finder.api("GET", "/api/v1/swarms")["swarms"]:
        if s["info_hash"] == v2.hex() and s["state"] == "seeding":
            return s
    return None


c.check(wait_for("shoal to download from libtorrent", finder_done, 45),
        "shoal downloads libtorrent's torrent found through the DHT (%s)" % elapsed())
c.equal(tree_digest(os.path.join(dl, "lt-content")), want, "byte-identical to libtorrent's files")

# ---------------------------------------------------------------- 2. libtorrent finds shoal
src2 = tmp.sub("shoal-content")
write_file(os.path.join(src2, "data.bin"), os.urandom(1024 * 1024 + 7))
r = shoal_seed.cli("share", src2)
c.equal(r.returncode, 0, "a shoal daemon shares a directory")
magnet2 = r.stdout.split("\n")[0]
hash2 = magnet2.split("urn:btmh:1220")[1][:64]
key2 = bytes.fromhex(hash2)[:20]


def shoal_announced():
    for s in dht(shoal_seed)["swarms"]:
        if s["key"] == key2.hex() and s["announce_acks"] > 0:
            return s
    return None


c.check(wait_for("shoal to announce", shoal_announced, 30),
        "the shoal seed's announce is acknowledged (%s)" % elapsed())

want_peer = ("127.0.0.1", shoal_seed.port)
got_peers = set()
deadline = time.monotonic() + 45
next_query = 0
while time.monotonic() < deadline and want_peer not in got_peers:
    if time.monotonic() >= next_query:
        lt_b.dht_get_peers(lt.sha1_hash(key2))
        next_query = time.monotonic() + 5
    lt_b.wait_for_alert(500)
    for a in lt_b.pop_alerts():
        if isinstance(a, lt.dht_get_peers_reply_alert) and a.info_hash.to_bytes() == key2:
            for p in a.peers():
                got_peers.add((p[0], p[1]))
c.check(want_peer in got_peers, "libtorrent's dht_get_peers finds the shoal seed (%s)" % elapsed(),
        "got %s, want %s" % (sorted(got_peers), want_peer))

print("# shoal packets rate-limited during the run: %d" % sum(
    dht(d)["rate_limited"] for d in (boot, shoal_seed, shoal_mid, finder)))

# ---------------------------------------------------------------- stop everything
del lt_a, lt_b
for d in (boot, shoal_seed, shoal_mid, finder):
    c.equal(d.stop(), 0, "%s stops cleanly" % d.name)
print("# total %s" % elapsed())
c.done()
