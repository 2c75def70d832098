#!/usr/bin/python3
"""shoal and libtorrent meet only through Debian's opentracker, over its HTTP
and its UDP interface, on loopback (no DHT, no --peer, no connect_peer).

(a) a hybrid shoal share whose hashes opentracker does not list shows its
    failure reason in `shoal trackers` and is retried; once the hashes are
    whitelisted (SIGHUP) the announce works;
(b) shoal -> shoal over opentracker's HTTP interface, and over its UDP one;
(c) libtorrent seeds a hybrid .torrent naming opentracker; shoal joins that
    .torrent (its announce) and downloads it;
(d) libtorrent downloads a shoal share from the .torrent shoal wrote (its
    announce-list naming opentracker's UDP interface).
Every download is compared byte for byte.  Exit 77 when opentracker or
libtorrent is missing.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from shoal_harness import (Checks, Daemon, TestDir, compare_trees, free_port,  # noqa: E402
                           wait_for, wait_state, write_file)
import opentracker  # noqa: E402

try:
    import libtorrent as lt
    import lt_peer  # noqa: E402
except ImportError as e:
    print("SKIP: cannot import libtorrent (%s); run with /usr/bin/python3" % e)
    sys.exit(77)
if not opentracker.available():
    print("SKIP: opentracker is not installed (apt-get install opentracker)")
    sys.exit(77)

FAST = ["--no-dht", "--tracker-min-interval", "2", "--tracker-timeout", "3"]
TIMEOUT = float(os.environ.get("SHOAL_IT_TIMEOUT", "90"))


def hashes_of(sw):
    return [sw["info_hash_v1"], sw["info_hash"][:40]]


def tracker_of(d, sid, url):
    for t in d.api("GET", "/api/v1/swarms/%s/trackers" % sid)["trackers"]:
        if t["url"] == url:
            return t
    return None


def share(c, d, path, url):
    r = d.cli("share", path, "--format", "hybrid", "--tracker", url, "--json")
    c.check(r.returncode == 0, "shoal share %s --tracker %s" % (os.path.basename(path), url),
            r.stderr)
    return json.loads(r.stdout)


def tree(tmp, name, size):
    root = tmp.sub(name)
    write_file(os.path.join(root, "one.bin"), os.urandom(size))
    write_file(os.path.join(root, "dir", "two.txt"), (name + "\n").encode() * 777)
    return root


def main():
    c = Checks("opentracker")
    tmp = TestDir("shoal-ot-")
    ot = opentracker.OpenTracker()
    a = Daemon(tmp, "a", FAST).start()
    b = Daemon(tmp, "b", FAST).start()

    # (a) not whitelisted: the failure reason, retried; then whitelisted
    src1 = tree(tmp, "http-tree", 400 * 1024 + 5)
    sw1 = share(c, a, src1, ot.http_url())
    sid1 = sw1["id"]
    t = wait_for("the failure reason", lambda: (tracker_of(a, sid1, ot.http_url()) or {}).get(
        "last_error"), 15)
    c.check(t and "not authorized" in t, "an unlisted hash shows opentracker's failure reason", t)
    r = a.cli("trackers", str(sid1))
    c.check("not authorized" in r.stdout, "shoal trackers shows it too", r.stdout)
    c.check(wait_for("a retry", lambda: tracker_of(a, sid1, ot.http_url())["failures"] >= 2, 20),
            "the refused announce is retried", tracker_of(a, sid1, ot.http_url()))
    ot.allow(*hashes_of(sw1))
    t = wait_for("whitelisted", lambda: (lambda t: t["status"] == "working" and t)(
        tracker_of(a, sid1, ot.http_url())), 40)
    c.check(bool(t) and t["last_error"] is None,
            "after whitelisting and SIGHUP the announce works", tracker_of(a, sid1, ot.http_url()))

    # (b) shoal -> shoal over HTTP, then over UDP
    st, doc, _ = b.request("POST", "/api/v1/swarms", {"link": sw1["magnet"], "into": tmp.sub("b1")})
    c.equal(st, 202, "b joins the HTTP share by its magnet alone")
    try:
        wait_state(b, doc["swarm"]["id"], "seeding", timeout=TIMEOUT)
        c.check(True, "shoal -> shoal through opentracker's HTTP interface")
    except AssertionError as e:
        c.check(False, "shoal -> shoal through opentracker's HTTP interface", str(e))
    compare_trees(c, src1, tmp.sub("b1", "http-tree"), "the HTTP-tracked download is byte-identical")

    src2 = tree(tmp, "udp-tree", 300 * 1024 + 77)
    sw2 = share(c, a, src2, ot.udp_url())
    ot.allow(*hashes_of(sw2))
    c.check(wait_for("UDP announce", lambda: tracker_of(a, sw2["id"], ot.udp_url())["status"] ==
                     "working", 40), "the UDP announce works",
            tracker_of(a, sw2["id"], ot.udp_url()))
    st, doc, _ = b.request("POST", "/api/v1/swarms", {"link": sw2["magnet"], "into": tmp.sub("b2")})
    try:
        wait_state(b, doc["swarm"]["id"], "seeding", timeout=TIMEOUT)
        c.check(True, "shoal -> shoal through opentracker's UDP interface")
    except AssertionError as e:
        c.check(False, "shoal -> shoal through opentracker's UDP interface", str(e))
    compare_trees(c, src2, tmp.sub("b2", "udp-tree"), "the UDP-tracked download is byte-identical")
    t = tracker_of(b, doc["swarm"]["id"], ot.udp_url())
    c.check(t and t["status"] == "working" and t["seeders"] is not None,
            "the joiner's UDP tracker is working, with counts", t)

    # (c) libtorrent seeds a .torrent naming opentracker; shoal joins the file
    src3 = tree(tmp, "lt-tree", 500 * 1024 + 3)
    fs = lt.file_storage()
    lt.add_files(fs, src3)
    ct = lt.create_torrent(fs, 32768)  # hybrid
    ct.add_tracker(ot.http_url())
    lt.set_piece_hashes(ct, os.path.dirname(src3))
    data = lt.bencode(ct.generate())
    ti = lt.torrent_info(lt.bdecode(data))
    ot.allow(str(ti.info_hashes().v1), ti.info_hashes().v2.to_bytes().hex()[:40])
    tfile = tmp.sub("lt-tree.torrent")
    with open(tfile, "wb") as f:
        f.write(data)
    ses = lt_peer.session(free_port())
    h = lt_peer.add(ses, data, os.path.dirname(src3))
    wait_for("libtorrent seeding", lambda: h.status().is_seeding, 30)
    h.force_reannounce()
    st, doc, _ = b.request("POST", "/api/v1/swarms", {"link": tfile, "into": tmp.sub("b3")})
    c.equal(st, 202, "shoal joins libtorrent's .torrent (its announce names opentracker)")
    bid3 = doc["swarm"]["id"]
    c.check(tracker_of(b, bid3, ot.http_url()) is not None, "the .torrent's tracker was taken")
    try:
        wait_state(b, bid3, "seeding", timeout=TIMEOUT)
        c.check(True, "libtorrent -> shoal through opentracker")
    except AssertionError as e:
        c.check(False, "libtorrent -> shoal through opentracker", str(e))
    compare_trees(c, src3, tmp.sub("b3", "lt-tree"), "libtorrent's content is byte-identical")

    # (d) libtorrent downloads a shoal share from the .torrent shoal wrote
    src4 = tree(tmp, "to-lt", 350 * 1024 + 9)
    sw4 = share(c, a, src4, ot.udp_url())
    ot.allow(*hashes_of(sw4))
    wait_for("the share's UDP announce",
             lambda: tracker_of(a, sw4["id"], ot.udp_url())["status"] == "working", 40)
    with open(sw4["torrent"], "rb") as f:
        data4 = f.read()
    ti4 = lt.torrent_info(lt.bdecode(data4))
    c.check(any(tr.url == ot.udp_url() for tr in ti4.trackers()),
            "libtorrent reads the tracker from shoal's .torrent", [tr.url for tr in ti4.trackers()])
    h4 = lt_peer.add(ses, data4, tmp.sub("lt-dl"))
    # Under load libtorrent's first connection to shoal can fail, and it then
    # waits minutes before dialling the same address again; a fresh announce
    # every 10 s hands it the address anew (still only through opentracker).
    last = [time.monotonic()]

    def reannounce():
        if time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            h4.force_reannounce()
    try:
        secs = lt_peer.wait_seeding(h4, TIMEOUT, on_poll=reannounce)
        c.check(True, "shoal -> libtorrent through opentracker (%.1f s)" % secs)
    except (TimeoutError, RuntimeError) as e:
        c.check(False, "shoal -> libtorrent through opentracker", str(e))
    compare_trees(c, src4, tmp.sub("lt-dl", "to-lt"), "libtorrent's download is byte-identical")

    del ses
    c.check(b.stop() == 0, "b stops cleanly")
    c.check(a.stop() == 0, "a stops cleanly")
    ot.stop()
    c.done()


if __name__ == "__main__":
    main()
