#!/usr/bin/python3
"""transfer_throughput: one seed to one leecher over loopback, shoal against libtorrent and nginx.

Writes one file of random data (1 GiB; --quick 256 MiB), reads it once so every
seed serves from the page cache, then measures in the same run, --repeats (3)
times each, interleaved so a noisy moment hits every contender (medians):

  shoal plain      seed and leecher daemons with --encryption off
  shoal encrypted  both with the default policy (prefer: shoal <-> shoal encrypts)
  libtorrent       libtorrent 2.0 -> libtorrent 2.0 (tests/interop/lt_peer.py, one
                   process each), the same v2 .torrent, TCP only (uTP off: ~35x
                   slower on loopback), encryption off
  nginx -> curl    nginx (unprivileged, foreground, own temp config, sendfile) on
                   127.0.0.1, curl to /dev/null: plain HTTP over the same loopback

Each seed is started (and its data hashed) once and serves every repeat; each
leecher is fresh (own data dir, empty download dir).  shoal's time runs from
`shoal join FILE.torrent --into DIR --peer 127.0.0.1:SEED` to the leecher's
API saying "seeding" (polled every 100 ms); libtorrent's from add_torrent to
is_seeding (polled every 50 ms inside the leecher process); curl's is its own
time_total.  Before each leecher starts, os.sync() writes back what the previous
one left dirty, so no contender pays for another's writeback.  MB = 10^6
bytes.  Every shoal process's peak RSS (VmHWM from /proc/PID/status, read
before it stops) and CPU time are recorded.

Reference line, measured in the same run (each repeat, interleaved with
the others): the disk's durable write rate, `dd if=/dev/zero
of=TMP/dd-rN.bin bs=1M count=<the data set's MiB> conv=fdatasync` into the
same temporary directory the downloads go to, os.sync() first like every
leecher; MB/s from the bytes and seconds dd prints (its own wall clock when
that line cannot be parsed).  A download is durable too (a piece is recorded
only once it is on disk), so this is the ceiling of shoal plain; the issue's
target is shoal plain / durable write >= 0.9.

Reference line: bench/aead_speed (the record layer's seal and open speed on
one core, each cipher, at shoal's 64 KiB records; built next to the shoal
binary as bench/aead_speed, or --aead-speed BIN; skipped when absent) runs
once before the transfers, so the encrypted figure can be read against what
its cipher costs.

Targets: shoal plain / libtorrent >= 1.5, shoal encrypted / libtorrent >= 1,
shoal plain / durable disk write >= 0.9,
every shoal process's peak RSS <= 64 MiB.
Run with /usr/bin/python3 (Debian's, which has libtorrent).
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import queue
import re
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import benchlib as bl  # noqa: E402

NAME = "transfer_throughput"
LT_PEER = os.path.join(bl.REPO, "tests", "interop", "lt_peer.py")
PY = "/usr/bin/python3"


class Unavailable(Exception):
    pass


def proc_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_data(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            b = os.urandom(k)
            h.update(b)
            f.write(b)
            left -= k
    return h.hexdigest()


def warm(path):
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(4 << 20)
        while f.readinto(buf):
            pass


# ---------------------------------------------------------------- shoal

def mode_args(mode):
    """Daemon flags of a contender: plain (no encryption), encrypted (the
    defaults: crypto threads "auto", none below 4 CPUs), encthreads
    (encrypted, records sealed and opened on one crypto thread each end:
    --crypto-threads 1)."""
    return {"plain": ["--encryption", "off"], "encrypted": [],
            "encthreads": ["--crypto-threads", "1"]}[mode]


class ShoalSeed:
    def __init__(self, shoal, tmp, mode, data_dir, fmt="v2"):
        """A seed daemon sharing data_dir in torrent format `fmt` (v2 here, so
        the figures stay comparable across runs; bench/client_throughput.py
        measures v1 and hybrid)."""
        args = mode_args(mode)
        self.mode = mode
        self.name = mode if fmt == "v2" else "%s-%s" % (mode, fmt)
        self.d = bl.Daemon(shoal, os.path.join(tmp, "shoal-seed-" + self.name), args).start()
        r = subprocess.run([shoal, "share", data_dir, "--format", fmt, "--data-dir", self.d.data_dir],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("shoal share: exit %s: %s" % (r.returncode, r.stderr.strip()))
        self.magnet, self.torrent = r.stdout.strip().split("\n")[:2]
        st, sw = self.d.request("GET", "/api/v1/swarms/1")
        self.piece_length = sw["piece_length"]
        self.cpu0 = proc_cpu_seconds(self.d.pid)

    def stop(self):
        info = {"peak_rss_kib": self.d.peak_rss_kib(), "cpu_seconds": proc_cpu_seconds(self.d.pid)}
        info["exit_code"] = self.d.stop()
        return info


def run_shoal(shoal, tmp, seed, tag, size, poll=0.1, timeout=300, check_sha=None):
    os.sync()   # the previous leecher's dirty pages are not written back on this one's time
    args = mode_args(seed.mode)
    d = bl.Daemon(shoal, os.path.join(tmp, "shoal-leech-%s-%s" % (seed.name, tag)), args).start()
    into = os.path.join(tmp, "shoal-out-%s-%s" % (seed.name, tag))
    os.makedirs(into)
    seed_cpu0 = proc_cpu_seconds(seed.d.pid)
    try:
        t0 = time.monotonic()
        r = subprocess.run([shoal, "join", seed.torrent, "--into", into, "--peer",
                            "127.0.0.1:%d" % seed.d.port, "--json", "--data-dir", d.data_dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("shoal join: exit %s: %s" % (r.returncode, (r.stderr or r.stdout)[-500:]))
        sid = json.loads(r.stdout)["swarm"]["id"]
        encrypted = None
        cipher = None
        polls = 0
        while True:
            st, sw = d.request("GET", "/api/v1/swarms/%s" % sid)
            polls += 1
            if sw["state"] == "seeding":
                break
            if sw["state"] == "error":
                raise RuntimeError("leecher swarm in error: %s" % sw.get("error"))
            if encrypted is None and sw["state"] == "downloading":
                st, peers = d.request("GET", "/api/v1/swarms/%s/peers" % sid)
                ps = (peers or {}).get("peers", [])
                if ps:
                    encrypted = all(p.get("encrypted") for p in ps)
                    cipher = ",".join(sorted({p.get("cipher") or "none" for p in ps}))
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("leecher not seeding after %ss: %s" % (timeout, sw))
            time.sleep(poll)
        secs = time.monotonic() - t0
        res = {"seconds": secs, "mbps": size / secs / bl.MB, "polls": polls,
               "encrypted": encrypted, "cipher": cipher, "bytes_have": sw.get("bytes_have"),
               "hash_failures": sw["transfer"]["hash_failures"],
               "leech_peak_rss_kib": d.peak_rss_kib(), "leech_cpu_seconds": proc_cpu_seconds(d.pid),
               "seed_cpu_seconds": (proc_cpu_seconds(seed.d.pid) or 0) - (seed_cpu0 or 0),
               "seed_peak_rss_kib_so_far": seed.d.peak_rss_kib()}
        if res["bytes_have"] != size:
            raise RuntimeError("leecher has %s bytes, want %d" % (res["bytes_have"], size))
        if check_sha:
            got = sha256_file(os.path.join(into, "data", "blob.bin"))
            res["sha256_ok"] = got == check_sha
            if got != check_sha:
                raise RuntimeError("shoal leecher's copy differs from the original")
        res["leech_exit_code"] = d.stop()
        return res
    finally:
        d.stop()
        bl.drop_tree(into)
        bl.drop_tree(d.data_dir)


# ---------------------------------------------------------------- libtorrent

class LtProc:
    """A tests/interop/lt_peer.py process; its stdout is one JSON event a line,
    drained by a thread so a full pipe can never stall it."""

    def __init__(self, role, torrent, save_path, connect=None):
        cmd = [PY, LT_PEER, role, "--torrent", torrent, "--save-path", save_path,
               "--encryption", "off", "--interval", "0.5"]
        if connect:
            cmd += ["--connect", connect]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        bl._started.append(self.proc)
        self.events = queue.Queue()
        self.tail = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = self.wait_event(lambda e: e["event"] == "listening", 60)["port"]

    def _drain(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.tail = (self.tail + [line.rstrip()])[-20:]
        self.events.put(None)

    def wait_event(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("lt_peer: no wanted event within %ss" % timeout)
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if e is None:
                raise RuntimeError("lt_peer exited (%s): %s" % (self.proc.poll(), "\n".join(self.tail)))
            if e.get("event") == "error":
                raise RuntimeError("lt_peer: %s" % e.get("message"))
            if pred(e):
                return e

    def stop(self):
        info = {"peak_rss_kib": bl.vm_hwm_kib(self.proc.pid),
                "cpu_seconds": proc_cpu_seconds(self.proc.pid)}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return info


def lt_version():
    r = subprocess.run([PY, "-c", "import libtorrent; print(libtorrent.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def lt_first_path(torrent):
    """Where libtorrent puts the torrent's first file, relative to its save path.
    (A v2 file tree holding a single file is a single-file torrent to
    libtorrent: it is saved as SAVE/blob.bin, not SAVE/<name>/blob.bin.)"""
    r = subprocess.run([PY, "-c", "import libtorrent as lt, sys; "
                        "print(lt.torrent_info(sys.argv[1]).files().file_path(0))", torrent],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def run_lt(tmp, torrent, seed, tag, size, timeout=300, check_sha=None, rel="data/blob.bin"):
    os.sync()
    into = os.path.join(tmp, "lt-out-" + tag)
    os.makedirs(into)
    seed_cpu0 = proc_cpu_seconds(seed.proc.pid)
    try:
        leech = LtProc("leech", torrent, into, connect="127.0.0.1:%d" % seed.port)
        try:
            e = leech.wait_event(lambda e: e["event"] == "finished", timeout)
        finally:
            info = leech.stop()
        secs = e["seconds"]
        res = {"seconds": secs, "mbps": size / secs / bl.MB, "failed_bytes": e.get("failed_bytes"),
               "leech_peak_rss_kib": info["peak_rss_kib"], "leech_cpu_seconds": info["cpu_seconds"],
               "seed_cpu_seconds": (proc_cpu_seconds(seed.proc.pid) or 0) - (seed_cpu0 or 0)}
        if check_sha:
            got = sha256_file(os.path.join(into, rel))
            res["sha256_ok"] = got == check_sha
            if got != check_sha:
                raise RuntimeError("libtorrent leecher's copy differs from the original")
        return res
    finally:
        bl.drop_tree(into)


# ---------------------------------------------------------------- nginx

def run_curl(curl, url, size):
    r = subprocess.run([curl, "-s", "-o", "/dev/null", "-w",
                        "%{time_total} %{size_download} %{http_code}", url],
                       capture_output=True, text=True, timeout=600)
    t, n, code = r.stdout.split()
    if code != "200" or int(n) != size:
        raise RuntimeError("curl: HTTP %s, %s bytes" % (code, n))
    secs = float(t)
    return {"seconds": secs, "mbps": size / secs / bl.MB}


# ---------------------------------------------------------------- main

def run_dd(tmp, tag, size):
    """One durable write of `size` bytes (rounded up to MiB) into `tmp` with
    dd conv=fdatasync; returns {"seconds", "bytes", "mbps", "source"}."""
    os.sync()
    path = os.path.join(tmp, "dd-%s.bin" % tag)
    count = (size + bl.MiB - 1) // bl.MiB
    t0 = time.monotonic()
    r = subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % count,
                        "conv=fdatasync"], capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    try:
        os.unlink(path)
    except OSError:
        pass
    if r.returncode != 0:
        raise RuntimeError("dd failed: %s" % r.stderr.strip()[-300:])
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.34567 s, 458 MB/s"
    res = {"bytes": count * bl.MiB, "seconds": wall, "source": "wall clock",
           "dd_line": (r.stderr.strip().splitlines() or [""])[-1]}
    m = re.match(r"(\d+) bytes .*copied, ([0-9.]+) s", res["dd_line"])
    if m and float(m.group(2)) > 0:
        res.update(bytes=int(m.group(1)), seconds=float(m.group(2)), source="dd")
    res["mbps"] = res["bytes"] / res["seconds"] / 1e6
    return res


def spread(xs):
    """"median of N: min-max" of a list of MB/s figures, for a row's note."""
    if not xs:
        return ""
    return "median of %d, range %.0f-%.0f MB/s" % (len(xs), min(xs), max(xs))


def aead_speed_binary(explicit, shoal):
    """bench/aead_speed: --aead-speed, else beside the shoal binary (its build dir)."""
    for cand in (explicit, os.path.join(os.path.dirname(shoal), "bench", "aead_speed")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def run_aead_speed(exe, mib):
    """One run of bench/aead_speed: its JSON line, or {"error": ...}."""
    try:
        r = subprocess.run([exe, "--mib", str(mib)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return {"error": "exit %s: %s" % (r.returncode, r.stderr.strip()[-300:])}
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bl.data_set_args(ap)
    ap.add_argument("--only", help="comma-separated subset of: plain,encrypted,encthreads,libtorrent,nginx,disk")
    ap.add_argument("--aead-speed", help="bench/aead_speed binary (default: beside the shoal binary)")
    ap.add_argument("--aead-mib", type=int, default=256, help="MiB per cipher for aead_speed (256)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    m = bl.machine()
    size = bl.data_set_bytes(a)
    want = set((a.only or "plain,encrypted,encthreads,libtorrent,nginx,disk").split(","))

    shoal = bl.shoal_binary(a.shoal)
    if not shoal:
        bl.write_result(out, NAME, "unavailable", reason="no shoal binary (build it: see bench/README.md)",
                        quick=a.quick, m=m)
        print("%s: not available: no shoal binary" % NAME)
        return bl.EXIT_UNAVAILABLE
    r = subprocess.run([shoal, "help", "join"], capture_output=True, text=True)
    if r.returncode != 0 or "--peer" not in r.stdout:
        reason = "this shoal has no `join --peer` (the transfer engine)"
        bl.write_result(out, NAME, "unavailable", reason=reason, quick=a.quick, m=m)
        print("%s: not available: %s" % (NAME, reason))
        return bl.EXIT_UNAVAILABLE

    tmp = tempfile.mkdtemp(prefix="shoal-bench-xfer-", dir=a.tmp)
    os.chmod(tmp, 0o755)            # nginx runs as nobody and must reach the data
    ltv = lt_version() if "libtorrent" in want else None
    aead_exe = aead_speed_binary(a.aead_speed, shoal)
    raw = {"size_bytes": size, "repeats": a.repeats, "shoal_bin": shoal, "tmp": tmp,
           "libtorrent_version": ltv, "poll_seconds": 0.1,
           "shoal_plain": [], "shoal_encrypted": [], "shoal_encthreads": [], "libtorrent": [], "nginx_curl": [],
           "disk_durable": [],
           "seeds": {}, "aead_speed": None}
    seeds = {}
    lt_seed = ngx = None
    try:
        data_parent = os.path.join(tmp, "src")
        data = os.path.join(data_parent, "data")
        blob = os.path.join(data, "blob.bin")
        print("%s: writing %d MiB of random data" % (NAME, size // bl.MiB))
        sys.stdout.flush()
        want_sha = make_data(blob, size)
        for p in (data_parent, data):
            os.chmod(p, 0o755)
        os.chmod(blob, 0o644)
        warm(blob)

        if aead_exe:
            raw["aead_speed"] = run_aead_speed(aead_exe, a.aead_mib)
            print("  aead_speed: %s" % json.dumps(raw["aead_speed"].get("ciphers", raw["aead_speed"])))
        else:
            print("  (no bench/aead_speed beside %s: cipher reference line skipped)" % shoal)
        sys.stdout.flush()

        t = time.monotonic()
        for mode in ("plain", "encrypted", "encthreads"):
            if mode in want or ("libtorrent" in want and not seeds):
                seeds[mode] = ShoalSeed(shoal, tmp, mode, data)
        print("  shoal seeds ready (hashed %d MiB each) in %.1fs, piece length %d KiB" % (
            size // bl.MiB, time.monotonic() - t, next(iter(seeds.values())).piece_length // 1024))
        torrent = next(iter(seeds.values())).torrent
        raw["piece_length"] = next(iter(seeds.values())).piece_length

        if "libtorrent" in want:
            if not ltv:
                print("  (libtorrent not importable by %s: skipped)" % PY)
                want.discard("libtorrent")
            else:
                lt_rel = lt_first_path(torrent)
                raw["libtorrent_path"] = lt_rel
                lt_save = data_parent if lt_rel == "data/blob.bin" else data
                lt_seed = LtProc("seed", torrent, lt_save)
                lt_seed.wait_event(lambda e: e["event"] == "status" and e.get("is_seeding"), 120)
                print("  libtorrent %s seed ready on port %d" % (ltv, lt_seed.port))
        if "nginx" in want:
            nginx, curl = bl.ensure_nginx()
            if not nginx or not curl:
                print("  (nginx or curl missing and not installable: skipped)")
                want.discard("nginx")
            else:
                ngx = bl.Nginx(nginx, tmp, data_parent)
                url = "http://127.0.0.1:%d/data/blob.bin" % ngx.port
                run_curl(curl, url, size)        # one unmeasured warm-up request
        sys.stdout.flush()

        for rep in range(a.repeats):
            tag = "r%d" % rep
            first = rep == 0
            warm(blob)
            line = []
            if "plain" in want:
                res = run_shoal(shoal, tmp, seeds["plain"], tag, size,
                                check_sha=want_sha if first else None)
                raw["shoal_plain"].append(res)
                line.append("shoal plain %.0f MB/s (%.2fs)" % (res["mbps"], res["seconds"]))
            if "encrypted" in want:
                res = run_shoal(shoal, tmp, seeds["encrypted"], tag, size,
                                check_sha=want_sha if first else None)
                raw["shoal_encrypted"].append(res)
                line.append("shoal encrypted %.0f MB/s%s (%s)" % (
                    res["mbps"], "" if res["encrypted"] else " (NOT ENCRYPTED?)", res.get("cipher")))
            if "encthreads" in want:
                res = run_shoal(shoal, tmp, seeds["encthreads"], tag, size)
                raw["shoal_encthreads"].append(res)
                line.append("shoal encrypted, 1 crypto thread %.0f MB/s" % res["mbps"])
            if "libtorrent" in want:
                res = run_lt(tmp, torrent, lt_seed, tag, size, check_sha=want_sha if first else None,
                             rel=lt_rel)
                raw["libtorrent"].append(res)
                line.append("libtorrent %.0f MB/s" % res["mbps"])
            if "nginx" in want:
                res = run_curl(curl, url, size)
                raw["nginx_curl"].append(res)
                line.append("nginx->curl %.0f MB/s" % res["mbps"])
            if "disk" in want:
                res = run_dd(tmp, tag, size)
                raw["disk_durable"].append(res)
                line.append("dd conv=fdatasync %.0f MB/s" % res["mbps"])
            print("  repeat %d: %s" % (rep + 1, ", ".join(line)))
            sys.stdout.flush()
    except Exception as e:
        bl.write_result(out, NAME, "failed", reason="%s: %s" % (type(e).__name__, e),
                        quick=a.quick, m=m, raw=raw)
        print("%s: FAILED: %s" % (NAME, e))
        return bl.EXIT_FAILED
    finally:
        for mode, s in seeds.items():
            raw["seeds"]["shoal_" + mode] = s.stop()
        if lt_seed:
            raw["seeds"]["libtorrent"] = lt_seed.stop()
        if ngx:
            ngx.stop()
        if not a.keep:
            bl.drop_tree(tmp)

    # ---------------------------------------------------------------- summary
    def med(key, field="mbps"):
        return bl.median([r[field] for r in raw[key]]) if raw[key] else None

    plain, enc, lt, ng = med("shoal_plain"), med("shoal_encrypted"), med("libtorrent"), med("nginx_curl")
    disk = med("disk_durable")
    encthreads = med("shoal_encthreads")
    r_enc_plain, r_threads = bl.ratio(enc, plain), bl.ratio(encthreads, enc)
    r_plain, r_enc = bl.ratio(plain, lt), bl.ratio(enc, lt)
    r_disk = bl.ratio(plain, disk)

    def mbps(key):
        return [r["mbps"] for r in raw[key]]
    rss = {}
    for mode in ("plain", "encrypted", "encthreads"):
        runs = raw["shoal_" + mode]
        if runs:
            rss["leech_" + mode] = max(r["leech_peak_rss_kib"] for r in runs) / 1024
        if "shoal_" + mode in raw["seeds"] and (raw["seeds"]["shoal_" + mode]["peak_rss_kib"]):
            rss["seed_" + mode] = raw["seeds"]["shoal_" + mode]["peak_rss_kib"] / 1024
    rss_max = max(rss.values()) if rss else None
    ltname = "libtorrent %s -> libtorrent (v2, TCP, no encryption)" % (ltv or "?")
    rows = [
        bl.row("transfer shoal plain vs libtorrent", plain, "MB/s", ltname, lt,
               ">= 1.5", (r_plain >= 1.5) if r_plain is not None else None),
        bl.row("transfer shoal encrypted vs libtorrent", enc, "MB/s", ltname, lt,
               ">= 1", (r_enc >= 1) if r_enc is not None else None),
        bl.row("transfer shoal encrypted vs shoal plain", enc, "MB/s", "shoal plain", plain,
               ">= 0.9", (r_enc_plain >= 0.9) if r_enc_plain is not None else None,
               note="encrypted %s; plain %s" % (spread(mbps("shoal_encrypted")), spread(mbps("shoal_plain")))),
        bl.row("transfer shoal encrypted, 1 crypto thread vs auto", encthreads, "MB/s",
               "shoal encrypted (auto)", enc, None, None,
               note="informational: what sealing and opening beside the loop buys; threads %s" %
               spread(mbps("shoal_encthreads"))),
        bl.row("transfer shoal plain vs nginx -> curl", plain, "MB/s", "nginx -> curl (HTTP, sendfile)",
               ng, None, None, note="informational: a plain TCP copy over the same loopback"),
        bl.row("transfer shoal plain vs durable disk write", plain, "MB/s",
               "dd bs=1M conv=fdatasync, same tmp dir", disk, ">= 0.9",
               (r_disk >= 0.9) if r_disk is not None else None,
               note="shoal %s; dd %s" % (spread(mbps("shoal_plain")), spread(mbps("disk_durable")))),
        bl.row("transfer shoal peak RSS (max of seeds and leechers)", rss_max, "MiB", None, None,
               "<= 64 MiB", (rss_max <= 64) if rss_max is not None else None,
               higher_is_better=False),
    ]
    ciphers = (raw.get("aead_speed") or {}).get("ciphers") or {}
    for name in ("xchacha20poly1305", "aes256gcm"):
        c = ciphers.get(name)
        for op in ("seal", "open") if c else ():
            rows.append(bl.row("record layer %s %s, one core, %d B records" % (
                name, op, raw["aead_speed"].get("record_bytes", 0)), c[op + "_mbps"], "MB/s",
                note="reference (bench/aead_speed): what the encrypted transfer's cipher costs" +
                ("; AES-256-GCM by %s" % raw["aead_speed"]["aes256gcm_backend"]
                 if name == "aes256gcm" and raw["aead_speed"].get("aes256gcm_backend") else "")))
    enc_ciphers = sorted({r.get("cipher") for r in raw["shoal_encrypted"] if r.get("cipher")})
    raw["summary"] = {"shoal_plain_mbps": plain, "shoal_encrypted_mbps": enc, "libtorrent_mbps": lt,
                      "encrypted_ciphers": enc_ciphers,
                      "nginx_curl_mbps": ng, "plain_over_lt": r_plain, "encrypted_over_lt": r_enc,
                      "disk_durable_mbps": disk, "plain_over_disk": r_disk,
                      "shoal_encthreads_mbps": encthreads, "encrypted_over_plain": r_enc_plain,
                      "thread_over_auto": r_threads,
                      "peak_rss_mib": rss}
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)

    def cpu_per_gb(key, who):
        xs = [r.get(who) for r in raw[key] if r.get(who) is not None]
        return bl.median(xs) / (size / 1e9) if xs else None

    print("\n%s: %d MiB, one seed -> one leecher on loopback, medians of %d (MB = 10^6 B)" % (
        NAME, size // bl.MiB, a.repeats))
    print(bl.table(["contender", "MB/s", "vs libtorrent", "leech CPU s/GB", "seed CPU s/GB",
                    "leech peak RSS MiB", "seed peak RSS MiB"], [
        ["shoal plain", plain, r_plain, cpu_per_gb("shoal_plain", "leech_cpu_seconds"),
         cpu_per_gb("shoal_plain", "seed_cpu_seconds"), rss.get("leech_plain"), rss.get("seed_plain")],
        ["shoal encrypted", enc, r_enc, cpu_per_gb("shoal_encrypted", "leech_cpu_seconds"),
         cpu_per_gb("shoal_encrypted", "seed_cpu_seconds"), rss.get("leech_encrypted"),
         rss.get("seed_encrypted")],
        ["shoal encrypted, 1 crypto thread", encthreads, bl.ratio(encthreads, lt),
         cpu_per_gb("shoal_encthreads", "leech_cpu_seconds"), cpu_per_gb("shoal_encthreads", "seed_cpu_seconds"),
         rss.get("leech_encthreads"), rss.get("seed_encthreads")],
        ["libtorrent -> libtorrent", lt, 1.0 if lt else None,
         cpu_per_gb("libtorrent", "leech_cpu_seconds"), cpu_per_gb("libtorrent", "seed_cpu_seconds"),
         bl.median([r["leech_peak_rss_kib"] for r in raw["libtorrent"]]) / 1024 if raw["libtorrent"] else None,
         (raw["seeds"].get("libtorrent") or {}).get("peak_rss_kib", 0) / 1024 if raw["libtorrent"] else None],
        ["nginx -> curl", ng, bl.ratio(ng, lt), None, None, None, None],
        ["dd conv=fdatasync (durable write)", disk, bl.ratio(disk, lt), None, None, None, None],
    ]))
    print("shoal plain / durable write rate: %s (target >= 0.9; dd %s)" % (
        bl.fmt(r_disk, 2) if r_disk is not None else "n/a", spread(mbps("disk_durable")) or "not run"))
    print("(libtorrent's RSS counts the file pages it mmaps; shoal's does not.)")
    return bl.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
