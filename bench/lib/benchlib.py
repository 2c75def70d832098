"""benchlib: shared helpers for shoal's benchmarks (stdlib only).

Every benchmark script under bench/ uses this to find the shoal binary, start
daemons on loopback (own data dir, own ports, stopped by PID), describe the
machine, and write its result file OUT/<name>.json in one common shape that
bench/run summarises:

    {"benchmark": "share_throughput", "status": "ok" | "unavailable" | "failed",
     "reason": "...",                      # why unavailable / failed
     "quick": true, "machine": {...},
     "rows": [ {"metric": "...", "shoal": 1.0, "reference": "raw SHA-256",
                "ref_value": 2.0, "ratio": 0.5, "unit": "MB/s",
                "target": ">= 1.5", "met": false}, ... ],
     "raw": {...}}                          # every repeat, for anyone re-checking

Exit status of a benchmark script: 0 ok, 77 not available yet, 1 failed.
"""
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNAVAILABLE = 77

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH_DIR)
DEFAULT_OUT = os.path.join(BENCH_DIR, "out")
DEFAULT_BUILD = os.path.join(REPO, "_build", "bench")

MB = 1e6          # throughput is reported in MB/s = 10^6 bytes per second
MiB = 1 << 20

_started = []     # every process we start, so a crash still stops them by PID


def _stop_all():
    for proc in _started:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except Exception:
                pass


import atexit  # noqa: E402
atexit.register(_stop_all)


def _on_signal(signum, frame):
    _stop_all()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_s, _on_signal)


# ---------------------------------------------------------------- the binary

def data_set_args(ap):
    """The options of a benchmark that makes one data set of 1 GiB (256 MiB
    with --quick) and measures it --repeats times: share_throughput and
    transfer_throughput."""
    ap.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--shoal", help="shoal binary (default $SHOAL_BIN or _build/bench/shoal)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size-mib", type=int, help="data size (overrides --quick)")
    ap.add_argument("--tmp", default="/tmp", help="where the data set goes (removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")


def data_set_bytes(a):
    """The data set size those options ask for."""
    return (a.size_mib or (256 if a.quick else 1024)) * MiB


def shoal_binary(explicit=None):
    """The shoal binary to measure: --shoal, $SHOAL_BIN, or _build/bench/shoal."""
    for cand in (explicit, os.environ.get("SHOAL_BIN"), os.path.join(DEFAULT_BUILD, "shoal")):
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None


# ---------------------------------------------------------------- machine

def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def machine():
    cpu = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags = line
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        load = os.getloadavg()
    except OSError:
        load = (0, 0, 0)
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    rev = cmd("git", "-C", REPO, "rev-parse", "--short", "HEAD")
    dirty = cmd("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--",
                ".", ":!bench")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "sha_ni": " sha_ni" in flags,
        "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "os": (_read("/etc/debian_version").strip() and "Debian " + _read("/etc/debian_version").strip())
              or platform.platform(),
        "openssl": cmd("openssl", "version").split(" (")[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_at_start": [round(x, 2) for x in load],
        "git": rev + (" (+ uncommitted changes outside bench/)" if dirty else ""),
    }


def machine_line(m):
    return ("%s, %s cores%s, %s GiB RAM, Linux %s, %s, %s, shoal %s, load %s" % (
        m["cpu"], m["cores"], " (SHA-NI)" if m.get("sha_ni") else "", m["memory_gib"],
        m["kernel"], m["os"], m["openssl"], m["git"],
        "/".join(str(x) for x in m["loadavg_at_start"])))


# ---------------------------------------------------------------- processes

def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def vm_hwm_kib(pid):
    """Peak resident set size (VmHWM) of a live process, in KiB, or None."""
    for line in _read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


class Daemon:
    """One shoal daemon on loopback with its own data dir and ports."""

    def __init__(self, shoal, data_dir, args=(), prefix=(), api_bind=None):
        """prefix: a command to run the daemon under (bench/lib/netlab.py's
        `ip netns exec NS` for a daemon in a namespace); api_bind: the API's
        address (--api-bind) when 127.0.0.1 of its namespace is not ours."""
        self.shoal = shoal
        self.data_dir = data_dir
        self.port = free_port()
        self.args = list(args)
        self.prefix = list(prefix)
        self.api_bind = api_bind
        self.proc = None
        self.log_path = data_dir + ".log"
        self.api_addr = None
        self.token = None

    def start(self, timeout=20):
        os.makedirs(os.path.dirname(self.data_dir) or ".", exist_ok=True)
        log = open(self.log_path, "ab")
        bind = ["--api-bind", self.api_bind] if self.api_bind else []
        self.proc = subprocess.Popen(
            self.prefix +
            [self.shoal, "daemon", "--data-dir", self.data_dir, "--port", str(self.port),
             "--api-port", "0", "--bootstrap", "", "--no-lsd", "--no-port-mapping"] + bind +
            self.args,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _started.append(self.proc)
        addr_file = os.path.join(self.data_dir, "api.addr")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %s: %s" % (self.proc.returncode,
                                                                 self.log()[-2000:]))
            if os.path.exists(addr_file):
                with open(addr_file) as f:
                    self.api_addr = f.read().strip()
                with open(os.path.join(self.data_dir, "api.token")) as f:
                    self.token = f.read().strip()
                if self.api_addr and self.token:
                    return self
            time.sleep(0.02)
        raise RuntimeError("daemon did not publish its API within %ss" % timeout)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return _read(self.log_path)

    def request(self, method, path, body=None, timeout=60):
        """(status, parsed JSON or None)."""
        host, port = self.api_addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
        h = {"Host": self.api_addr, "Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, (json.loads(text) if text else None)
        except ValueError:
            return resp.status, None

    def peak_rss_kib(self):
        return vm_hwm_kib(self.proc.pid)

    def stop(self, timeout=20):
        """SIGTERM by PID, wait; SIGKILL if it does not stop. Returns exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None


# ---------------------------------------------------------------- nginx

NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen {listen}:{port};
        root {root};
    }}
}}
"""


def ensure_nginx():
    """(nginx, curl) paths; as root, installs nginx-light and curl if missing."""
    missing = [b for b in ("nginx", "curl") if not (shutil.which(b) or os.path.exists("/usr/sbin/" + b))]
    if missing and os.geteuid() == 0:
        print("  installing nginx-light curl (apt-get) ...")
        sys.stdout.flush()
        subprocess.run(["apt-get", "install", "-y", "nginx-light", "curl"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    curl = shutil.which("curl")
    return nginx, curl


class Nginx:
    """nginx in the foreground with its own config and temp dirs under
    WORK/nginx (no system service), serving `root`, stopped by PID.

    listen: the address it listens on; probe: the address this process
    connects to to see it listening (the same by default; a namespaced nginx
    listens on every address and is probed over the management link);
    prefix: a command it runs under (`ip netns exec NS`)."""

    def __init__(self, nginx, work, root, listen="127.0.0.1", probe=None, prefix=()):
        import grp
        import pwd
        self.dir = os.path.join(work, "nginx")
        os.makedirs(self.dir)
        self.port = free_port()
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=self.dir, port=self.port, root=root, listen=listen))
        pre = list(prefix)
        if os.geteuid() == 0:
            # Unprivileged: the whole server (master too) runs as nobody.
            uid = pwd.getpwnam("nobody").pw_uid
            gid = grp.getgrnam("nogroup").gr_gid
            os.chown(self.dir, uid, gid)
            pre += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--"]
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(pre + [nginx, "-p", self.dir, "-c",
                                            os.path.join(self.dir, "nginx.conf")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _started.append(self.proc)
        probe = probe or listen
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                logs = ""
                for name in ("stderr.log", "error.log"):
                    p = os.path.join(self.dir, name)
                    if os.path.exists(p):
                        logs += open(p, errors="replace").read()
                raise RuntimeError("nginx exited: " + logs[-800:])
            try:
                socket.create_connection((probe, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within 10 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)     # fast shutdown, by PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if not self.log.closed:
            self.log.close()


# ---------------------------------------------------------------- numbers

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def row(metric, shoal, unit, reference=None, ref_value=None, target=None, met=None,
        higher_is_better=True, note=None):
    r = {"metric": metric, "shoal": shoal, "unit": unit, "reference": reference,
         "ref_value": ref_value, "ratio": None, "target": target, "met": met}
    # The ratio is always shoal / reference; higher_is_better only records how
    # to read it (for RSS or latency, below 1 is good).
    if ref_value is not None and shoal is not None and not isinstance(shoal, bool):
        r["ratio"] = ratio(shoal, ref_value)
    r["higher_is_better"] = higher_is_better
    if note:
        r["note"] = note
    return r


def write_result(out_dir, name, status, rows=(), raw=None, reason=None, quick=False, m=None):
    os.makedirs(out_dir, exist_ok=True)
    doc = {"benchmark": name, "status": status, "reason": reason, "quick": quick,
           "machine": m or machine(), "rows": list(rows), "raw": raw or {}}
    path = os.path.join(out_dir, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


def fmt(x, digits=None):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if digits is None:
            digits = 2 if abs(x) < 10 else (1 if abs(x) < 1000 else 0)
        return "%.*f" % (digits, x)
    return str(x)


def table(headers, rows):
    """Plain-text table, also valid Markdown."""
    cells = [[fmt(c) for c in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
         for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |"
    out = [line(headers), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def drop_tree(path):
    shutil.rmtree(path, ignore_errors=True)
