#!/usr/bin/python3
"""The daemon as a systemd service, without systemd as PID 1: the test plays
the service manager's parts itself (node/notify.c, common/log.c,
node/reload.c, dist/; docs/service.md).

Checked: with $NOTIFY_SOCKET (a real AF_UNIX datagram socket of the test,
by path and in the abstract namespace) the daemon sends READY=1 once its
API answers and api.addr names it, RELOADING=1 then READY=1 around a
SIGHUP, STOPPING=1 on SIGTERM; with $JOURNAL_STREAM naming its stderr
every line starts with a syslog priority (<6> info, <4> warn) and no
time, and with a stale one (another file) today's format stays; SIGHUP
applies shoal.conf's upload-limit, log-level and encryption at once, the
command line still wins over the file, a limit set through the API
survives a reload that did not touch it, a changed port is named in a
warning and kept, a broken shoal.conf changes nothing and is reported
with path:line; SIGTERM with a share on a working HTTP tracker and on
trackers that never answer (UDP and HTTP) exits 0 within 5 s, the HTTP
tracker hears "stopped", and after a restart the swarm seeds again
without re-hashing; the units built by make pass `systemd-analyze
verify` with no output and `systemd-analyze security --offline=yes`
under the exposure measured in docs/service.md.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (SHOAL, Checks, Daemon, TestDir, wait_for,  # noqa: E402
                           wait_state, write_file)
from fake_tracker import HttpTracker, UdpTracker  # noqa: E402

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) ")
# systemd-analyze security's overall exposure (0 safe .. 10 unsafe), as
# measured in docs/service.md (system unit 1.1, user unit 6.4), with a
# little room for a newer systemd weighing the settings differently.
MAX_EXPOSURE = {"shoal.service": 1.5, "user/shoal.service": 6.5}


class Manager:
    """The service manager's end of $NOTIFY_SOCKET: a datagram socket."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env = address if isinstance(address, str) else address.decode()
        if self.env.startswith("\0"):
            self.env = "@" + self.env[1:]
        self.messages = []

    def wait(self, key, timeout=15):
        """Read datagrams until one assigns KEY; returns its {key: value}
        or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append(fields)
            if key in fields:
                return fields
        return None

    def close(self):
        self.sock.close()


def log_lines(d, since=0):
    return d.log().splitlines()[since:]


def status(d):
    return d.api("GET", "/api/v1/status")


def write_conf(d, text):
    write_file(os.path.join(d.data_dir, "shoal.conf"), text.encode())


def hup_and_wait(d, c, mark, what):
    """SIGHUP; wait for the reload's last line (info "reloaded", or the
    error of a broken file) after log line `mark`."""
    d.proc.send_signal(signal.SIGHUP)
    ok = wait_for(what, lambda: any(("reloaded settings" in l or "reload: " in l and "keeping" in l)
                                    for l in log_lines(d, mark)), 10)
    c.check(bool(ok), what)
    return log_lines(d, mark)


def part_notify(c, tmp):
    # --- (1) readiness, reload and stop through $NOTIFY_SOCKET (a path)
    mgr = Manager(tmp.sub("notify.sock"))
    d = Daemon(tmp, "notify")
    os.makedirs(d.data_dir, exist_ok=True)
    # A stale JOURNAL_STREAM (inherited, pointing at another file) must not
    # switch the format: the check compares it with stderr itself.
    st = os.stat(tmp.sub("notify.sock"))
    d.start(expect_ok=False, env={"NOTIFY_SOCKET": mgr.env,
                                  "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
    ready = mgr.wait("READY")
    c.check(ready is not None and ready.get("READY") == "1", "READY=1 arrives on NOTIFY_SOCKET",
            mgr.messages)
    addr_file = os.path.join(d.data_dir, "api.addr")
    if not c.check(os.path.exists(addr_file), "api.addr is written when READY=1 arrives"):
        d.stop()
        return
    with open(addr_file) as f:
        d.api_addr = f.read().strip()
    with open(os.path.join(d.data_dir, "api.token")) as f:
        d.token = f.read().strip()
    st, doc, _ = d.request("GET", "/api/v1/status", timeout=5)
    c.check(st == 200 and doc and doc["transfer"]["running"],
            "the API answers at the moment READY=1 arrives", (st, doc))
    c.check("API http://%s/" % d.api_addr in (ready or {}).get("STATUS", ""),
            "READY=1 comes with a STATUS line naming the API", ready)

    d.proc.send_signal(signal.SIGHUP)
    reloading = mgr.wait("RELOADING", 10)
    c.check(reloading is not None and reloading["RELOADING"] == "1" and
            reloading.get("MONOTONIC_USEC", "").isdigit(),
            "SIGHUP: RELOADING=1 (with MONOTONIC_USEC)", mgr.messages[-3:])
    again = mgr.wait("READY", 10)
    c.check(again is not None, "SIGHUP: READY=1 again after the reload", mgr.messages[-3:])

    d.proc.send_signal(signal.SIGTERM)
    stopping = mgr.wait("STOPPING", 10)
    c.check(stopping is not None and stopping["STOPPING"] == "1", "SIGTERM: STOPPING=1",
            mgr.messages[-3:])
    c.equal(d.stop(), 0, "the daemon under a manager stops cleanly")
    lines = [l for l in log_lines(d) if l.strip()]
    c.check(lines and all(TEXT_LINE.match(l) for l in lines),
            "with a JOURNAL_STREAM naming another file the log keeps today's format "
            "(time, level, message)", lines[:3])
    mgr.close()


def part_journal(c, tmp):
    # --- (2) $JOURNAL_STREAM names stderr: <N> priorities, no time; and
    # the manager's socket in the abstract namespace.
    name = "\0shoal-test-%s" % uuid.uuid4().hex
    mgr = Manager(name)
    d = Daemon(tmp, "journal")
    # A data dir others may read makes the daemon warn (and tighten it).
    os.makedirs(d.data_dir, mode=0o755, exist_ok=True)
    os.chmod(d.data_dir, 0o755)
    open(d.log_path, "ab").close()
    st = os.stat(d.log_path)
    d.start(env={"NOTIFY_SOCKET": mgr.env, "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
    c.check(mgr.wait("READY") is not None, "READY=1 through an abstract NOTIFY_SOCKET (@name)")
    c.equal(d.stop(), 0, "the journal-format daemon stops cleanly")
    lines = [l for l in log_lines(d) if l.strip()]
    c.check(lines and all(re.match(r"^<[3467]>\S", l) for l in lines),
            "every line starts with a syslog priority <N>", lines[:3])
    c.check(any(l.startswith("<6>shoal ") and "running" in l for l in lines),
            "the start-up line is info: <6>", lines[:5])
    c.check(any(l.startswith("<4>") and "0700" in l for l in lines),
            "the data dir warning is warn: <4>", lines[:5])
    c.check(not any(TEXT_LINE.match(l) or re.search(r"\d\d:\d\d:\d\d\.\d{3}Z", l) for l in lines),
            "no timestamps in the journal format (journald adds its own)")
    mgr.close()


class ConfPortDaemon(Daemon):
    """A daemon whose peer port comes from shoal.conf, not --port (a flag
    would win over the file at every reload, as it does at start)."""

    def command(self):
        cmd = super().command()
        i = cmd.index("--port")
        del cmd[i:i + 2]
        return cmd


def part_reload(c, tmp):
    # --- (3) SIGHUP applies shoal.conf; flags win; restart-only keys warn
    d = ConfPortDaemon(tmp, "reload", ["--download-limit", "500K"])
    write_conf(d, "port = %d\n" % d.port)
    d.start()
    s = status(d)["transfer"]
    c.check(s["upload_limit"] == 0 and s["encryption"] == "prefer", "before: unlimited, prefer", s)
    new_port = d.port + 1 if d.port < 65535 else d.port - 1
    write_conf(d, "upload-limit = 1M\nlog-level = debug\ndownload-limit = 3M\n"
               "encryption = require\nport = %d\n" % new_port)
    mark = len(log_lines(d))
    lines = hup_and_wait(d, c, mark, "SIGHUP: the reload is logged")
    s = status(d)["transfer"]
    c.equal(s["upload_limit"], 1024 * 1024, "after SIGHUP the API shows shoal.conf's upload-limit")
    c.equal(s["encryption"], "require", "after SIGHUP encryption = require applies")
    c.equal(s["download_limit"], 500 * 1024,
            "the command line's --download-limit still wins over the file")
    c.equal(s["peer_port"], d.port, "the peer port keeps its running value")
    changed = [l for l in lines if "reloaded settings" in l]
    c.check(changed and "upload-limit" in changed[0] and "log-level" in changed[0] and
            "encryption" in changed[0] and "download-limit" not in changed[0],
            "one info line lists what changed", changed)
    warns = [l for l in lines if " warn " in l and "restart" in l]
    c.check(warns and "port" in warns[0] and "api-port" not in warns[0],
            "the changed port is named in a warning (restart needed)", warns)

    # A limit set through the API survives a reload of a file that did not
    # change it; the port still warns (it still differs from what runs).
    d.api("POST", "/api/v1/limits", {"upload": "2M"})
    mark = len(log_lines(d))
    lines = hup_and_wait(d, c, mark, "a second SIGHUP is logged")
    c.equal(status(d)["transfer"]["upload_limit"], 2 * 1024 * 1024,
            "a limit set through the API survives a reload that did not touch it")
    c.check(any("nothing changed" in l for l in lines) and
            any(" warn " in l and "port" in l for l in lines),
            "the second reload changes nothing and warns about the port again", lines)

    # A broken file: logged with path:line, nothing changes.
    write_conf(d, "upload-limit = 5M\nlog-level = error\nthis is not a setting\n")
    mark = len(log_lines(d))
    lines = hup_and_wait(d, c, mark, "a SIGHUP with a broken shoal.conf is logged")
    errs = [l for l in lines if " error " in l and "keeping the running settings" in l]
    c.check(errs and "shoal.conf:3:" in errs[0], "the error names shoal.conf:3", lines)
    s = status(d)["transfer"]
    c.check(s["upload_limit"] == 2 * 1024 * 1024 and s["encryption"] == "require",
            "a broken shoal.conf keeps every running setting (not even its first lines apply)", s)
    c.check(d.proc.poll() is None, "the daemon runs on after a broken reload")
    mark = len(log_lines(d))
    c.equal(d.stop(), 0, "the reloaded daemon stops cleanly")
    # log-level = debug from the first reload, kept through the broken one:
    # the DHT's save at shutdown is a debug line.
    c.check(any(" debug " in l and "DHT: saved" in l for l in log_lines(d, mark)),
            "debug lines appear after log-level = debug was reloaded (and kept)",
            log_lines(d, mark)[-5:])


def part_stop(c, tmp):
    # --- (4) SIGTERM: quick, "stopped" to the trackers, state saved
    http = HttpTracker(interval=1800)
    # Answers "started", then falls silent: "stopped" waits for it, up to
    # the shutdown's bound.  And one that never answered at all.
    mute_udp = UdpTracker(interval=1800)
    dead_udp = UdpTracker(mode="dead")
    d = Daemon(tmp, "stop", ["--no-dht", "--tracker-timeout", "10"]).start()
    src = tmp.sub("stop-content")
    write_file(os.path.join(src, "a.bin"), os.urandom(3 * 1024 * 1024 + 5))
    write_file(os.path.join(src, "b.txt"), b"stop me\n" * 1000)
    r = d.cli("share", src, "--json", "--tracker", http.url(), "--tracker", mute_udp.url(),
              "--tracker", dead_udp.url(), "--tracker", http.url("dead/announce"))
    if not c.check(r.returncode == 0, "shoal share with four tracker tiers", r.stderr):
        return
    sw = json.loads(r.stdout)
    sid = sw["id"]
    c.check(wait_for("started", lambda: "started" in http.swarms.events() and
                     "started" in mute_udp.swarms.events(), 10),
            "the HTTP and the UDP tracker heard started")
    c.check(wait_for("UDP tried", lambda: dead_udp.packets > 0, 10),
            "the dead UDP tracker was asked (and never answers)")
    mute_udp.mode = "dead"
    before = mute_udp.packets
    t0 = time.monotonic()
    rc = d.stop(timeout=10)
    took = time.monotonic() - t0
    c.check(rc == 0 and took < 5.0, "SIGTERM with trackers that do not answer: exit 0 in %.1f s "
            "(< 5 s)" % took, rc)
    c.check("stopped" in http.swarms.events(), "the HTTP tracker heard stopped",
            http.swarms.events())
    c.check(mute_udp.packets > before, "the UDP tracker that fell silent was sent stopped too")
    d.start()
    try:
        back = wait_state(d, sid, "seeding", timeout=30)
        c.check(True, "after a restart the swarm seeds again")
        c.equal((back.get("last_check") or {}).get("files_hashed"), 0,
                "the restart re-hashed no file (resume state was saved)")
    except AssertionError as e:
        c.check(False, "after a restart the swarm seeds again", str(e))
    c.equal(d.stop(), 0, "the restarted daemon stops cleanly")
    http.stop()
    mute_udp.stop()
    dead_udp.stop()


def part_units(c, tmp):
    # --- (5) the units make builds: verify and security
    analyze = shutil.which("systemd-analyze")
    built = os.path.join(os.path.dirname(os.path.abspath(SHOAL)), "dist")
    if not analyze:
        print("ok - # SKIP systemd-analyze is missing (Debian package systemd): units not checked")
        return
    daemon = os.path.join(os.path.dirname(os.path.abspath(SHOAL)), "shoal-daemon")
    runtime = tmp.sub("xdg-runtime")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    for rel, user in (("shoal.service", False), ("user/shoal.service", True)):
        src = os.path.join(built, rel)
        if not c.check(os.path.exists(src), "make built dist/%s" % rel):
            continue
        with open(src) as f:
            text = f.read()
        m = re.search(r"^ExecStart=(\S+)", text, re.M)
        c.check(m and m.group(1).startswith("/") and m.group(1).endswith("/shoal-daemon") and
                not re.search(r"@[a-z_]+@", text),
                "dist/%s: ExecStart names the installed shoal-daemon, nothing left to "
                "substitute" % rel, m and m.group(1))
        # verify checks that ExecStart's program exists: point it at this
        # build's daemon, in a copy.
        out_dir = tmp.sub("units", "user" if user else "system")
        os.makedirs(out_dir, exist_ok=True)
        unit = os.path.join(out_dir, "shoal.service")
        with open(unit, "w") as f:
            f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + daemon, text, flags=re.M))
        mode = ["--user"] if user else []
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)  # a user manager's, for --user
        v = subprocess.run([analyze] + mode + ["verify", unit], capture_output=True, text=True,
                           timeout=60, env=env)
        c.check(v.returncode == 0 and not v.stdout.strip() and not v.stderr.strip(),
                "systemd-analyze %sverify dist/%s: clean" % ("--user " if user else "", rel),
                (v.returncode, v.stdout, v.stderr))
        s = subprocess.run([analyze] + mode + ["security", "--offline=yes", unit],
                           capture_output=True, text=True, timeout=60, env=env)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", s.stdout)
        got = float(m.group(1)) if m else None
        c.check(got is not None and got <= MAX_EXPOSURE[rel],
                "systemd-analyze security --offline=yes dist/%s: exposure %s <= %.1f" % (
                    rel, got, MAX_EXPOSURE[rel]), s.stdout[-300:] + s.stderr[-300:])


def main():
    c = Checks("service")
    tmp = TestDir()
    part_notify(c, tmp)
    part_journal(c, tmp)
    part_reload(c, tmp)
    part_stop(c, tmp)
    part_units(c, tmp)
    return c.done()


if __name__ == "__main__":
    main()
