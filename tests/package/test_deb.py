#!/usr/bin/env python3
"""test_deb: build shoal's Debian package from the release tarball, install
it on this machine, run it as the packaged user, and purge it.

    test_deb.py [TARBALL]

TARBALL is what `make dist` (or `make distcheck`) wrote; without one, the
newest shoal-*.tar.gz in the current directory, else `make dist` there.
The build happens in a temporary directory from the unpacked tarball, never
in a developer's tree.  Needs root and changes the machine (a package, the
system user "shoal", /var/lib/shoal), so it refuses (exit 77) when it is not
root, when shoal is already installed, or when /var/lib/shoal already
exists; the user is deleted again at the end if this test created it.
scripts/test.sh runs it as its own leg after distcheck; it is not part of
`make check`.
"""
import atexit
import glob
import hashlib
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, free_port, wait_for  # noqa: E402
from systemd_ns import NsCannotRun, NsSystemd, NsUnavailable  # noqa: E402

STATE = "/var/lib/shoal"
BUILD_TIMEOUT = 1200
# Every file the package must carry: the programs, the dashboard, the
# manual pages, the system unit and the bash completion.  The user unit is
# checked by folder below (its name is the unit's business).
EXPECTED = [
    "/usr/bin/shoal",
    "/usr/bin/shoal-daemon",
    "/usr/share/shoal/web/index.html",
    "/usr/share/shoal/web/app.js",
    "/usr/share/man/man1/shoal.1.gz",
    "/usr/share/man/man1/shoal-daemon.1.gz",
    "/usr/share/man/man5/shoal.conf.5.gz",
    "/lib/systemd/system/shoal.service",
    "/usr/share/bash-completion/completions/shoal",
]
USER_UNIT_DIR = "/usr/lib/systemd/user/"


def skip(why):
    print("SKIP: test_deb: %s" % why)
    sys.exit(77)


def run(cmd, timeout, **kw):
    """Run cmd (a list), bounded; returns CompletedProcess with text output,
    or None when it timed out (said on stdout)."""
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        print("# timed out after %ss: %s" % (timeout, " ".join(cmd)))
        return None


def ok(res):
    return res is not None and res.returncode == 0


def tail(res, n=30):
    if res is None:
        return "(timed out)"
    return "\n# ".join([""] + res.stdout.splitlines()[-n:])


def installed():
    """Whether dpkg has shoal installed (any state but not-installed)."""
    res = run(["dpkg-query", "-W", "-f=${Status}", "shoal"], 30)
    return ok(res) and "not-installed" not in res.stdout and res.stdout.strip() != ""


def find_tarball():
    if len(sys.argv) > 1:
        return os.path.abspath(sys.argv[1])
    found = sorted(glob.glob("shoal-*.tar.gz"), key=os.path.getmtime)
    if found:
        return os.path.abspath(found[-1])
    if os.path.exists("Makefile"):
        res = run(["make", "-s", "dist"], 600)
        found = sorted(glob.glob("shoal-*.tar.gz"), key=os.path.getmtime)
        if ok(res) and found:
            return os.path.abspath(found[-1])
        print("# make dist failed:%s" % tail(res))
    print("test_deb: no tarball: pass one, or run in a build directory")
    sys.exit(2)


def journal(sd):
    """shoal.service's journal entries as (PRIORITY, MESSAGE, SYSLOG_IDENTIFIER)
    triples.  The namespace's journal lives in its own /run (systemd_ns.py),
    so it holds this boot's entries only."""
    res = sd.run(["journalctl", "-u", "shoal", "-o", "json", "--no-pager"], 30)
    out = []
    for line in (res.stdout.splitlines() if res else []):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        msg = j.get("MESSAGE")
        if isinstance(msg, str):
            out.append((j.get("PRIORITY"), msg, j.get("SYSLOG_IDENTIFIER")))
    return out


def under_systemd(c, pw):
    """The packaged unit under the service manager it is written for: a
    systemd booted as PID 1 of namespaces this test makes (systemd_ns.py)."""
    sd = NsSystemd(writable=[STATE])
    try:
        sd.start()
    except NsCannotRun as e:
        print("ok - # SKIP no systemd can boot here (%s): the unit is not run" % e)
        return
    except NsUnavailable as e:
        c.check(False, "a systemd boots as PID 1 of the test's namespaces", str(e))
        return
    try:
        c.check(True, "a systemd boots as PID 1 of the test's namespaces")
        t0 = time.monotonic()
        res = sd.run(["systemctl", "start", "shoal"], 60)
        c.check(ok(res), "systemctl start shoal (Type=notify: returns once READY=1 came)",
                tail(res))
        res = sd.run(["systemctl", "show", "shoal", "-p", "ActiveState", "-p", "StatusText",
                      "-p", "MainPID", "-p", "User"], 30)
        props = dict(l.split("=", 1) for l in (res.stdout.splitlines() if res else []) if "=" in l)
        c.check(props.get("ActiveState") == "active" and
                props.get("StatusText", "").startswith("running:"),
                "active, with the daemon's STATUS= text", "(%r, %.1f s)" % (props, time.monotonic() - t0))
        main_pid = props.get("MainPID", "0")
        res = sd.run(["cat", "/proc/%s/status" % main_pid], 10)
        uid = [l.split()[1] for l in (res.stdout.splitlines() if res else []) if l.startswith("Uid:")]
        c.equal(uid, [str(pw.pw_uid)], "the service runs as the user shoal")

        cli = ["runuser", "-u", "shoal", "--", "shoal", "--data-dir", STATE]
        res = sd.run(cli + ["status", "--json"], 30)
        try:
            st = json.loads(res.stdout) if ok(res) else {}
        except ValueError:
            st = {}
        c.check(st.get("node", {}).get("data_dir") == STATE,
                "shoal status --json answers from the service, data dir %s" % STATE, tail(res))

        # Work inside the sandbox: share a directory under the state dir
        # (hashing on the workers, fdatasync, SQLite), then a plain daemon
        # in the same network namespace downloads it from the service.
        src = os.path.join(STATE, "share-src")
        os.makedirs(src)
        payload = os.urandom(3 * 1024 * 1024 + 12345)
        with open(os.path.join(src, "data.bin"), "wb") as f:
            f.write(payload)
        for root, dirs, files in os.walk(src):
            for n in [root] + [os.path.join(root, x) for x in files]:
                os.chown(n, pw.pw_uid, pw.pw_gid)
        res = sd.run(cli + ["share", src, "--json"], 120)
        try:   # stdout and stderr come merged: the JSON is the object in it
            out = res.stdout if ok(res) else ""
            shared = json.loads(out[out.index("{"):out.rindex("}") + 1])
        except ValueError:
            shared = {}
        magnet = shared.get("magnet", "")
        c.check(magnet.startswith("magnet:?"), "the service shares a directory", tail(res))
        leech_dir = "/tmp/shoal-leech"   # the namespace's own /tmp
        # Started in the background inside the namespace, its pid kept:
        # nsenter passes no signal on, so it is stopped by that pid there.
        res = sd.run(["sh", "-c", "shoal-daemon --data-dir %s --port %d --api-port %d "
                      "--bootstrap '' --no-lsd --no-port-mapping </dev/null >%s.log 2>&1 & "
                      "echo $!" % (leech_dir, free_port(), free_port(), leech_dir)], 30)
        leech_pid = res.stdout.strip() if ok(res) else ""
        c.check(leech_pid.isdigit(), "a plain daemon starts beside the service", tail(res))
        try:
            up = wait_for("the leecher's API", lambda: ok(sd.run(
                ["test", "-e", leech_dir + "/api.addr"], 10)), 30)
            res = sd.run(["shoal", "--data-dir", leech_dir, "join", magnet, "--peer",
                          "127.0.0.1:6881", "--into", leech_dir + "/dl", "--wait"], 120) \
                if up and magnet else None
            c.check(ok(res), "a daemon beside it downloads the share from the service", tail(res))
            res = sd.run(["sha256sum", "%s/dl/share-src/data.bin" % leech_dir], 30)
            c.check(ok(res) and res.stdout.split()[:1] == [hashlib.sha256(payload).hexdigest()],
                    "... byte for byte", tail(res))
        finally:
            if leech_pid.isdigit():
                sd.run(["kill", leech_pid], 10)
                gone = wait_for("the plain daemon's exit", lambda: not ok(sd.run(
                    ["kill", "-0", leech_pid], 10)), 20)
                c.check(gone, "... and stops on SIGTERM")

        # systemctl reload: SIGHUP applies a new limit, warns that the port
        # waits for a restart; journald keeps the levels (<N> prefixes).
        conf = os.path.join(STATE, "shoal.conf")
        with open(conf, "w") as f:
            f.write("upload-limit = 1M\nport = 6999\n")
        os.chown(conf, pw.pw_uid, pw.pw_gid)
        res = sd.run(["systemctl", "reload", "shoal"], 30)
        c.check(ok(res), "systemctl reload shoal", tail(res))
        got = wait_for("the reload in the journal", lambda: [
            m for p, m, _ in journal(sd) if "reloaded settings" in m], 15)
        c.check(got and "changed upload-limit" in got[0], "the reload applies upload-limit live",
                "(%r)" % got)
        entries = journal(sd)
        c.check(any(p == "4" and "port changed" in m for p, m, _ in entries),
                "journald keeps the warning that port waits for a restart at priority 4",
                "(%r)" % [e for e in entries if "port" in e[1]])
        c.check(any(p == "6" and "running: data dir" in m for p, m, _ in entries),
                "... and info lines at priority 6, without our time stamp",
                "(%r)" % entries[:5])
        c.check(not any(re.match(r"^<\d>|^\d{4}-\d\d-\d\dT", m) for _, m, _ in entries),
                "no line carries a <N> prefix or a time stamp into the journal")

        res = sd.run(["systemd-analyze", "security", "shoal", "--no-pager"], 60)
        m = re.search(r"Overall exposure level for shoal.service: ([0-9.]+)", res.stdout if res else "")
        c.check(m is not None and float(m.group(1)) <= 2.0,
                "systemd-analyze security of the running unit: exposure <= 2.0",
                "(%s)" % (m.group(1) if m else tail(res)))

        t0 = time.monotonic()
        res = sd.run(["systemctl", "stop", "shoal"], 30)
        took = time.monotonic() - t0
        res2 = sd.run(["systemctl", "show", "shoal", "-p", "ActiveState", "-p", "Result",
                       "-p", "ExecMainStatus"], 30)
        props = dict(l.split("=", 1) for l in (res2.stdout.splitlines() if res2 else []) if "=" in l)
        if not c.check(ok(res) and took < 5.0 and props.get("ActiveState") == "inactive" and
                       props.get("Result") == "success" and props.get("ExecMainStatus") == "0",
                       "systemctl stop shoal: inactive, success, exit 0, in under 5 s",
                       "(%.1f s, %r)" % (took, props)):
            print("# " + "\n# ".join("<%s> %s (%s)" % e for e in journal(sd)[-25:]))
        ours = [m for _, m, ident in journal(sd) if ident == "shoal-daemon"]
        c.check(ours and ours[-1].startswith("stopped cleanly"),
                "the daemon's last journal line is 'stopped cleanly'", "(%r)" % ours[-3:])
    finally:
        sd.stop()
        for n in ("share-src", "shoal.conf"):
            p = os.path.join(STATE, n)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.exists(p):
                os.unlink(p)


def main():
    if os.geteuid() != 0:
        skip("needs root (installs a package and creates a system user)")
    for tool in ("dpkg-buildpackage", "lintian", "apt-get", "runuser", "fakeroot", "dh"):
        if not shutil.which(tool):
            skip("%s is not installed (scripts/deps.sh installs it)" % tool)
    if installed():
        skip("a shoal package is already installed; this test installs and purges its own")
    if os.path.lexists(STATE):
        skip("%s exists already; this test would remove files from it" % STATE)
    tarball = find_tarball()
    try:
        pwd.getpwnam("shoal")
        user_before = True
    except KeyError:
        user_before = False

    c = Checks("test_deb")
    tmp = tempfile.mkdtemp(prefix="shoal-deb-")
    we_installed = [False]

    def cleanup():
        # Never leave our package or user behind, even when a check failed
        # half-way; an aborted test must not make the next one refuse.
        if we_installed[0] and installed():
            run(["dpkg", "--purge", "shoal"], 120)
        if not user_before:
            try:
                pwd.getpwnam("shoal")
                run(["userdel", "shoal"], 30)
            except KeyError:
                pass
            run(["groupdel", "shoal"], 30)
        if os.path.isdir(STATE):
            shutil.rmtree(STATE, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    atexit.register(cleanup)

    # Build from the unpacked tarball: what the release carries must be
    # enough (debian/ included: Makefile.am's EXTRA_DIST).
    res = run(["tar", "-xzf", tarball, "-C", tmp], 120)
    c.check(ok(res), "the tarball unpacks", tail(res))
    tops = [d for d in glob.glob(os.path.join(tmp, "shoal-*")) if os.path.isdir(d)]
    if not c.check(len(tops) == 1 and os.path.isfile(os.path.join(tops[0], "debian", "rules")),
                   "the tarball carries debian/"):
        c.done()
    src = tops[0]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    env.pop("MAKEFLAGS", None)  # a parent make's jobserver is not ours
    env.pop("MFLAGS", None)
    start = time.monotonic()
    res = run(["dpkg-buildpackage", "-b", "-us", "-uc", "-j2"], BUILD_TIMEOUT, cwd=src, env=env)
    print("# dpkg-buildpackage took %.0f s" % (time.monotonic() - start))
    debs = glob.glob(os.path.join(tmp, "shoal_*.deb"))
    if not c.check(ok(res) and len(debs) == 1, "dpkg-buildpackage -b builds one shoal .deb",
                   tail(res, 60)):
        c.done()
    deb = debs[0]
    changes = glob.glob(os.path.join(tmp, "shoal_*.changes"))

    # lintian over the .changes checks the .deb, the -dbgsym .deb and the
    # .buildinfo.  Warnings are printed for people to read; errors fail.
    res = run(["lintian", "--pedantic"] + changes, 600)
    lines = res.stdout.splitlines() if res else []
    for line in lines:
        if re.match(r"^[WIPXO]: ", line):
            print("# lintian: %s" % line)
    errors = [line for line in lines if line.startswith("E: ")]
    c.check(res is not None and not errors and res.returncode in (0, 1) and len(changes) == 1,
            "lintian: no errors", "\n# ".join([""] + errors + lines[-5:]))

    # Install as a user would, with apt resolving the dependencies.
    res = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb], 600, env=env)
    we_installed[0] = True
    if not c.check(ok(res) and installed(), "apt-get installs the .deb", tail(res)):
        c.done()
    res = run(["dpkg-query", "-L", "shoal"], 30)
    listed = res.stdout.split("\n") if ok(res) else []
    listed = [p for p in listed if p.startswith("/")]
    for path in EXPECTED:
        c.check(os.path.isfile(path) and path in listed, "packaged and installed: %s" % path)
    c.check(any(p.startswith(USER_UNIT_DIR) and p.endswith(".service") for p in listed),
            "packaged: a user unit in %s" % USER_UNIT_DIR)
    c.check(os.access("/usr/bin/shoal", os.X_OK) and os.access("/usr/bin/shoal-daemon", os.X_OK),
            "both programs are executable")
    # Installed, but not enabled: a node joins the public DHT (README).
    c.check(not glob.glob("/etc/systemd/system/*.wants/shoal.service"),
            "the system unit is not enabled by the install")

    try:
        pw = pwd.getpwnam("shoal")
    except KeyError:
        pw = None
    if not c.check(pw is not None, "postinst made the user shoal"):
        c.done()
    c.check(pw.pw_dir == STATE and pw.pw_uid < 1000, "shoal is a system user at home in %s" % STATE,
            "(%r)" % (pw,))
    st = os.stat(STATE) if os.path.isdir(STATE) else None
    c.check(st is not None and st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700,
            "%s belongs to shoal, mode 0700" % STATE)

    res = run(["shoal", "--version"], 30)
    c.check(ok(res) and re.match(r"^shoal \d+\.\d+", res.stdout or ""), "shoal --version",
            tail(res))

    # The packaged daemon as the packaged user, on loopback only.
    port, api_port = free_port(), free_port()
    log_path = os.path.join(tmp, "daemon.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["runuser", "-u", "shoal", "--", "shoal", "daemon",
                                 "--data-dir", STATE, "--port", str(port),
                                 "--api-port", str(api_port), "--bootstrap", "",
                                 "--no-lsd", "--no-port-mapping"],
                                stdout=log, stderr=subprocess.STDOUT, cwd="/")
    addr_file = os.path.join(STATE, "api.addr")
    up = wait_for("api.addr", lambda: os.path.exists(addr_file) or proc.poll() is not None, 30)
    up = up and proc.poll() is None and os.path.exists(addr_file)
    c.check(up, "shoal daemon runs as shoal and writes api.addr")
    status = None
    if up:
        res = run(["runuser", "-u", "shoal", "--", "shoal", "--data-dir", STATE, "status"], 30)
        c.check(ok(res), "runuser -u shoal -- shoal status: rc 0", tail(res))
        res = run(["runuser", "-u", "shoal", "--", "shoal", "--data-dir", STATE,
                   "status", "--json"], 30)
        try:
            status = json.loads(res.stdout) if ok(res) else None
        except ValueError:
            status = None
        c.check(isinstance(status, dict), "shoal status --json answers", tail(res))
        # The dashboard comes from /usr/share/shoal/web, byte for byte.
        try:
            conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
            conn.request("GET", "/web/app.js", headers={"Host": "127.0.0.1:%d" % api_port})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            with open("/usr/share/shoal/web/app.js", "rb") as f:
                want = f.read()
            c.check(resp.status == 200 and body == want,
                    "the daemon serves the installed dashboard", "(HTTP %d)" % resp.status)
        except OSError as e:
            c.check(False, "the daemon serves the installed dashboard", "(%s)" % e)
    pid = None
    if isinstance(status, dict):
        node = status.get("node", status)
        pid = node.get("pid") if isinstance(node, dict) else None
        c.check(isinstance(node, dict) and node.get("data_dir") == STATE,
                "the daemon's data dir is %s" % STATE)
    if pid:
        try:
            with open("/proc/%d/status" % pid) as f:
                uid_line = [l for l in f if l.startswith("Uid:")][0]
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            uid_line, exe = "", ""
        c.check(uid_line.split()[1:2] == [str(pw.pw_uid)] and exe == "/usr/bin/shoal-daemon",
                "the daemon is /usr/bin/shoal-daemon under uid shoal", "(%r %r)" % (uid_line, exe))
        # SIGTERM to the daemon itself: runuser passes on its exit status.
        os.kill(pid, signal.SIGTERM)
    else:
        c.check(False, "the daemon's pid from shoal status")
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait(timeout=10)
    c.equal(rc, 0, "shoal daemon exits 0 on SIGTERM")
    if rc != 0:
        with open(log_path) as f:
            print("# " + "\n# ".join(f.read().splitlines()[-20:]))
    c.check(os.path.exists(os.path.join(STATE, "shoal.db")), "the node's database is in %s" % STATE)

    under_systemd(c, pw)

    # Installing again (what an upgrade's maintainer scripts run) keeps the
    # user, the state and its mode.
    uid = pwd.getpwnam("shoal").pw_uid
    res = run(["apt-get", "install", "-y", "-q", "--reinstall", "--no-install-recommends", deb],
              600, env=env)
    st = os.stat(STATE) if os.path.isdir(STATE) else None
    c.check(ok(res) and installed() and pwd.getpwnam("shoal").pw_uid == uid and st is not None
            and stat.S_IMODE(st.st_mode) == 0o700
            and os.path.exists(os.path.join(STATE, "shoal.db")),
            "a reinstall keeps the user, %s (0700) and the database" % STATE, tail(res))

    # Purge with nothing of the user's left (the unit's download folder
    # empty, a metrics token made): the whole state directory goes.
    os.makedirs(os.path.join(STATE, "downloads"), exist_ok=True)
    res = run(["runuser", "-u", "shoal", "--", "shoal", "--data-dir", STATE, "token", "--metrics"],
              30)
    c.check(ok(res) and os.path.exists(os.path.join(STATE, "metrics.token")),
            "shoal token --metrics as shoal makes %s/metrics.token" % STATE, tail(res))
    res = run(["apt-get", "purge", "-y", "-q", "shoal"], 300, env=env)
    c.check(ok(res) and not installed() and not os.path.exists(STATE),
            "a purge with only the node's own files and an empty downloads/ removes %s" % STATE,
            "%s (left: %r)" % (tail(res), os.listdir(STATE) if os.path.isdir(STATE) else None))
    res = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb], 600, env=env)
    if not c.check(ok(res) and installed() and os.path.isdir(STATE),
                   "installed again after the purge, %s made again" % STATE, tail(res)):
        c.done()

    # Purge.  A file that is not the node's own (a download) stays, with
    # the directory; the node's files go (debian/shoal.postrm).
    keep = os.path.join(STATE, "downloads", "kept.txt")
    os.makedirs(os.path.dirname(keep))
    with open(keep, "w") as f:
        f.write("a download\n")
    res = run(["apt-get", "purge", "-y", "-q", "shoal"], 300, env=env)
    c.check(ok(res), "apt-get purge shoal", tail(res))
    c.check(not installed(), "dpkg: shoal is not installed after the purge")
    res = run(["dpkg", "-s", "shoal"], 30)
    c.check(res is not None and res.returncode != 0 and "not installed" in res.stdout,
            "dpkg -s shoal says not installed", tail(res))
    left = [p for p in listed if os.path.lexists(p) and not os.path.isdir(p)]
    c.check(listed and not left, "every packaged file is gone", "(left: %r)" % left[:10])
    c.check(not os.path.exists("/usr/share/shoal") and not os.path.exists("/usr/share/doc/shoal"),
            "the package's own folders are gone")
    node_files = ["shoal.db", "shoal.db-wal", "shoal.db-shm", "api.token", "metrics.token", "api.addr",
                  "daemon.lock", "torrents"]
    left = [n for n in node_files if os.path.lexists(os.path.join(STATE, n))]
    c.check(not left, "purge removed the node's state from %s" % STATE, "(left: %r)" % left)
    c.check(os.path.isfile(keep), "purge kept a download in %s" % STATE)
    try:
        pwd.getpwnam("shoal")
        c.check(True, "the system user stays after purge (Debian policy allows it)")
    except KeyError:
        c.check(False, "the system user stays after purge (Debian policy allows it)")
    we_installed[0] = False
    c.done()


if __name__ == "__main__":
    main()
