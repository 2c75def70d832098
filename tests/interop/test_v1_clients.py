"""shoal and the v1-only clients, both ways: Transmission 3.00 and aria2 1.36.

Transmission ignores peers on 127.0.0.0/8 and neither client takes a peer
address, so each runs in a network namespace of its own on one bridge with
this side (tests/interop/realpeers.py: Lan), and meets shoal through a
tracker in this process (realpeers.MiniTracker) that also lists shoal's
address on this side of the bridge.  The folder's pieces span files: an
empty file, files smaller than a piece, one of many pieces.

(a) Transmission downloads shoal's `share --format v1` from its v1 magnet
    (metadata by BEP 9 from shoal), byte-identical.
(b) shoal downloads a torrent made by transmission-create and seeded by
    Transmission (`shoal join T --peer ADDR`), byte-identical.
(c) aria2c downloads shoal's v1 share from its magnet, byte-identical.
(d) shoal downloads what aria2c seeds, byte-identical.
(e) Debian's opentracker is the only way shoal and Transmission meet
    (shoal with --no-dht, no --peer, no listing by the test): Transmission
    downloads a v1 share announced to opentracker's HTTP interface, and
    shoal downloads what Transmission seeds announced to its UDP interface.

Neither client writes empty files: files with bytes are compared.  Exit 77
(skip) without root, network namespaces, transmission-daemon or aria2c.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
import opentracker  # noqa: E402
import realpeers as rp  # noqa: E402
from shoal_harness import Checks, Daemon, TestDir, wait_state, write_file  # noqa: E402

rp.require(programs=("transmission-daemon", "transmission-create", "aria2c"))
rp.cleanup_on_signals()
TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "120"))
c = Checks("v1_clients")
tmp = TestDir("shoal-v1c-")
os.chmod(tmp.path, 0o755)   # Transmission drops privileges on nothing, but be safe


def make_tree(root):
    write_file(os.path.join(root, "big.bin"), os.urandom(2 * 1000 * 1000 + 123))
    write_file(os.path.join(root, "a", "small.txt"), b"a small file\n")
    write_file(os.path.join(root, "a", "empty"), b"")
    write_file(os.path.join(root, "a", "odd"), os.urandom(3 * 16384 + 77))
    write_file(os.path.join(root, "z.txt"), b"last\n")


def same(src, dst, what):
    diff = rp.compare_files_with_bytes(src, dst)
    c.check(not diff, what, str(diff)[:300])


def list_shoal(trk, info_hash_hex, addr, port):
    """Put shoal's address in the tracker's list for the swarm (shoal itself
    does not announce to it here), kept from expiring."""
    with trk.lock:
        trk.swarms.setdefault(bytes.fromhex(info_hash_hex), {})[(addr, port)] = (
            time.monotonic() + 10 ** 6, 0)


with rp.Lan(2) as lan:
    tr_ns, a2_ns = lan.members
    with rp.MiniTracker(lan.host_addr) as trk:
        src_parent = tmp.sub("src")
        src = os.path.join(src_parent, "tree")
        make_tree(src)
        seed = Daemon(tmp, "shoal-seed").start()
        r = seed.cli("share", src, "--format", "v1", "--json", timeout=TIMEOUT)
        c.equal(r.returncode, 0, "shoal shares the folder as v1")
        sw = wait_state(seed, json.loads(r.stdout)["id"], "seeding", timeout=60)
        ih = sw["info_hash_v1"]
        list_shoal(trk, ih, lan.host_addr, seed.port)
        magnet = "magnet:?xt=urn:btih:%s&dn=tree&tr=%s" % (ih, trk.url)

        # (a) Transmission <- shoal
        tr = rp.Transmission(tmp.sub("tr"), ns=tr_ns).start()
        out_a = tmp.sub("tr-out")
        os.makedirs(out_a)
        os.chmod(out_a, 0o777)
        try:
            tid = tr.add(magnet, out_a)
            tr.wait_done(tid, TIMEOUT, stall=60)
            c.check(True, "(a) Transmission completes from shoal's v1 magnet")
        except Exception as e:  # noqa: BLE001 - report and go on
            c.check(False, "(a) Transmission completes from shoal's v1 magnet",
                    "%s; %s" % (e, tr.log()[-600:]))
        same(src, os.path.join(out_a, "tree"), "(a) Transmission's copy is byte-identical")

        # (b) shoal <- Transmission (a torrent of its own)
        tsrc_parent = tmp.sub("tsrc")
        tsrc = os.path.join(tsrc_parent, "ttree")
        make_tree(tsrc)
        for d, _, files in os.walk(tmp.path):
            os.chmod(d, 0o755)
        ttor = tmp.sub("ttree.torrent")
        rp.transmission_create(tsrc, ttor, [trk.url])
        tid2 = tr.add(ttor, tsrc_parent)
        tr.wait_seeding(tid2, 60)
        leech = Daemon(tmp, "shoal-leech", ["--log-level", "debug"]).start()
        out_b = tmp.sub("shoal-out-b")
        os.makedirs(out_b)
        r = leech.cli("join", ttor, "--into", out_b, "--peer", "%s:%d" % (tr.addr, tr.peer_port),
                      "--json", timeout=TIMEOUT)
        c.equal(r.returncode, 0, "(b) shoal joins Transmission's torrent")
        try:
            lsw = wait_state(leech, json.loads(r.stdout)["swarm"]["id"], "seeding", timeout=TIMEOUT,
                             leave=())
            c.equal(lsw["format"], "v1", "(b) it is a v1 torrent")
            c.equal(lsw["transfer"]["hash_failures"], 0, "(b) no piece failed its SHA-1")
        except (AssertionError, ValueError, KeyError) as e:
            c.check(False, "(b) shoal completes from Transmission", str(e))
        same(tsrc, os.path.join(out_b, "ttree"), "(b) shoal's copy is byte-identical")
        tr.stop()

        # (c) aria2 <- shoal
        out_c = tmp.sub("a2-out")
        a2 = rp.aria2_download(magnet, out_c, ns=a2_ns, timeout=TIMEOUT)
        rc = a2.wait(TIMEOUT + 10)
        c.equal(rc, 0, "(c) aria2c downloads shoal's v1 share and exits 0")
        if rc != 0:
            print(a2.log()[-1500:])
        same(src, os.path.join(out_c, "tree"), "(c) aria2's copy is byte-identical")

        # (d) shoal <- aria2
        asrc_parent = tmp.sub("asrc")
        asrc = os.path.join(asrc_parent, "atree")
        make_tree(asrc)
        for d, _, files in os.walk(tmp.path):
            os.chmod(d, 0o755)
        ator = tmp.sub("atree.torrent")
        rp.transmission_create(asrc, ator, [trk.url])
        a2s = rp.aria2_seed(ator, asrc_parent, ns=a2_ns, timeout=TIMEOUT)
        out_d = tmp.sub("shoal-out-d")
        os.makedirs(out_d)
        r = leech.cli("join", ator, "--into", out_d, "--peer", "%s:%d" % (a2_ns.addr, a2s.port),
                      "--json", timeout=TIMEOUT)
        c.equal(r.returncode, 0, "(d) shoal joins the torrent aria2 seeds")
        try:
            wait_state(leech, json.loads(r.stdout)["swarm"]["id"], "seeding", timeout=TIMEOUT,
                       leave=())
            c.check(True, "(d) shoal completes from aria2")
        except (AssertionError, ValueError, KeyError) as e:
            c.check(False, "(d) shoal completes from aria2", "%s; %s" % (e, a2s.log()[-800:]))
        same(asrc, os.path.join(out_d, "atree"), "(d) shoal's copy is byte-identical")
        a2s.stop()
        c.equal(leech.stop(), 0, "shoal leecher stops cleanly")
        c.equal(seed.stop(), 0, "shoal seed stops cleanly")

        # (e) only opentracker: HTTP for Transmission <- shoal, UDP for shoal <- Transmission
        if not opentracker.available():
            print("note: (e) opentracker is not installed; case skipped")
        else:
            ot = opentracker.OpenTracker(addr=lan.host_addr)
            fast = ["--no-dht", "--tracker-min-interval", "2"]
            esrc = os.path.join(tmp.sub("esrc"), "etree")
            make_tree(esrc)
            eseed = Daemon(tmp, "shoal-e-seed", fast).start()
            r = eseed.cli("share", esrc, "--format", "v1", "--tracker", ot.http_url(), "--json",
                          timeout=TIMEOUT)
            c.equal(r.returncode, 0, "(e) shoal shares v1 announcing to opentracker")
            esw = wait_state(eseed, json.loads(r.stdout)["id"], "seeding", timeout=60)
            ot.allow(esw["info_hash_v1"])
            eseed.cli("trackers", str(esw["id"]), "--reannounce")
            c.check("tr=" in esw["magnet"], "(e) the v1 magnet carries the tracker", esw["magnet"])
            tr2 = rp.Transmission(tmp.sub("tr2"), ns=tr_ns).start()
            out_e = tmp.sub("tr2-out")
            os.makedirs(out_e)
            os.chmod(out_e, 0o777)
            try:
                tr2.wait_done(tr2.add(esw["magnet"], out_e), TIMEOUT, stall=60)
                c.check(True, "(e) Transmission completes, meeting shoal only through opentracker")
            except Exception as e:  # noqa: BLE001
                c.check(False, "(e) Transmission completes, meeting shoal only through opentracker",
                        "%s; %s" % (e, ot.log()[-300:]))
            same(esrc, os.path.join(out_e, "etree"), "(e) Transmission's copy is byte-identical")
            # And back: Transmission seeds a torrent announcing to the UDP interface.
            fsrc_parent = tmp.sub("fsrc")
            fsrc = os.path.join(fsrc_parent, "ftree")
            make_tree(fsrc)
            for d, _, files in os.walk(tmp.path):
                os.chmod(d, 0o755)
            ftor = tmp.sub("ftree.torrent")
            rp.transmission_create(fsrc, ftor, [ot.udp_url()])
            ot.allow(rp.info_hash_v1(ftor))
            tr2.wait_seeding(tr2.add(ftor, fsrc_parent), 60)
            eleech = Daemon(tmp, "shoal-e-leech", fast).start()
            out_f = tmp.sub("shoal-out-f")
            os.makedirs(out_f)
            r = eleech.cli("join", ftor, "--into", out_f, "--json", timeout=TIMEOUT)
            c.equal(r.returncode, 0, "(e) shoal joins Transmission's torrent (no --peer, no DHT)")
            try:
                wait_state(eleech, json.loads(r.stdout)["swarm"]["id"], "seeding", timeout=TIMEOUT,
                           leave=())
                c.check(True, "(e) shoal completes, meeting Transmission only through opentracker UDP")
            except (AssertionError, ValueError, KeyError) as e:
                c.check(False, "(e) shoal completes, meeting Transmission only through opentracker UDP",
                        "%s; %s" % (e, ot.log()[-300:]))
            same(fsrc, os.path.join(out_f, "ftree"), "(e) shoal's copy is byte-identical")
            tr2.stop()
            c.equal(eleech.stop(), 0, "(e) shoal leecher stops cleanly")
            c.equal(eseed.stop(), 0, "(e) shoal seed stops cleanly")
            ot.stop()
c.check(not [n for n in rp.our_namespaces()], "no namespace left behind")
c.done()
