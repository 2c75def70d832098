"""systemd_ns: a real systemd as PID 1 of namespaces the test makes, so an
installed unit can be started, reloaded and stopped by the service manager
it is written for, on a machine (a CI container) whose own PID 1 is not
systemd.

The manager gets new PID, mount, network (loopback only: nothing leaves the
machine), UTS, IPC and cgroup namespaces; private /run, /tmp, /var/tmp,
/proc and /dev (its console is our log); cgroup file systems mounted afresh
inside its cgroup namespace, so it manages only the child cgroup made for
it; and a one-unit target to boot into.  The host's root file system is
shared (that is where the package is installed) but read-only, as are /sys
and /proc/sys, except the directories the caller names writable: the units
a service pulls in (sysinit.target's sysctl, udev, tmpfiles, utmp, ...)
run and fail or do nothing, and cannot change the host.  Mounts are made
private first, so nothing mounted or unmounted here reaches the host.
Stopping kills the namespace's PID 1, which takes every process in it, and
removes the cgroups.

    with NsSystemd() as sd:          # raises NsUnavailable when it cannot boot
        sd.run(["systemctl", "start", "shoal"], 30)
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

CGROUP_NAME = "shoal-test-%d" % os.getpid()
TARGET = "shoal-test.target"

BOOT = r"""
set -e
mount --make-rprivate /
mount -t proc proc /proc
# Nothing the manager or the units it starts write may reach the host (the
# service's dependencies pull in sysinit.target's units: sysctl, udev,
# tmpfiles, sysusers, utmp...): the root file system read-only but for the
# paths named writable, /proc/sys and /sys read-only, a /dev of our own
# whose console is our log, fresh /run, /tmp and /var/tmp (the journal goes
# to /run, so every boot starts with an empty one).
for d in %(writable)s; do mount --bind "$d" "$d"; done
mount -o remount,bind,ro /
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -o remount,bind,ro /sys
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system /run/lock /run/newdev
mount -t tmpfs -o mode=755 tmpfs /run/newdev
mkdir -p /run/newdev/pts /run/newdev/shm
for n in null zero full random urandom tty; do
    touch /run/newdev/$n && mount --bind /dev/$n /run/newdev/$n
done
touch /run/newdev/console && mount --bind %(console)s /run/newdev/console
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /run/newdev/pts
ln -s pts/ptmx /run/newdev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /run/newdev/shm
mount --move /run/newdev /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
umount -R /sys/fs/cgroup 2>/dev/null || true
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified 2>/dev/null || rmdir /sys/fs/cgroup/unified
ip link set lo up
printf '[Unit]\nDescription=shoal test target\nDefaultDependencies=no\n' \
    > /run/systemd/system/%(target)s
export container=shoal-test
exec /lib/systemd/systemd --system --unit=%(target)s </dev/null
"""


class NsUnavailable(Exception):
    """The namespace's systemd did not come up (a failure)."""


class NsCannotRun(NsUnavailable):
    """This machine lacks what the namespace needs (a reason to skip)."""


def _cgroup_dirs():
    """The hierarchies the manager is put in: name=systemd, and the unified
    one when the host mounts it (a hybrid layout, as here)."""
    dirs = []
    for base in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"):
        if os.path.isfile(os.path.join(base, "cgroup.procs")):
            dirs.append(os.path.join(base, CGROUP_NAME))
    return dirs


class NsSystemd:
    def __init__(self, writable=(), boot_timeout=30):
        """writable: host directories the manager's units may write (the
        package's state directory); all else of the host is read-only."""
        self.writable = [os.path.realpath(d) for d in writable]
        self.boot_timeout = boot_timeout
        self.proc = None
        self.pid = None
        self.tmp = None
        self.log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Boot; on any failure everything made so far is undone."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        for tool in ("unshare", "nsenter", "systemctl", "ip"):
            if not shutil.which(tool):
                raise NsCannotRun("%s is missing" % tool)
        if not os.path.exists("/lib/systemd/systemd"):
            raise NsCannotRun("/lib/systemd/systemd is missing (package systemd)")
        dirs = _cgroup_dirs()
        if not dirs or not dirs[0].startswith("/sys/fs/cgroup/systemd"):
            raise NsCannotRun("no name=systemd cgroup hierarchy at /sys/fs/cgroup/systemd")
        for d in self.writable:
            if not os.path.isdir(d) or "'" in d or " " in d:
                raise NsUnavailable("cannot keep %r writable" % d)
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="shoal-sd-")
        console = os.path.join(self.tmp, "console.log")
        self.log = open(console, "w")
        boot = os.path.join(self.tmp, "boot.sh")
        with open(boot, "w") as f:
            f.write(BOOT % {"target": TARGET, "console": console,
                            "writable": " ".join("'%s'" % d for d in self.writable)})
        # The launcher moves itself into the child cgroups, then makes the
        # namespaces; its child, PID 1 there, execs systemd.
        procs = " ".join("&& echo $$ > %s/cgroup.procs" % d for d in dirs)
        cmd = ("true %s && exec unshare --fork --pid --mount --net --uts --ipc --cgroup "
               "/bin/bash %s" % (procs, boot))
        self.proc = subprocess.Popen(["/bin/bash", "-c", cmd], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NsUnavailable("the namespace's systemd exited (%d): %s"
                                    % (self.proc.returncode, self.console()))
            self.pid = self._pid1()
            if self.pid:
                r = self.run(["systemctl", "is-system-running"], 10)
                if r is not None and r.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.3)
        raise NsUnavailable("the namespace's systemd did not come up in %d s: %s"
                            % (self.boot_timeout, self.console()))

    def _pid1(self):
        """The host pid of the namespace's PID 1: unshare's only child."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        if not kids:
            return None
        try:
            with open("/proc/%s/comm" % kids[0]) as f:
                return int(kids[0]) if f.read().strip() == "systemd" else None
        except OSError:
            return None

    def console(self):
        try:
            with open(os.path.join(self.tmp, "console.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def run(self, cmd, timeout):
        """cmd inside the namespaces (mount, pid, net), bounded; a
        CompletedProcess with text output, or None on a timeout."""
        try:
            return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-n"] + cmd,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            print("# timed out after %ss in the namespace: %s" % (timeout, " ".join(cmd)))
            return None

    def stop(self):
        # Only while unshare still waits for it is self.pid our PID 1 (once
        # it is gone the number may be another process's).
        if self.pid and self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)  # PID 1 of the namespace: all go
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            self.proc = None
        self.pid = None
        # The cgroups it made, deepest first, once their processes are gone.
        for d in _cgroup_dirs():
            for _ in range(50):
                left = False
                for root, subdirs, _files in os.walk(d, topdown=False):
                    try:
                        os.rmdir(root)
                    except OSError:
                        left = True
                if not left or not os.path.exists(d):
                    break
                time.sleep(0.1)
        if self.tmp:
            try:
                if self.log:
                    self.log.close()
            except Exception:
                pass
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
