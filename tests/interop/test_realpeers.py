"""Self-test of tests/interop/realpeers.py: real v1 clients among themselves, no shoal.

A folder with a file smaller than a piece, an empty file and a file spanning
many pieces (3 MiB in all) gets two v1 torrents from transmission-create, both
announcing to a MiniTracker in this process: T1 with 256 KiB pieces, T2 with
512 KiB pieces (another info-hash, so it has other peers).  On a Lan of three
namespaces, the tracker on this side's address:

  A  Transmission seeds T1 (checks the data first);
  B  Transmission downloads T1 and T2 from their .torrent files;
  C  aria2c downloads T1 from its magnet link alone (metadata from the swarm);
  this side: aria2c seeds T2, the only peer that has it;
and in a Netns of its own (a /30 to this side, default route through it):
  D  Transmission downloads T2, reaching the tracker and aria2 on this side's
     Lan address through its default route.

All four downloads run at once; each copy must be byte-identical to the
folder (files with bytes: neither client creates empty files).  Then every
process is stopped by its pid and no namespace of this test is left.
Exit 77 when not root, or transmission-daemon, transmission-create or aria2c
is missing, or network namespaces cannot be made.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
import realpeers as rp  # noqa: E402

rp.require(programs=("transmission-daemon", "transmission-create", "aria2c"))
rp.cleanup_on_signals()

from shoal_harness import Checks, TestDir, write_file  # noqa: E402

TIMEOUT = 60          # per download; the whole test stays well under 90 s
c = Checks("realpeers")
tmp = TestDir("shoal-realpeers-")
t_start = time.monotonic()

src_parent = tmp.sub("src")
src = os.path.join(src_parent, "data")
write_file(os.path.join(src, "small.txt"), b"smaller than a piece\n")
write_file(os.path.join(src, "empty"), b"")
write_file(os.path.join(src, "sub", "big.bin"), os.urandom(3 * 1024 * 1024 - 1000))
write_file(os.path.join(src, "sub", "tail.bin"), os.urandom(70000))

started = []    # every process, to check none outlives the test

with rp.Lan(3) as lan, rp.Netns() as dns:
    a, b, cns = lan.members
    c.check(len({a.addr, b.addr, cns.addr, lan.host_addr}) == 4
            and all(x.startswith("10.250.") for x in (a.addr, b.addr, cns.addr, lan.host_addr)),
            "the Lan has four addresses in 10.250.0.0/16",
            "(%s %s %s %s)" % (lan.host_addr, a.addr, b.addr, cns.addr))
    r = a.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], capture_output=True, text=True)
    c.check(a.addr in r.stdout, "namespace A has its address on eth0", r.stdout + r.stderr)
    r = dns.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], capture_output=True, text=True)
    c.check(("%s/30" % dns.addr) in r.stdout and dns.host_addr.startswith("10.250.")
            and dns.host_addr != lan.host_addr,
            "the Netns has its own /30 from 10.250.0.0/16 on eth0", r.stdout + r.stderr)
    ns_names = set(lan.names() + [dns.name])
    c.check(ns_names <= set(rp.our_namespaces()), "ip netns list shows the test's namespaces")

    with rp.MiniTracker(lan.host_addr) as trk:
        t1 = rp.transmission_create(src, tmp.sub("t1.torrent"), [trk.url], piece_size=256 * 1024)
        t2 = rp.transmission_create(src, tmp.sub("t2.torrent"), [trk.url], piece_size=512 * 1024)
        ih1, ih2 = rp.info_hash_v1(t1), rp.info_hash_v1(t2)
        c.check(ih1 != ih2, "T1 and T2 have different info-hashes")

        seed = rp.Transmission(tmp.sub("tr-a"), ns=a).start()
        started.append(seed.proc)
        sid = seed.add(t1, src_parent)
        seeding = seed.wait_seeding(sid, TIMEOUT)
        c.check(seeding["leftUntilDone"] == 0, "Transmission (A) checked the data and seeds T1")
        c.equal(seed.info(sid, ["hashString"])["hashString"], ih1,
                "Transmission's info-hash of T1 is info_hash_v1's")

        a2seed = rp.aria2_seed(t2, src_parent, timeout=TIMEOUT + 30)
        started.append(a2seed.proc)

        leech = rp.Transmission(tmp.sub("tr-b"), ns=b).start()
        started.append(leech.proc)
        out_b1, out_b2, out_c = tmp.sub("out-b1"), tmp.sub("out-b2"), tmp.sub("out-c")
        lid1 = leech.add(t1, out_b1)
        lid2 = leech.add(t2, out_b2)
        leech_d = rp.Transmission(tmp.sub("tr-d"), ns=dns).start()
        started.append(leech_d.proc)
        out_d = tmp.sub("out-d")
        did = leech_d.add(t2, out_d)
        a2dl = rp.aria2_download(rp.magnet_v1(t1, [trk.url], "data"), out_c, ns=cns,
                                 timeout=TIMEOUT)
        started.append(a2dl.proc)

        for tr, tid, out, what in ((leech, lid1, out_b1, "(B) T1 from Transmission A"),
                                   (leech, lid2, out_b2, "(B) T2 from aria2 on this side"),
                                   (leech_d, did, out_d, "(D) T2 from aria2 on this side")):
            try:
                info = tr.wait_done(tid, TIMEOUT)
                c.check(info["leftUntilDone"] == 0, "Transmission %s downloaded" % what)
            except (TimeoutError, rp.TransmissionError) as e:
                c.check(False, "Transmission %s downloaded" % what, str(e))
            problems = rp.compare_files_with_bytes(src, os.path.join(out, "data"))
            c.check(not problems, "Transmission's copy of %s is byte-identical" % what,
                    "; ".join(problems))
        try:
            rc = a2dl.wait(TIMEOUT)
        except TimeoutError as e:
            rc = str(e)
        c.equal(rc, 0, "aria2c (C) downloaded T1 from its magnet link and exited 0")
        problems = rp.compare_files_with_bytes(src, os.path.join(out_c, "data"))
        c.check(not problems, "aria2's copy of T1 is byte-identical", "; ".join(problems))
        c.check(not os.path.exists(os.path.join(out_c, "data", "empty")),
                "aria2 did not create the empty file (why only files with bytes are compared)")

        ips = {ip for _, ip, _ in trk.announces}
        c.check({a.addr, b.addr, cns.addr, dns.addr, lan.host_addr} <= ips,
                "the tracker heard A, B, C, D and this side", "(%s)" % sorted(ips))
        c.check(any(p == (lan.host_addr, a2seed.port) for p in trk.peers(ih2)),
                "the tracker lists aria2's seed of T2", "(%s)" % trk.peers(ih2))

        for name, stop in (("Transmission B", leech.stop), ("Transmission D", leech_d.stop),
                           ("aria2 seed", a2seed.stop),
                           ("Transmission A", seed.stop)):
            code = stop()
            c.check(code is not None, "%s stopped on SIGTERM (exit %s)" % (name, code))
    running = [pid for ns in [lan.hub, dns] + lan.members for pid in ns.pids()]
    c.check(not running, "nothing is left running in the test's namespaces", "(%s)" % running)

left = [p.pid for p in started if p.poll() is None]
c.check(not left, "no process this test started is still running", "(%s)" % left)
c.check(not (ns_names & set(rp.our_namespaces())), "no namespace of this test is left",
        "(%s)" % rp.our_namespaces())
c.check(not {lan.host_if, dns.host_if} & set(os.listdir("/sys/class/net")),
        "this side's veths are gone")
elapsed = time.monotonic() - t_start
c.check(elapsed < 90, "the test took %.0f s (< 90 s)" % elapsed)
c.done()
