#!/usr/bin/python3
"""client_throughput: shoal and real clients moving v1, v2 and hybrid torrents, one seed to one leecher.

shoal's v1, v2 and hybrid transfers against real clients' in the same run.  Writes
one file of random data (1 GiB; --quick 256 MiB; --size-mib N), reads it once
so every seed serves from the page cache, then measures, --repeats (3) times
each, interleaved so a noisy moment hits every contender (medians):

  shoal-v1, shoal-v2, shoal-hybrid
                shoal -> shoal on loopback, the folder shared with --format v1, v2
                or hybrid, both daemons with --encryption off (the peers below
                are plain too), the leecher joining the seed's .torrent with
                --peer (bench/transfer_throughput.py's run_shoal).  shoal picks its
                own piece length (the rule in transfer/metainfo.h), not --piece-kib.
  libtorrent-hybrid
                as libtorrent below with libtorrent's hybrid of the same folder.

  transmission  Transmission 3.00 -> Transmission 3.00, each daemon in a
                network namespace of its own on one Lan (tests/interop/realpeers.py:
                a bridge in a hub namespace, this side on it too), meeting through
                a MiniTracker in this process (Transmission has no "add peer");
                a v1 .torrent from transmission-create; encryption "prefer plain"
                on both (so the link is plain), uTP, DHT, LPD off.  Needs root.
  libtorrent    libtorrent 2.0 -> libtorrent 2.0 (tests/interop/lt_peer.py, one
                process each, on loopback), a v1-only .torrent from
                create_torrent(..., flags=v1_only) of the same folder with the same
                piece length, TCP only (uTP off: ~35x slower on loopback),
                encryption off, the leecher connecting to the seed directly.

Each seed is started (and checks its data) once and serves every repeat; each
leecher is fresh (own data dir, empty download dir).  Transmission's time runs
from torrent-add on the leecher to its RPC saying every byte is there and
verified (polled every 100 ms); it includes the tracker round trip and
Transmission's 10-second choke/interest timers (first piece after ~5-15 s),
so the time to the first byte is reported too, and the rate after it.
Transmission 3.00 also caps one peer connection near 8.4 MB/s here (512 x 16 KiB
a second: it keeps at most 512 requests outstanding and sends them in batches;
upstream issue transmission/transmission#6986), so that row measures
Transmission, not the link: a 1 GiB repeat takes over two minutes.
libtorrent's runs from add_torrent to is_seeding (polled inside the leecher).
Before each leecher starts, os.sync() writes back what the previous one left
dirty.  MB = 10^6 bytes.

Output: one JSON object per line on stdout for every repeat ({"contender",
"repeat", "seconds", "mbps", ...}) and one per contender with its median, then
a table; OUT/client_throughput.json in the shape bench/lib/benchlib.py
documents.  Targets (issue "Join the swarms that exist"): shoal v1 within 10 %
of shoal v2, and ahead of Transmission and libtorrent (v1); shoal hybrid ahead
of libtorrent hybrid.

A shoal -> shoal v1 run slots in with add_contender(name, setup): see there.
Run with /usr/bin/python3 (Debian's, which has libtorrent), as root for the
namespaces.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import benchlib as bl  # noqa: E402
import transfer_throughput as tt  # noqa: E402  (its data, libtorrent and CPU helpers)

sys.path.insert(0, os.path.join(bl.REPO, "tests", "interop"))
import realpeers as rp  # noqa: E402

NAME = "client_throughput"
PY = tt.PY


class Unavailable(Exception):
    """A contender cannot run here (its reason is reported, the others go on)."""


# ---------------------------------------------------------------- the hook

CONTENDERS = []   # [(name, setup)], measured in this order within each repeat


def add_contender(name, setup):
    """Register a contender.  setup(ctx) runs once before the repeats (start the
    seed, let it check its data) and returns run_once(tag, check) -> dict, one
    measured download by a fresh leecher: at least {"seconds": S} (from starting
    the download to having every byte); the driver adds "mbps".  With check
    true (the first repeat) run_once also compares the leecher's copy with the
    original: ctx.check_copy(path) raises if it differs.  Teardown goes through
    ctx.on_exit(fn); raise Unavailable(reason) from setup to skip the contender.

    ctx has size (bytes), tmp, data_parent (the folder holding data/),
    data (the folder shared: data/blob.bin), piece_length, and, made on
    first use: ctx.lt_v1_torrent() (a v1 .torrent without trackers, for peers
    told where the seed is), ctx.lan() (a realpeers.Lan of two namespaces) and
    ctx.tracker() (a MiniTracker on the Lan's host side), ctx.tr_v1_torrent()
    (transmission-create's v1 .torrent announcing to that tracker).

    For shoal later, something like:
        def shoal_v1(ctx):
            seed = ...start a daemon sharing ctx.lt_v1_torrent() from ctx.data_parent...
            ctx.on_exit(seed.stop)
            def run_once(tag, check):
                ...fresh leecher, `join TORRENT --peer 127.0.0.1:PORT`, wait "seeding"...
                return {"seconds": secs}
            return run_once
        add_contender("shoal", shoal_v1)
    """
    CONTENDERS.append((name, setup))


class Ctx:
    def __init__(self, a, size, tmp):
        self.args = a
        self.size = size
        self.tmp = tmp
        self.data_parent = os.path.join(tmp, "src")
        self.data = os.path.join(self.data_parent, "data")
        self.blob = os.path.join(self.data, "blob.bin")
        self.piece_length = a.piece_kib * 1024
        self.sha256 = None
        self._exits = []
        self._lan = self._tracker = self._tr_torrent = self._lt_torrent = None

    def on_exit(self, fn):
        self._exits.append(fn)

    def close(self):
        for fn in reversed(self._exits):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - tear the rest down too
                print("  (teardown: %s: %s)" % (type(e).__name__, e))
        self._exits = []

    def check_copy(self, path):
        got = tt.sha256_file(path)
        if got != self.sha256:
            raise RuntimeError("the leecher's copy %s differs from the original" % path)

    def lan(self):
        if self._lan is None:
            if os.geteuid() != 0:
                raise Unavailable("needs root (network namespaces)")
            ok, why = rp.netns_available()
            if not ok:
                raise Unavailable("no network namespaces here: " + why)
            lan = rp.Lan(2, tag="bench")
            self.on_exit(lan.close)      # also undoes a half-made one
            lan.open()
            self._lan = lan
        return self._lan

    def tracker(self):
        if self._tracker is None:
            self._tracker = rp.MiniTracker(self.lan().host_addr).start()
            self.on_exit(self._tracker.stop)
        return self._tracker

    def tr_v1_torrent(self):
        if self._tr_torrent is None:
            if not rp.which("transmission-create"):
                raise Unavailable("transmission-create not installed (apt-get install transmission-cli)")
            self._tr_torrent = rp.transmission_create(
                self.data, os.path.join(self.tmp, "tr-v1.torrent"), [self.tracker().url],
                piece_size=self.piece_length)
        return self._tr_torrent

    def lt_v1_torrent(self):
        if self._lt_torrent is None:
            out = os.path.join(self.tmp, "lt-v1.torrent")
            code = ("import sys, os, libtorrent as lt\n"
                    "fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])\n"
                    "ct = lt.create_torrent(fs, int(sys.argv[2]), flags=lt.create_torrent.v1_only)\n"
                    "lt.set_piece_hashes(ct, os.path.dirname(sys.argv[1]))\n"
                    "open(sys.argv[3], 'wb').write(lt.bencode(ct.generate()))\n")
            r = subprocess.run([PY, "-c", code, self.data, str(self.piece_length), out],
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise Unavailable("libtorrent could not make a v1 torrent: " + r.stderr.strip()[-300:])
            self._lt_torrent = out
        return self._lt_torrent


# ---------------------------------------------------------------- Transmission

def transmission_setup(ctx):
    for prog in ("transmission-daemon", "transmission-create"):
        if not rp.which(prog):
            raise Unavailable("%s not installed (apt-get install transmission-daemon transmission-cli)"
                              % prog)
    lan = ctx.lan()
    torrent = ctx.tr_v1_torrent()
    seed_ns, leech_ns = lan.members
    settings = {"cache-size-mb": ctx.args.tr_cache_mb}
    seed = rp.Transmission(os.path.join(ctx.tmp, "tr-seed"), ns=seed_ns, encryption=0,
                           settings=settings).start()
    ctx.on_exit(seed.stop)
    sid = seed.add(torrent, ctx.data_parent)
    seed.wait_seeding(sid, 600)
    print("  transmission seed ready in %s (%s), piece length %d KiB" % (
        seed_ns.name, seed_ns.addr, ctx.piece_length // 1024))

    def run_once(tag, check):
        os.sync()
        work = os.path.join(ctx.tmp, "tr-leech-" + tag)
        out = os.path.join(ctx.tmp, "tr-out-" + tag)
        os.makedirs(out)
        leech = rp.Transmission(work, ns=leech_ns, encryption=0, settings=settings).start()
        seed_cpu0 = tt.proc_cpu_seconds(seed.pid)
        try:
            t0 = time.monotonic()
            lid = leech.add(torrent, out)
            first = None
            encrypted = None
            fields = ["status", "percentDone", "leftUntilDone", "sizeWhenDone", "haveValid",
                      "haveUnchecked", "error", "errorString", "peers"]
            while True:
                i = leech.info(lid, fields)
                now = time.monotonic()
                if i.get("error") == 3:
                    raise RuntimeError("transmission leecher: " + i.get("errorString", ""))
                if first is None and (i["haveValid"] or i["haveUnchecked"]):
                    first = now - t0
                if encrypted is None and i["peers"] and first is not None:
                    encrypted = all("E" in p.get("flagStr", "") for p in i["peers"])
                if (i["leftUntilDone"] == 0 and i["haveValid"] >= i["sizeWhenDone"]
                        and i["status"] not in (rp.TR_CHECK_WAIT, rp.TR_CHECK)):
                    break
                if now - t0 > ctx.args.timeout:
                    raise RuntimeError("transmission leecher not done after %ss: %s" % (
                        ctx.args.timeout, {k: v for k, v in i.items() if k != "peers"}))
                time.sleep(0.1)
            secs = time.monotonic() - t0
            res = {"seconds": secs, "first_byte_seconds": first,
                   "mbps_after_first_byte": (ctx.size / (secs - first) / bl.MB
                                             if first is not None and secs > first else None),
                   "encrypted": encrypted,
                   "leech_cpu_seconds": tt.proc_cpu_seconds(leech.pid),
                   "seed_cpu_seconds": (tt.proc_cpu_seconds(seed.pid) or 0) - (seed_cpu0 or 0),
                   "leech_peak_rss_kib": bl.vm_hwm_kib(leech.pid)}
            if check:
                ctx.check_copy(os.path.join(out, "data", "blob.bin"))
                res["sha256_ok"] = True
            res["leech_exit_code"] = leech.stop()
            return res
        finally:
            leech.stop()
            bl.drop_tree(out)
            bl.drop_tree(work)
    return run_once


# ---------------------------------------------------------------- libtorrent

def libtorrent_setup(ctx):
    if not tt.lt_version():
        raise Unavailable("libtorrent not importable by %s" % PY)
    torrent = ctx.lt_v1_torrent()
    rel = tt.lt_first_path(torrent)
    save = ctx.data_parent if rel == "data/blob.bin" else ctx.data
    seed = tt.LtProc("seed", torrent, save)
    ctx.on_exit(seed.stop)
    seed.wait_event(lambda e: e["event"] == "status" and e.get("is_seeding"), 600)
    print("  libtorrent %s seed ready on 127.0.0.1:%d" % (tt.lt_version(), seed.port))

    def run_once(tag, check):
        return tt.run_lt(ctx.tmp, torrent, seed, tag, ctx.size, timeout=ctx.args.timeout,
                         check_sha=ctx.sha256 if check else None, rel=rel)
    return run_once


def libtorrent_hybrid_setup(ctx):
    if not tt.lt_version():
        raise Unavailable("libtorrent not importable by %s" % PY)
    out = os.path.join(ctx.tmp, "lt-hybrid.torrent")
    code = ("import sys, os, libtorrent as lt\n"
            "fs = lt.file_storage(); lt.add_files(fs, sys.argv[1])\n"
            "ct = lt.create_torrent(fs, int(sys.argv[2]))\n"
            "lt.set_piece_hashes(ct, os.path.dirname(sys.argv[1]))\n"
            "open(sys.argv[3], 'wb').write(lt.bencode(ct.generate()))\n")
    r = subprocess.run([PY, "-c", code, ctx.data, str(ctx.piece_length), out],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise Unavailable("libtorrent could not make a hybrid: " + r.stderr.strip()[-300:])
    rel = tt.lt_first_path(out)
    save = ctx.data_parent if rel == "data/blob.bin" else ctx.data
    seed = tt.LtProc("seed", out, save)
    ctx.on_exit(seed.stop)
    seed.wait_event(lambda e: e["event"] == "status" and e.get("is_seeding"), 600)

    def run_once(tag, check):
        return tt.run_lt(ctx.tmp, out, seed, tag, ctx.size, timeout=ctx.args.timeout,
                         check_sha=ctx.sha256 if check else None, rel=rel)
    return run_once


def shoal_setup(fmt):
    """shoal -> shoal with a `share --format FMT` torrent, both daemons with
    encryption off (the peers here are plain too), on loopback; the leecher
    joins the seed's .torrent with --peer.  Each piece is made durable
    (fdatasync) before it counts, as always."""
    def setup(ctx):
        shoal = bl.shoal_binary(ctx.args.shoal)
        if not shoal:
            raise Unavailable("no shoal binary (build it: see bench/README.md)")
        seed = tt.ShoalSeed(shoal, ctx.tmp, "plain", ctx.data, fmt=fmt)
        ctx.on_exit(seed.stop)
        print("  shoal %s seed ready, piece length %d KiB" % (fmt, seed.piece_length // 1024))

        def run_once(tag, check):
            return tt.run_shoal(shoal, ctx.tmp, seed, tag, ctx.size, timeout=ctx.args.timeout,
                                check_sha=ctx.sha256 if check else None)
        return run_once
    return setup


add_contender("shoal-v1", shoal_setup("v1"))
add_contender("shoal-v2", shoal_setup("v2"))
add_contender("shoal-hybrid", shoal_setup("hybrid"))
add_contender("transmission", transmission_setup)
add_contender("libtorrent", libtorrent_setup)
add_contender("libtorrent-hybrid", libtorrent_hybrid_setup)

DESCRIBE = {
    "shoal-v1": "shoal -> shoal (v1, loopback, TCP, no encryption, durable pieces)",
    "shoal-v2": "shoal -> shoal (v2, loopback, TCP, no encryption, durable pieces)",
    "shoal-hybrid": "shoal -> shoal (hybrid: both hashes checked, loopback, no encryption)",
    "transmission": "Transmission 3.00 -> Transmission (v1, two namespaces, TCP, plain)",
    "libtorrent": "libtorrent %s -> libtorrent (v1, loopback, TCP, no encryption)",
    "libtorrent-hybrid": "libtorrent %s -> libtorrent (hybrid, loopback, TCP, no encryption)",
}


# ---------------------------------------------------------------- main

def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bl.data_set_args(ap)
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(n for n, _ in CONTENDERS))
    ap.add_argument("--piece-kib", type=int, default=1024, help="piece length of both torrents")
    ap.add_argument("--tr-cache-mb", type=int, default=4, help="Transmission's cache-size-mb (its default 4)")
    ap.add_argument("--timeout", type=float, default=600, help="bound on one download, seconds")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    m = bl.machine()
    size = bl.data_set_bytes(a)
    names = [n for n, _ in CONTENDERS]
    want = (a.only or ",".join(names)).split(",")
    unknown = [w for w in want if w not in names]
    if unknown:
        ap.error("unknown contender(s): %s" % ", ".join(unknown))

    tmp = tempfile.mkdtemp(prefix="shoal-bench-clients-", dir=a.tmp)
    ctx = Ctx(a, size, tmp)
    ltv = tt.lt_version()
    raw = {"size_bytes": size, "repeats": a.repeats, "piece_length": ctx.piece_length,
           "tmp": tmp, "libtorrent_version": ltv, "poll_seconds": 0.1,
           "runs": {n: [] for n in want}, "unavailable": {}}
    runners = []
    try:
        print("%s: writing %d MiB of random data" % (NAME, size // bl.MiB))
        sys.stdout.flush()
        ctx.sha256 = tt.make_data(ctx.blob, size)
        tt.warm(ctx.blob)
        for name, setup in CONTENDERS:
            if name not in want:
                continue
            try:
                runners.append((name, setup(ctx)))
            except Unavailable as e:
                raw["unavailable"][name] = str(e)
                print("  (%s: not available: %s)" % (name, e))
            sys.stdout.flush()
        if not runners:
            reason = "; ".join("%s: %s" % kv for kv in raw["unavailable"].items()) or "nothing to run"
            bl.write_result(out, NAME, "unavailable", reason=reason, quick=a.quick, m=m, raw=raw)
            print("%s: not available: %s" % (NAME, reason))
            return bl.EXIT_UNAVAILABLE
        for rep in range(a.repeats):
            tag = "r%d" % rep
            tt.warm(ctx.blob)
            for name, run_once in runners:
                res = run_once(tag, rep == 0)
                res["mbps"] = size / res["seconds"] / bl.MB
                raw["runs"][name].append(res)
                emit({"contender": name, "repeat": rep + 1, **res})
    except Exception as e:
        bl.write_result(out, NAME, "failed", reason="%s: %s" % (type(e).__name__, e),
                        quick=a.quick, m=m, raw=raw)
        print("%s: FAILED: %s" % (NAME, e))
        return bl.EXIT_FAILED
    finally:
        ctx.close()
        if not a.keep:
            bl.drop_tree(tmp)

    # ---------------------------------------------------------------- summary
    med = {}
    for name, _ in runners:
        runs = raw["runs"][name]
        med[name] = bl.median([r["mbps"] for r in runs])
        line = {"contender": name, "median_mbps": med[name], "repeats": len(runs),
                "median_seconds": bl.median([r["seconds"] for r in runs])}
        if any("first_byte_seconds" in r for r in runs):
            line["median_first_byte_seconds"] = bl.median([r.get("first_byte_seconds") for r in runs])
            line["median_mbps_after_first_byte"] = bl.median([r.get("mbps_after_first_byte")
                                                              for r in runs])
        emit(line)
    raw["summary"] = {"median_mbps": med}
    def desc(name):
        d = DESCRIBE.get(name, name)
        return d % (ltv or "?") if "%s" in d else d

    v1, v2, hy = med.get("shoal-v1"), med.get("shoal-v2"), med.get("shoal-hybrid")
    rows = []
    if v1 is not None and v2 is not None:
        r = bl.ratio(v1, v2)
        rows.append(bl.row("v1 transfer, shoal v1 vs shoal v2", v1, "MB/s", desc("shoal-v2"), v2,
                           ">= 0.9", (r >= 0.9) if r is not None else None))
    for name in ("transmission", "libtorrent"):
        if v1 is not None and name in med:
            r = bl.ratio(v1, med[name])
            rows.append(bl.row("v1 transfer, shoal vs %s" % name, v1, "MB/s", desc(name), med[name],
                               "> 1", (r > 1) if r is not None else None))
    if hy is not None and "libtorrent-hybrid" in med:
        r = bl.ratio(hy, med["libtorrent-hybrid"])
        rows.append(bl.row("hybrid transfer, shoal vs libtorrent", hy, "MB/s",
                           desc("libtorrent-hybrid"), med["libtorrent-hybrid"], "> 1",
                           (r > 1) if r is not None else None))
    if hy is not None and v2 is not None:
        rows.append(bl.row("hybrid transfer, shoal hybrid vs shoal v2", hy, "MB/s", desc("shoal-v2"),
                           v2, None, None, note="the cost of checking both hashes"))
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)

    print("\n%s: %d MiB, one seed -> one leecher, medians of %d (MB = 10^6 B)" % (
        NAME, size // bl.MiB, a.repeats))
    table = []
    for name, _ in runners:
        runs = raw["runs"][name]
        table.append([name, med[name], bl.median([r["seconds"] for r in runs]),
                      bl.median([r.get("first_byte_seconds") for r in runs]),
                      bl.median([r.get("mbps_after_first_byte") for r in runs]),
                      bl.median([r.get("leech_cpu_seconds") for r in runs]),
                      bl.median([r.get("seed_cpu_seconds") for r in runs])])
    print(bl.table(["contender", "MB/s", "seconds", "first byte s", "MB/s after first byte",
                    "leech CPU s", "seed CPU s"], table))
    for name, why in raw["unavailable"].items():
        print("(%s not measured: %s)" % (name, why))
    return bl.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
