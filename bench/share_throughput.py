#!/usr/bin/python3
"""share_throughput: how fast `shoal share` turns a directory into a v2 torrent.

Creates a directory of random data (1 GiB; --quick 256 MiB: a few large files
and some small ones), reads it once so every contender finds it in the page
cache, then measures in the same run, --repeats times each (median reported):

  raw      the single-core SHA-256 limit: bench/lib/sha256_raw.c (OpenSSL EVP,
           built at run time into OUT), streaming and per-16-KiB-block, and
           `openssl dgst -sha256` over the same files
  shoal    a fresh daemon per repeat: POST /api/v1/swarms {"share": DIR} until
           GET /api/v1/swarms/N says "seeding"; the daemon's CPU time and peak
           RSS (VmHWM, read before stopping it)
  lt       libtorrent (python3-libtorrent) creating a v2-only torrent of the same
           directory with the piece length shoal chose, in a child process

plus one `shoal share DIR` through the CLI (exit status, magnet) and a check
that shoal's info-hash equals libtorrent's.  Writes OUT/share_throughput.json.
Run with /usr/bin/python3 (Debian's, which has libtorrent).
"""
import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as bl  # noqa: E402

NAME = "share_throughput"


# ---------------------------------------------------------------- data set

def make_data(root, total):
    """A few large files and some small ones, `total` bytes of random data."""
    rng = random.Random(20260101)
    os.makedirs(os.path.join(root, "small"), exist_ok=True)
    small = []
    for i in range(48):                       # 48 small files, 1 KiB .. 256 KiB
        small.append(("small/s%02d.bin" % i, rng.randint(1024, 256 * 1024)))
    small.append(("small/empty.txt", 0))      # an empty file, which v2 leaves out of the hashing
    left = total - sum(s for _, s in small)
    # four large files, uneven sizes, none a multiple of the piece length
    parts = [0.40, 0.30, 0.20]
    large = []
    for i, p in enumerate(parts):
        sz = int(left * p) - rng.randint(0, 1 << 20)
        large.append(("large%d.bin" % i, sz))
    large.append(("large%d.bin" % len(parts), left - sum(s for _, s in large)))
    chunk = 4 << 20
    for rel, size in large + small:
        with open(os.path.join(root, rel), "wb") as f:
            n = size
            while n > 0:
                k = min(chunk, n)
                f.write(os.urandom(k))
                n -= k
    return [os.path.join(root, rel) for rel, _ in large + small]


def warm(files):
    """Read everything once so every contender starts from the page cache."""
    buf = bytearray(1 << 20)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


# ---------------------------------------------------------------- contenders

def build_raw(out):
    src = os.path.join(bl.BENCH_DIR, "lib", "sha256_raw.c")
    exe = os.path.join(out, "sha256_raw")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-o", exe, src, "-lcrypto"], capture_output=True, text=True)
    if r.returncode != 0:
        print("  (cannot build sha256_raw, falling back to openssl dgst only: %s)" %
              r.stderr.strip()[:300])
        return None
    return exe


def run_raw(exe, files, blocks=False):
    r = subprocess.run([exe] + (["-b"] if blocks else []) + files, capture_output=True,
                       text=True, check=True)
    d = json.loads(r.stdout)
    return {"seconds": d["seconds"], "cpu_seconds": d["cpu_seconds"], "bytes": d["bytes"]}


def run_openssl(files):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(["openssl", "dgst", "-sha256"] + files, stdout=subprocess.DEVNULL, check=True)
    t = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": t, "cpu_seconds": cpu}


def proc_cpu_seconds(pid):
    """utime + stime of a live process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid):
    """{tid: utime + stime} for every thread of a live process."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


class Unavailable(Exception):
    pass


def run_shoal(shoal, tmp, data_dir, tag, fmt="v2", poll=0.01, timeout=900):
    d = bl.Daemon(shoal, os.path.join(tmp, "daemon-" + tag)).start()
    try:
        idle_hwm = d.peak_rss_kib()
        cpu0 = proc_cpu_seconds(d.pid)
        thr0 = thread_cpu_seconds(d.pid)
        t0 = time.monotonic()
        status, doc = d.request("POST", "/api/v1/swarms", {"share": data_dir, "format": fmt})
        if status in (404, 405, 501):
            raise Unavailable("POST /api/v1/swarms {\"share\"} -> %s %s" % (
                status, (doc or {}).get("error", {}).get("message", "")))
        if status not in (200, 202):
            raise RuntimeError("POST /api/v1/swarms -> %s %s" % (status, doc))
        sid = doc["swarm"]["id"]
        polls, rates = 0, []
        while True:
            status, doc = d.request("GET", "/api/v1/swarms/%d" % sid)
            polls += 1
            sw = (doc or {}).get("swarm", doc) or {}
            state = sw.get("state")
            if state == "seeding":
                t = time.monotonic() - t0
                break
            if state == "error" or status != 200:
                raise RuntimeError("swarm %s: %s %s" % (sid, status, sw.get("error") or doc))
            if sw.get("work") and sw["work"].get("rate"):
                rates.append(sw["work"]["rate"])
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("swarm %s still %s after %ss" % (sid, state, timeout))
            time.sleep(poll)
        cpu = proc_cpu_seconds(d.pid) - cpu0
        thr1 = thread_cpu_seconds(d.pid)
        # CPU seconds each thread spent during the share, busiest first: shows
        # whether the hashing really spread over the workers, whatever the load.
        per_thread = sorted((thr1[t] - thr0.get(t, 0) for t in thr1), reverse=True)
        hwm = d.peak_rss_kib()
        res = {"seconds": t, "cpu_seconds": cpu, "peak_rss_kib": hwm, "idle_rss_kib": idle_hwm,
               "info_hash": sw.get("info_hash"), "piece_length": sw.get("piece_length"),
               "num_pieces": sw.get("num_pieces"), "num_files": sw.get("num_files"),
               "total_size": sw.get("total_size"), "torrent": sw.get("torrent"),
               "name": sw.get("name"), "polls": polls, "thread_cpu_seconds": per_thread,
               "work_rate_max": max(rates) if rates else None}
    finally:
        rc = d.stop()
    res["exit_code"] = rc
    return res


def run_shoal_cli(shoal, tmp, data_dir, fmt="v2"):
    """`shoal share DIR` through the CLI against a fresh daemon."""
    d = bl.Daemon(shoal, os.path.join(tmp, "daemon-cli")).start()
    try:
        t0 = time.monotonic()
        r = subprocess.run([shoal, "share", "--format", fmt, data_dir, "--data-dir", d.data_dir],
                           capture_output=True, text=True, timeout=900)
        t = time.monotonic() - t0
        hwm = d.peak_rss_kib()
    finally:
        d.stop()
    m = re.search(r"urn:btmh:1220([0-9a-fA-F]{64})", r.stdout)
    tor = re.search(r"(\S+\.torrent)\b", r.stdout)
    return {"seconds": t, "exit_code": r.returncode, "peak_rss_kib": hwm,
            "info_hash": m.group(1).lower() if m else None,
            "torrent": tor.group(1) if tor else None,
            "stdout": r.stdout[-1000:], "stderr": r.stderr[-1000:]}


LT_WORKER = r'''
import json, os, resource, sys, time
import libtorrent as lt
path, piece_len, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.monotonic(); r0 = resource.getrusage(resource.RUSAGE_SELF)
fs = lt.file_storage()
lt.add_files(fs, path)
# hybrid: libtorrent 2.0's default (v1 and v2 keys, SHA-1 and SHA-256)
ct = lt.create_torrent(fs, piece_len, flags=0 if fmt == "hybrid" else lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, os.path.dirname(path))
e = ct.generate()
t = time.monotonic() - t0; r1 = resource.getrusage(resource.RUSAGE_SELF)
info = lt.torrent_info(e)
ih = info.info_hashes()
hwm = anon = None
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1])
    if line.startswith("RssAnon:"):
        anon = int(line.split()[1])
print(json.dumps({"seconds": t,
                  "cpu_seconds": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                  "info_hash": ih.v2.to_bytes().hex() if ih.has_v2() else None,
                  "has_v1": ih.has_v1(), "piece_length": info.piece_length(),
                  "num_pieces": info.num_pieces(), "num_files": info.num_files(),
                  "peak_rss_kib": hwm, "rss_anon_kib": anon, "version": lt.__version__}))
'''


def run_libtorrent(path, piece_len, fmt="v2"):
    r = subprocess.run(["/usr/bin/python3", "-c", LT_WORKER, path, str(piece_len), fmt],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError("libtorrent worker failed: %s" % r.stderr.strip()[-800:])
    return json.loads(r.stdout)


def have_libtorrent():
    r = subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True)
    return r.returncode == 0


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bl.data_set_args(ap)
    ap.add_argument("--format", choices=("v2", "hybrid"), default="v2",
                    help="torrent format, for shoal and libtorrent alike (hybrid also hashes "
                         "SHA-1; its info-hashes differ: libtorrent pads the last file too)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    m = bl.machine()
    size = bl.data_set_bytes(a)

    shoal = bl.shoal_binary(a.shoal)
    if not shoal:
        bl.write_result(out, NAME, "unavailable", reason="no shoal binary (build it: see bench/README.md)",
                        quick=a.quick, m=m)
        print("share_throughput: not available: no shoal binary")
        return bl.EXIT_UNAVAILABLE

    tmp = tempfile.mkdtemp(prefix="shoal-bench-share-", dir=a.tmp)
    raw = {"format": a.format, "size_bytes": size, "repeats": a.repeats, "shoal_bin": shoal, "tmp": tmp,
           "raw_stream": [], "raw_blocks": [], "openssl_dgst": [], "shoal": [],
           "libtorrent": [], "cli": None}
    try:
        # Probe on a tiny directory first, so a missing feature costs seconds, not a GiB.
        probe = os.path.join(tmp, "probe")
        os.makedirs(probe)
        with open(os.path.join(probe, "a.bin"), "wb") as f:
            f.write(os.urandom(100000))
        try:
            run_shoal(shoal, tmp, probe, "probe")
        except Unavailable as e:
            bl.write_result(out, NAME, "unavailable", reason=str(e), quick=a.quick, m=m, raw=raw)
            print("share_throughput: not available: %s" % e)
            return bl.EXIT_UNAVAILABLE

        data = os.path.join(tmp, "bench-data")
        print("share_throughput: writing %d MiB of random data to %s" % (size // bl.MiB, data))
        sys.stdout.flush()
        files = sorted(make_data(data, size))
        nonempty = [p for p in files if os.path.getsize(p) > 0]
        total = sum(os.path.getsize(p) for p in files)
        raw["size_bytes"] = total
        raw["files"] = len(files)
        warm(files)

        exe = build_raw(out)
        lt_ok = have_libtorrent()
        if not lt_ok:
            print("  (libtorrent not importable by /usr/bin/python3: install python3-libtorrent)")
        for rep in range(a.repeats):
            warm(files)
            s = run_shoal(shoal, tmp, data, "r%d" % rep, a.format)
            raw["shoal"].append(s)
            if exe:
                raw["raw_stream"].append(run_raw(exe, nonempty))
                raw["raw_blocks"].append(run_raw(exe, nonempty, blocks=True))
            raw["openssl_dgst"].append(run_openssl(nonempty))
            if lt_ok:
                raw["libtorrent"].append(run_libtorrent(data, s["piece_length"], a.format))
            line = "  repeat %d: shoal %.2fs (%.0f MB/s, peak RSS %.1f MiB)" % (
                rep + 1, s["seconds"], total / s["seconds"] / bl.MB, s["peak_rss_kib"] / 1024)
            if raw["raw_stream"]:
                line += ", raw sha256 %.2fs" % raw["raw_stream"][-1]["seconds"]
            if raw["libtorrent"]:
                line += ", libtorrent %.2fs" % raw["libtorrent"][-1]["seconds"]
            print(line)
            sys.stdout.flush()
        raw["cli"] = run_shoal_cli(shoal, tmp, data, a.format)
        print("  shoal share (CLI): exit %s in %.2fs" % (raw["cli"]["exit_code"],
                                                        raw["cli"]["seconds"]))
    except Exception as e:  # a failed run still leaves its raw data behind
        bl.write_result(out, NAME, "failed", reason="%s: %s" % (type(e).__name__, e),
                        quick=a.quick, m=m, raw=raw)
        print("share_throughput: FAILED: %s" % e)
        return bl.EXIT_FAILED
    finally:
        if not a.keep:
            bl.drop_tree(tmp)

    # ---------------------------------------------------------------- summary
    def mbps(runs, key="seconds"):
        t = bl.median([r[key] for r in runs])
        return total / t / bl.MB if t else None

    shoal_mbps = mbps(raw["shoal"])
    shoal_cpu_mbps = mbps(raw["shoal"], "cpu_seconds")
    raw_src = raw["raw_stream"] or raw["openssl_dgst"]
    raw_name = "raw SHA-256, 1 core" + ("" if raw["raw_stream"] else " (openssl dgst)")
    raw_mbps = mbps(raw_src)
    raw_cpu_mbps = mbps(raw_src, "cpu_seconds")
    lt_mbps = mbps(raw["libtorrent"]) if raw["libtorrent"] else None
    rss_mib = bl.median([r["peak_rss_kib"] for r in raw["shoal"]]) / 1024
    rss_max = max(r["peak_rss_kib"] for r in raw["shoal"]) / 1024
    idle_mib = bl.median([r["idle_rss_kib"] for r in raw["shoal"]]) / 1024
    lt_rss = (bl.median([r["peak_rss_kib"] for r in raw["libtorrent"]]) / 1024
              if raw["libtorrent"] else None)
    shoal_ih = {r["info_hash"] for r in raw["shoal"]} | (
        {raw["cli"]["info_hash"]} if raw["cli"] and raw["cli"]["info_hash"] else set())
    lt_ih = {r["info_hash"] for r in raw["libtorrent"]}
    match = (len(shoal_ih) == 1 and shoal_ih == lt_ih) if lt_ih else None
    cli_ok = bool(raw["cli"] and raw["cli"]["exit_code"] == 0 and raw["cli"]["info_hash"])

    r_raw = bl.ratio(shoal_mbps, raw_mbps)
    r_lt = bl.ratio(shoal_mbps, lt_mbps)
    rows = [
        bl.row("share MB/s vs raw SHA-256", shoal_mbps, "MB/s", raw_name, raw_mbps,
               ">= 1.5", r_raw is not None and r_raw >= 1.5),
        bl.row("share MB/s vs libtorrent", shoal_mbps, "MB/s", "libtorrent %s create v2" % (
            raw["libtorrent"][0]["version"] if raw["libtorrent"] else ""), lt_mbps,
               "> 1", (r_lt > 1) if r_lt is not None else None),
        bl.row("share MB per CPU-second", shoal_cpu_mbps, "MB/cpu-s", "raw SHA-256 per CPU-s",
               raw_cpu_mbps, None, None, note="informational: less sensitive to a busy machine"),
        bl.row("share daemon peak RSS", rss_mib, "MiB", "libtorrent process peak RSS",
               lt_rss, "<= 32 MiB", rss_max <= 32, higher_is_better=False,
               note="libtorrent 2.0 mmaps the files, so its RSS counts page-cache pages; "
                    "see libtorrent_rss_anon_mib for its own heap"),
        bl.row("share info-hash = libtorrent's", match, "", None, None, "yes", match),
        bl.row("`shoal share` CLI exit 0 + magnet", cli_ok, "", None, None, "yes", cli_ok),
    ]
    raw["summary"] = {
        "total_bytes": total, "piece_length": raw["shoal"][0]["piece_length"],
        "shoal_mbps": shoal_mbps, "shoal_cpu_mbps": shoal_cpu_mbps,
        "raw_stream_mbps": mbps(raw["raw_stream"]) if raw["raw_stream"] else None,
        "raw_blocks_mbps": mbps(raw["raw_blocks"]) if raw["raw_blocks"] else None,
        "openssl_dgst_mbps": mbps(raw["openssl_dgst"]),
        "raw_cpu_mbps": raw_cpu_mbps, "libtorrent_mbps": lt_mbps,
        "libtorrent_cpu_mbps": mbps(raw["libtorrent"], "cpu_seconds") if raw["libtorrent"] else None,
        "shoal_peak_rss_mib_median": rss_mib, "shoal_peak_rss_mib_max": rss_max,
        "shoal_idle_rss_mib": idle_mib, "libtorrent_peak_rss_mib": lt_rss,
        "libtorrent_rss_anon_mib": (bl.median([r.get("rss_anon_kib") for r in raw["libtorrent"]])
                                    or 0) / 1024 if raw["libtorrent"] else None,
        "shoal_info_hash": sorted(shoal_ih), "libtorrent_info_hash": sorted(lt_ih),
        "info_hash_match": match, "cli_seconds": raw["cli"]["seconds"] if raw["cli"] else None,
    }
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)
    sm = raw["summary"]
    print("\nshare_throughput: %d MiB in %d files, piece length %s KiB, medians of %d" % (
        total // bl.MiB, raw["files"], (sm["piece_length"] or 0) // 1024, a.repeats))
    def cores(runs):   # CPU time / wall time: how many cores the contender kept busy
        return bl.median([r["cpu_seconds"] / r["seconds"] for r in runs]) if runs else None
    sm["shoal_cores_used"] = cores(raw["shoal"])
    # threads doing at least 20 % of the work: the hashing workers that took part
    sm["shoal_busy_threads"] = bl.median([
        sum(1 for c in r["thread_cpu_seconds"] if r["cpu_seconds"] and c >= 0.2 * r["cpu_seconds"])
        for r in raw["shoal"]])
    print(bl.table(["contender", "MB/s (wall)", "MB per CPU-s", "cores used", "peak RSS MiB"], [
        ["shoal share (daemon, API)", shoal_mbps, shoal_cpu_mbps, cores(raw["shoal"]), rss_mib],
        ["raw SHA-256 stream, 1 core", sm["raw_stream_mbps"],
         mbps(raw["raw_stream"], "cpu_seconds") if raw["raw_stream"] else None,
         cores(raw["raw_stream"]), None],
        ["raw SHA-256 16 KiB blocks", sm["raw_blocks_mbps"],
         mbps(raw["raw_blocks"], "cpu_seconds") if raw["raw_blocks"] else None,
         cores(raw["raw_blocks"]), None],
        ["openssl dgst -sha256", sm["openssl_dgst_mbps"], mbps(raw["openssl_dgst"], "cpu_seconds"),
         cores(raw["openssl_dgst"]), None],
        ["libtorrent create %s" % a.format, lt_mbps, sm["libtorrent_cpu_mbps"], cores(raw["libtorrent"]),
         lt_rss],
    ]))
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)
    print("shoal threads doing >= 20%% of its CPU work: %s (per-thread CPU s, last repeat: %s)" % (
        bl.fmt(sm["shoal_busy_threads"]),
        ", ".join("%.2f" % c for c in raw["shoal"][-1]["thread_cpu_seconds"][:4])))
    print("shoal idle RSS %.1f MiB; libtorrent anonymous RSS at the end %s MiB (its peak RSS "
          "counts the files it mmaps)" % (idle_mib, bl.fmt(sm["libtorrent_rss_anon_mib"])))
    print("info-hash match with libtorrent: %s  (shoal %s, libtorrent %s)" % (
        bl.fmt(match), ",".join(h[:16] for h in sorted(shoal_ih) if h),
        ",".join(h[:16] for h in sorted(lt_ih) if h)))
    return bl.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
