#!/usr/bin/python3
"""api_load: how much load the control API takes while the daemon stays small.

Starts a fresh daemon on loopback sharing four small directories, opens
--peers (200) peer connections to it (plain BitTorrent handshakes spread over
the four swarms, held open), then points `wrk` (Debian package `wrk`) at
GET /api/v1/status for --duration seconds (10) with --connections (4) over 2
threads, with the bearer token set by a small Lua script written to OUT.  The
Lua script's done() hook prints wrk's own summary as JSON, so nothing is
scraped from human-readable output.  Reports requests/s, latency p50/p99,
errors (socket errors and non-2xx/3xx answers), the daemon's CPU time per
request and its peak RSS (VmHWM, read before stopping it).
wrk and the daemon share the machine's cores: on 2 cores the figure is a
floor, not the daemon's ceiling.  Writes OUT/api_load.json.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as bl  # noqa: E402

NAME = "api_load"

LUA = r'''-- written by bench/api_load.py for one throwaway daemon
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Host"] = "%(host)s"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
      '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d, ' ..
      '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
'''


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hold_peers(d, tmp, n):
    """Share four directories on daemon `d` and open `n` peer connections to
    it, each through a plain BitTorrent handshake; returns the sockets."""
    hashes = []
    for i in range(4):
        src = os.path.join(tmp, "share%d" % i)
        os.makedirs(src)
        with open(os.path.join(src, "f"), "wb") as f:
            f.write(os.urandom(1 << 20))
        st, doc = d.request("POST", "/api/v1/swarms", {"share": src})
        if st not in (200, 202):
            raise RuntimeError("share -> %s %s" % (st, doc))
        sid = doc["swarm"]["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, sw = d.request("GET", "/api/v1/swarms/%d" % sid)
            if sw and sw.get("state") == "seeding":
                hashes.append(bytes.fromhex(sw["info_hash"])[:20])
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("share %d did not finish" % i)
    socks = []
    reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x10])
    for k in range(n):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        peer_id = b"-BENCH0-" + struct.pack(">I", k) + os.urandom(8)
        s.sendall(b"\x13BitTorrent protocol" + reserved + hashes[k % 4] + peer_id)
        got = b""
        while len(got) < 68:
            chunk = s.recv(68 - len(got))
            if not chunk:
                raise RuntimeError("peer %d: the daemon closed the connection" % k)
            got += chunk
        socks.append(s)
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="accepted for bench/run; same 10 s run")
    ap.add_argument("--out", default=bl.DEFAULT_OUT)
    ap.add_argument("--shoal")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--peers", type=int, default=200,
                    help="peer connections held open during the run (0 for none)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    m = bl.machine()

    shoal = bl.shoal_binary(a.shoal)
    wrk = shutil.which("wrk")
    if not shoal or not wrk:
        why = "no shoal binary" if not shoal else "wrk is not installed (apt-get install -y wrk)"
        bl.write_result(out, NAME, "unavailable", reason=why, quick=a.quick, m=m)
        print("api_load: not available: %s" % why)
        return bl.EXIT_UNAVAILABLE

    tmp = tempfile.mkdtemp(prefix="shoal-bench-api-")
    raw = {"duration_s": a.duration, "connections": a.connections, "threads": a.threads,
           "runs": [], "wrk": subprocess.run([wrk, "-v"], capture_output=True,
                                             text=True).stdout.strip().splitlines()[:1]}
    lua_path = os.path.join(out, "api_load.lua")
    try:
        for rep in range(a.repeats):
            d = bl.Daemon(shoal, os.path.join(tmp, "daemon%d" % rep)).start()
            try:
                st, doc = d.request("GET", "/api/v1/status")
                if st != 200:
                    raise RuntimeError("GET /api/v1/status -> %s %s" % (st, doc))
                with open(lua_path, "w") as f:
                    os.fchmod(f.fileno(), 0o600)
                    f.write(LUA % {"token": d.token, "host": d.api_addr})
                socks = hold_peers(d, tmp, a.peers) if a.peers else []
                st, doc = d.request("GET", "/api/v1/status")
                held = (doc or {}).get("transfer", {}).get("peers", 0)
                idle = d.peak_rss_kib()
                cpu0 = proc_cpu_seconds(d.pid)
                r = subprocess.run([wrk, "-t", str(a.threads), "-c", str(a.connections),
                                    "-d", "%ds" % a.duration, "--latency", "-s", lua_path,
                                    "http://%s/api/v1/status" % d.api_addr],
                                   capture_output=True, text=True, timeout=a.duration + 60)
                cpu = proc_cpu_seconds(d.pid) - cpu0
                hwm = d.peak_rss_kib()
                st_after, doc = d.request("GET", "/api/v1/status")
                held_after = (doc or {}).get("transfer", {}).get("peers", 0)
                for sk in socks:
                    sk.close()
            finally:
                rc = d.stop()
            js = [l for l in r.stdout.splitlines() if l.startswith("WRKJSON ")]
            if r.returncode != 0 or not js:
                raise RuntimeError("wrk failed (%s): %s %s" % (r.returncode, r.stdout[-500:],
                                                              r.stderr[-500:]))
            w = json.loads(js[-1][len("WRKJSON "):])
            w.update({"rps": w["requests"] / (w["duration_us"] / 1e6),
                      "errors": w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"],
                      "daemon_cpu_seconds": cpu, "peak_rss_kib": hwm, "idle_rss_kib": idle,
                      "alive_after": st_after == 200, "exit_code": rc,
                      "peers_held": held, "peers_held_after": held_after,
                      "wrk_text": r.stdout[-1500:]})
            raw["runs"].append(w)
            print("  run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, peak RSS %.1f MiB" % (
                rep + 1, w["rps"], w["p50_us"] / 1000, w["p99_us"] / 1000, w["errors"],
                hwm / 1024))
    except Exception as e:
        bl.write_result(out, NAME, "failed", reason="%s: %s" % (type(e).__name__, e),
                        quick=a.quick, m=m, raw=raw)
        print("api_load: FAILED: %s" % e)
        return bl.EXIT_FAILED
    finally:
        bl.drop_tree(tmp)
        try:
            os.unlink(lua_path)     # holds a (now dead) daemon's token
        except OSError:
            pass

    runs = raw["runs"]
    rps = bl.median([w["rps"] for w in runs])
    p50 = bl.median([w["p50_us"] for w in runs]) / 1000
    p99 = bl.median([w["p99_us"] for w in runs]) / 1000
    errors = sum(w["errors"] for w in runs)
    rss = max(w["peak_rss_kib"] for w in runs) / 1024
    cpu_per_req = bl.median([w["daemon_cpu_seconds"] / w["requests"] * 1e6 for w in runs
                             if w["requests"]])
    alive = all(w["alive_after"] for w in runs)
    held = min(min(w["peers_held"], w["peers_held_after"]) for w in runs)
    rows = [
        bl.row("API load: peer connections held during the run", held, "", None, None,
               ">= %d" % a.peers, held >= a.peers),
        bl.row("API GET /status requests/s (4 conns)", rps, "req/s"),
        bl.row("API latency p50", p50, "ms", higher_is_better=False),
        bl.row("API latency p99", p99, "ms", higher_is_better=False),
        bl.row("API daemon CPU per request", cpu_per_req, "us", higher_is_better=False),
        bl.row("API errors (socket + non-2xx)", errors, "", None, None, "0",
               errors == 0 and alive),
        bl.row("API daemon peak RSS under load", rss, "MiB", None, None, "<= 32 MiB", rss <= 32,
               higher_is_better=False),
    ]
    raw["summary"] = {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
                      "peak_rss_mib": rss, "daemon_cpu_us_per_request": cpu_per_req,
                      "alive_after": alive}
    bl.write_result(out, NAME, "ok", rows=rows, raw=raw, quick=a.quick, m=m)
    print("\napi_load: wrk -t%d -c%d -d%ds GET /api/v1/status, %d peer connections held" % (
        a.threads, a.connections, a.duration, held))
    print(bl.table(["requests/s", "p50 ms", "p99 ms", "errors", "daemon CPU us/req",
                    "peak RSS MiB"], [[rps, p50, p99, errors, cpu_per_req, rss]]))
    return bl.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
