#!/usr/bin/python3
"""Trackers: two shoal daemons without the DHT meet only through a tracker
written here (HTTP and UDP, on 127.0.0.1), and hostile trackers leave every
swarm running with a clear error in its tracker's state.

Checked: a hybrid share's .torrent and magnet carry the trackers; the
joiner downloads byte for byte; the tracker sees started, completed and
stopped, for both info-hashes of the hybrid; the interval it asks for is
honoured; a reannounce is sent at once; GET /swarms/{id}/trackers and
`shoal trackers` (table, --json, --add, --remove, --reannounce); a tracker
that never answers (HTTP and UDP), answers garbage, returns 10,000 peers,
redirects in a loop or to ftp://, or refuses with a failure reason, each
shows its error while the swarm downloads through a UDP tracker whose
every answer is preceded by a spoofed one (wrong source, wrong
transaction id: ignored); shutdown sends "stopped" and takes at most
about 2 s even with a dead tracker.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, compare_trees, wait_for,  # noqa: E402
                           wait_state, write_file)
from fake_tracker import HttpTracker, UdpTracker  # noqa: E402

FAST = ["--no-dht", "--tracker-min-interval", "2", "--tracker-timeout", "2"]


def trackers(d, sid):
    return d.api("GET", "/api/v1/swarms/%s/trackers" % sid)["trackers"]


def by_url(d, sid):
    return {t["url"]: t for t in trackers(d, sid)}


def main():
    c = Checks("trackers")
    tmp = TestDir()
    http = HttpTracker(interval=3)
    udp = UdpTracker(interval=1800, mode="spoof-first")
    udp_backup = UdpTracker(interval=1800)
    dead_udp = UdpTracker(mode="dead")
    # A self-signed https tracker: the TLS handshake runs and the
    # certificate is refused (no CA here vouches for it).
    tls = None
    if shutil.which("openssl"):
        cert, key = tmp.sub("cert.pem"), tmp.sub("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       capture_output=True, timeout=60, check=True)
        tls = HttpTracker(tls=(cert, key))

    src = tmp.sub("content")
    write_file(os.path.join(src, "a.bin"), os.urandom(300 * 1024 + 17))
    write_file(os.path.join(src, "sub", "b.txt"), b"tracker test\n" * 999)
    a = Daemon(tmp, "seed", FAST).start()
    b = Daemon(tmp, "leech", FAST).start()

    # --- share with a tracker, join through it alone
    backup = http.url("noscrape/announce")
    r = a.cli("share", src, "--format", "hybrid", "--tracker", http.url() + "," + backup, "--json")
    c.check(r.returncode == 0, "shoal share --tracker works", r.stderr)
    sw = json.loads(r.stdout)
    sid = sw["id"]
    c.check("tr=" in sw["magnet"] and str(http.port) in sw["magnet"],
            "the share's magnet link carries the tracker (tr=)", sw["magnet"])
    with open(sw["torrent"], "rb") as f:
        torrent = f.read()
    c.check(b"8:announce%d:%s" % (len(http.url()), http.url().encode()) in torrent and
            b"13:announce-listll" in torrent, "the share's .torrent has announce and announce-list")
    v1 = bytes.fromhex(sw["info_hash_v1"])
    v2 = bytes.fromhex(sw["info_hash"])[:20]
    c.check(wait_for("both hashes announced by the seed",
                     lambda: {"started"} <= set(http.swarms.events(v1)) and
                     {"started"} <= set(http.swarms.events(v2)), 10),
            "the seed announced started for its v1 and its truncated v2 info-hash")

    st, doc, _ = b.request("POST", "/api/v1/swarms", {"link": sw["magnet"], "into": tmp.sub("dl")})
    c.check(st == 202, "the joiner joins by the magnet alone (no --peer, no DHT)", doc)
    bid = doc["swarm"]["id"]
    t0 = time.monotonic()
    try:
        wait_state(b, bid, "seeding", timeout=60)
        c.check(True, "downloaded through the tracker in %.1f s" % (time.monotonic() - t0))
    except AssertionError as e:
        c.check(False, "downloaded through the tracker", str(e))
    compare_trees(c, src, tmp.sub("dl", "content"), "the download is byte-identical")
    mine = lambda ev: [x for x in http.announces if x["port"] == b.port and x["event"] == ev]
    c.check(wait_for("completed", lambda: len(mine("completed")) >= 2, 10),
            "the joiner sent started and then completed, for both info-hashes",
            [x["event"] for x in http.announces if x["port"] == b.port])
    c.check(len(mine("started")) >= 2, "the joiner sent started for both info-hashes")
    seen = b.api("GET", "/api/v1/swarms/%s" % bid)
    c.equal(seen["trackers"], 2, "the joined swarm took the magnet's trackers")

    # --- interval honoured: about one announce per 3 s per hash, not more
    n0 = len([x for x in http.announces if x["port"] == a.port])
    time.sleep(10)
    n1 = len([x for x in http.announces if x["port"] == a.port])
    c.check(4 <= n1 - n0 <= 9, "the interval the tracker asks (3 s) is honoured "
            "(%d announces of 2 hashes in 10 s)" % (n1 - n0))

    # --- the API and the CLI
    t = trackers(a, sid)[0]
    c.equal(t["url"], http.url(), "the tier's first tracker is announced to")
    c.equal(t["status"], "working", "GET trackers: the tracker is working")
    bk = by_url(a, sid)[backup]
    c.check(bk["status"] == "backup" and bk["tier"] == 0 and not bk["current"] and
            bk["last_scrape"] and bk["seeders"] is not None, "the second of the tier (--tracker A,B) is a "
            "backup, scraped (HTTP scrape) for its counts", bk)
    c.check(t["last_announce"] and t["next_announce"] and t["last_error"] is None,
            "GET trackers: last and next announce, no error", t)
    c.check(t["seeders"] == 2 and t["leechers"] == 0, "seeders and leechers from the answer", t)
    c.equal(len(t["info_hashes"]), 2, "a hybrid announces two hashes to the tracker")
    r = a.cli("trackers", str(sid))
    c.check(r.returncode == 0 and http.url() in r.stdout and "working" in r.stdout,
            "shoal trackers prints the table", r.stdout + r.stderr)
    r = a.cli("trackers", str(sid), "--json")
    c.check(r.returncode == 0 and json.loads(r.stdout)["trackers"][0]["url"] == http.url(),
            "shoal trackers --json prints the API's reply")
    http.interval = 1800
    time.sleep(3.5)   # the next answer gives the long interval
    before = len(http.announces)
    r = a.cli("trackers", str(sid), "--reannounce")
    c.check(r.returncode == 0, "shoal trackers --reannounce", r.stderr)
    c.check(wait_for("reannounce", lambda: len(http.announces) >= before + 2, 3),
            "a reannounce reaches the tracker at once (both hashes)")
    st, doc, _ = a.request("POST", "/api/v1/swarms/%s/reannounce" % sid, {})
    c.equal(st, 202, "POST /reannounce is accepted")

    st, doc, _ = a.request("POST", "/api/v1/swarms/%s/trackers" % sid, {"url": "wss://x/announce"})
    c.equal(st, 400, "a tracker of another scheme is refused")
    r = a.cli("trackers", str(sid), "--add", "udp://127.0.0.1:9/x")
    c.check(r.returncode == 0 and "added" in r.stdout, "shoal trackers --add", r.stdout + r.stderr)
    r = a.cli("trackers", str(sid), "--remove", "udp://127.0.0.1:9/x")
    c.check(r.returncode == 0 and "udp://127.0.0.1:9/x" not in by_url(a, sid),
            "shoal trackers --remove", r.stdout + r.stderr)
    st, _, _ = a.request("DELETE", "/api/v1/swarms/%s/trackers?url=http%%3A%%2F%%2Fnone" % sid)
    c.equal(st, 404, "removing a tracker the swarm does not have is a 404")

    # --- hostile trackers, each its own tier, beside a UDP tracker that works
    src2 = tmp.sub("content2")
    write_file(os.path.join(src2, "c.bin"), os.urandom(200 * 1024))
    hostile = {
        "dead": http.url("dead/announce"),
        "garbage": http.url("garbage/announce"),
        "huge": http.url("huge/announce"),
        "many": http.url("many/announce"),
        "loop": http.url("loop/announce"),
        "ftp": http.url("ftp/announce"),
        "fail": http.url("fail/announce"),
        "dead udp": dead_udp.url(),
    }
    if tls:
        hostile["self-signed"] = tls.url()
    args = ["share", src2, "--json"]
    for u in list(hostile.values()) + [udp.url() + "," + udp_backup.url()]:
        args += ["--tracker", u]
    r = a.cli(*args)
    c.check(r.returncode == 0, "a share with hostile trackers and a UDP one", r.stderr)
    sw2 = json.loads(r.stdout)
    sid2 = sw2["id"]
    st, doc, _ = b.request("POST", "/api/v1/swarms", {"link": sw2["magnet"], "into": tmp.sub("dl2")})
    bid2 = doc["swarm"]["id"]
    try:
        wait_state(b, bid2, "seeding", timeout=60)
        c.check(True, "the second swarm downloads through the UDP tracker despite the others")
    except AssertionError as e:
        c.check(False, "the second swarm downloads through the UDP tracker", str(e))
    compare_trees(c, src2, tmp.sub("dl2", "content2"), "the second download is byte-identical")

    def errors():
        got = by_url(a, sid2)
        return all(got[u]["last_error"] for k, u in hostile.items() if k != "many") and got

    got = wait_for("every hostile tracker's error", errors, 25) or by_url(a, sid2)
    want = {"dead": "no answer within", "garbage": "bad answer", "huge": "larger than 1 MiB", "loop": "too many redirects",
            "ftp": "non-http", "fail": "go away (test)", "dead udp": "no answer (UDP"}
    if tls:
        want["self-signed"] = "TLS: "   # "... need OpenSSL" when built --without-openssl
    for name, frag in want.items():
        err = got[hostile[name]]["last_error"] or ""
        c.check(frag in err or (name == "self-signed" and "need OpenSSL" in err), "a tracker that %s shows it: %r" % (
            {"dead": "never answers", "garbage": "answers garbage", "huge": "sends 2 MiB", "loop": "redirects in a loop",
             "ftp": "redirects to ftp://", "fail": "refuses", "dead udp": "never answers (UDP)",
             "self-signed": "has a self-signed certificate (https)"}[name],
            err))
    many = got[hostile["many"]]
    c.check(many["status"] == "working" and many["peers"] == 10000 * len(many["info_hashes"]),
            "a tracker returning 10,000 peers is read (and what is added is capped)", many)
    known = a.api("GET", "/api/v1/swarms/%s" % sid2)["transfer"]["known_peers"]
    c.check(known <= 600, "at most a few hundred of them are taken", known)
    u = got[udp.url()]
    c.check(u["status"] == "working" and u["last_error"] is None,
            "the UDP tracker works: spoofed answers (other port, wrong transaction id) were "
            "ignored", u)
    c.check(wait_for("a UDP scrape", lambda: by_url(a, sid2)[udp_backup.url()]["last_scrape"], 10),
            "the UDP tracker's backup in its tier is scraped (BEP 15 action 2)",
            by_url(a, sid2)[udp_backup.url()])
    st, doc, _ = a.request("GET", "/api/v1/swarms/%s" % sid)
    c.check(st == 200 and doc["state"] == "seeding", "the first swarm is untouched", doc)

    # --- shutdown: "stopped" for each, within ~2 s even with a dead tracker
    t0 = time.monotonic()
    rc = b.stop()
    took = time.monotonic() - t0
    c.check(rc == 0, "the joiner stops cleanly")
    c.check(took < 4.5, "stopping with trackers took %.1f s (stopped is bounded by 2 s)" % took)
    c.check(len(mine("stopped")) >= 2, "the tracker saw stopped from the joiner")
    c.check(any(x["event"] == "stopped" and x["port"] == b.port for x in udp.announces),
            "the UDP tracker saw stopped too")
    t0 = time.monotonic()
    rc = a.stop()
    took = time.monotonic() - t0
    c.check(rc == 0 and took < 4.5, "the seed with a dead tracker stops in %.1f s" % took)

    # --- the trackers outlive a restart
    a.start()
    got = by_url(a, sid2)
    c.check(udp.url() in got and len(got) == len(hostile) + 2 and
            got[udp_backup.url()]["tier"] == got[udp.url()]["tier"],
            "trackers and their tiers are kept across a restart")
    c.check(a.stop() == 0, "the seed stops cleanly again")
    http.stop()
    udp.stop()
    udp_backup.stop()
    dead_udp.stop()
    if tls:
        tls.stop()
    c.done()


if __name__ == "__main__":
    main()
