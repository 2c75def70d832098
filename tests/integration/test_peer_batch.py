"""Peer addresses learned in a burst are written to SQLite in a batch, not
one fsync'd commit each, and they survive a restart.

Issue 12 (5, sixth item): every newly learned address cost its own
INSERT, a transaction of its own on the event loop, and with
`synchronous = FULL` an fdatasync of the WAL: a PEX message (BEP 11) of 50
addresses meant 50 syncs while nothing else ran.

The seed runs under tests/fault/faultfs.so with a journal only (no fault),
so the syncs of its database are counted from outside; the daemon's own
counter (GET /api/v1/status transfer.peer_db_commits) must agree.  A raw
peer from 127.0.0.2 sends one ut_pex message with 50 addresses
(127.0.1.x, where nothing listens; a seed never dials out anyway).  Then
10 more arrive right before a SIGTERM: a clean stop writes them too.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (SHOAL, Checks, Daemon, TestDir, sanitizer_runtime,  # noqa: E402
                           wait_for, wait_state, write_file)
from rawpeer import Dialer, benc  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(SHOAL))
FAULTFS = os.path.join(BUILD, "tests", "fault", "faultfs.so")

c = Checks("peer_batch")
tmp = TestDir("shoal-pbatch-")
if not os.path.exists(FAULTFS):
    print("# %s missing: build it with `make tests/fault/faultfs.so`" % FAULTFS)
    c.check(False, "the fault-injection shim is built")
    c.done()


src = tmp.sub("content")
write_file(os.path.join(src, "data.bin"), os.urandom(512 * 1024 + 3))
seed = Daemon(tmp, "seed", ["--log-level", "debug"])
ctl = tmp.sub("seed.fault")
journal = tmp.sub("seed.journal")
with open(ctl, "w") as f:
    f.write("prefix %s\n" % seed.data_dir)   # journal the database's syncs, fault nothing
rt = sanitizer_runtime()
seed.start(env={"LD_PRELOAD": ((rt + " ") if rt else "") + FAULTFS, "SHOAL_FAULT_FILE": ctl,
                "SHOAL_FAULT_JOURNAL": journal})
r = seed.cli("share", src)
magnet, torrent = r.stdout.split("\n")[:2]
ih = bytes.fromhex(magnet.split("urn:btmh:1220")[1][:64])
wait_state(seed, 1)


def db_syncs():
    """fsync/fdatasync calls on the seed's database files so far."""
    try:
        with open(journal) as f:
            return sum(1 for line in f if line.startswith("S ") and "shoal.db" in line)
    except OSError:
        return 0


def status_commits():
    return seed.api("GET", "/api/v1/status")["transfer"].get("peer_db_commits")


def known():
    return seed.api("GET", "/api/v1/swarms/1")["transfer"]["known_peers"]


# The ports of the addresses sent: never the seed's own listen port, which
# on any 127.x address the seed takes for itself and drops (is_self in
# node/engine_peers.c); a seed on a port in this range once made the test
# count one address short.
PEX_BASE = 40000 if not 40000 <= seed.port < 40100 else 50000


def pex_added(first, n):
    addrs = b"".join(socket.inet_aton("127.0.1.%d" % (first + i)) + struct.pack(">H", PEX_BASE + first + i)
                     for i in range(n))
    return benc({"added": addrs, "added.f": b"\x00" * n})


raw = Dialer(seed.port, ih, src="127.0.0.2")
raw.dial(ext={"m": {"ut_pex": 1}, "v": "rawpeer"})
c.check(raw.handshaken, "a raw peer from 127.0.0.2 connects to the seed")
raw.pump(5, until=lambda: raw.ut_pex > 0)
c.check(raw.ut_pex > 0, "the seed offers ut_pex in its extension handshake", str(raw.ut_pex))
time.sleep(1.5)  # whatever the start-up wrote is done
k0, s0, n0 = known(), db_syncs(), status_commits()
c.check(n0 is not None, "GET /api/v1/status reports transfer.peer_db_commits", str(n0))
raw.ext(raw.ut_pex, pex_added(1, 50))
c.check(wait_for("50 addresses known", lambda: known() >= k0 + 50, 10),
        "the seed learns the 50 addresses", "(%d known)" % known())
time.sleep(2.5)  # two engine ticks: any batch is written by now
k1, s1, n1 = known(), db_syncs(), status_commits()
print("# known %d -> %d; database syncs %d -> %d; peer_db_commits %s -> %s" % (
    k0, k1, s0, s1, n0, n1))
c.check(n0 is not None and n1 is not None and n1 - n0 <= 2,
        "the 50 addresses cost at most 2 write transactions, not 50", "(%s -> %s)" % (n0, n1))
c.check(s1 - s0 <= 4, "and at most a few database syncs, not one per address",
        "(%d syncs)" % (s1 - s0))
c.check(s1 - s0 >= 1, "(the syncs are seen: the batch was written)", "(%d syncs)" % (s1 - s0))

# 10 more, then a clean stop at once: they are written at shutdown.
raw.ext(raw.ut_pex, pex_added(100, 10))
wait_for("60 addresses known", lambda: known() >= k0 + 60, 5)
c.equal(seed.stop(), 0, "the seed stops cleanly right after")
raw.close()
seed.start(env={"LD_PRELOAD": None, "SHOAL_FAULT_FILE": None, "SHOAL_FAULT_JOURNAL": None})
wait_state(seed, 1)
k2 = known()
c.check(k2 >= k0 + 60, "after a restart all 60 addresses are still known", "(%d known)" % k2)
c.equal(seed.stop(), 0, "the seed stops cleanly again")
c.done()
