"""The man pages (man/shoal.1, man/shoal.conf.5) against the program: no
daemon runs.

(a) every command `shoal help` lists has a section in shoal.1, and every
    --flag its help mentions appears in that section (roff's \\-\\-flag);
    every getopt option in cli/*.c and node/daemon.c is in some help; no
    flag in shoal.1 is unknown to the program;
(b) the keys of shoal.conf.5 are exactly those config_set (node/settings.c)
    takes, minus data-dir; the daemon's value options are those keys; the
    EXAMPLE file loads in a real shoal-daemon;
(c) groff -ww prints no warning, and man -l renders the NAME line;
(d) `make install DESTDIR=...` puts them in man1 and man5 (when run from a
    build tree).

A comment `.\\" pending-merge BRANCH: --flag key ...` in a page documents
names ahead of the branch that adds them; once the program knows them the
comment must go, and this test says so."""
import fcntl
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, TestDir  # noqa: E402

SRCDIR = os.environ.get("SHOAL_SRCDIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
MAN1 = os.path.join(SRCDIR, "man", "shoal.1")
MAN5 = os.path.join(SRCDIR, "man", "shoal.conf.5")
MAN1D = os.path.join(SRCDIR, "man", "shoal-daemon.1")
DAEMON = os.path.join(os.path.dirname(SHOAL), "shoal-daemon")

c = Checks("manpages")
tmp = TestDir("shoal-man-")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


def plain(roff):
    """Roff text with its escapes that matter here undone: \\- is -, font
    changes go, comments go."""
    lines = [ln for ln in roff.split("\n") if not ln.startswith('.\\"')]
    t = "\n".join(lines)
    t = t.replace("\\-", "-").replace("\\(dq", '"').replace("\\(aq", "'").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", t)


def pending(roff):
    """{name: branch} from the pending-merge comments."""
    out = {}
    for m in re.finditer(r'^\.\\" pending-merge ([\w-]+): (.*)$', roff, re.M):
        for name in m.group(2).split():
            out[name] = m.group(1)
    return out


def help_flags(text):
    # The footer every command's usage ends with names the common options
    # (OPTIONS in shoal.1), not the command's.
    text = "\n".join(ln for ln in text.split("\n") if not ln.startswith("Every command takes"))
    return set(FLAG.findall(text))


man1_roff = open(MAN1).read()
man5_roff = open(MAN5).read()
man1 = plain(man1_roff)
pend1 = pending(man1_roff)
pend5 = pending(man5_roff)

# --- (a) commands and flags ---------------------------------------------
r = run(SHOAL, "help")
c.equal(r.returncode, 0, "shoal help runs")
commands = re.findall(r"^  ([a-z]+)  ", r.stdout, re.M)
c.check(len(commands) >= 10 and "daemon" in commands, "shoal help lists the commands",
        "(got %r)" % commands)

sections = {}
for m in re.finditer(r'^\.SS "shoal ([a-z]+)"\n(.*?)(?=^\.S[SH] )', man1_roff, re.M | re.S):
    sections[m.group(1)] = plain(m.group(2))
c.equal(sorted(sections), sorted(commands), "shoal.1 has a COMMANDS section per command, no more")

program_flags = set()      # every flag some help names, the common ones too
for cmd in commands:
    if cmd == "daemon":
        r = run(SHOAL, "daemon", "--help")
        r2 = run(DAEMON, "--help")
        c.equal(r.stdout, r2.stdout, "shoal daemon --help is shoal-daemon's")
    else:
        r = run(SHOAL, "help", cmd)
        if cmd != "help":  # `shoal help --help` asks for a command named --help
            r2 = run(SHOAL, cmd, "--help")
            c.equal(r2.stdout, r.stdout, "shoal %s --help is shoal help %s" % (cmd, cmd))
    c.equal(r.returncode, 0, "help of %s" % cmd)
    flags = help_flags(r.stdout)
    program_flags |= flags
    section = sections.get(cmd, "")
    missing = sorted(f for f in flags if "--" + f not in set("--" + x for x in FLAG.findall(section)))
    c.check(not missing, "shoal.1's %s section names every flag of its help" % cmd,
            "(missing %s)" % ", ".join("--" + f for f in missing))
program_flags |= {"data-dir", "help", "version"}

# Every getopt option is in some help (a flag the help forgets would not
# reach the man page through the check above).
getopt = set()
for folder in ("cli", "node"):
    for name in os.listdir(os.path.join(SRCDIR, folder)):
        if name.endswith(".c") and (folder == "cli" or name == "daemon.c"):
            src = open(os.path.join(SRCDIR, folder, name)).read()
            getopt |= set(re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*(?:required|no|optional)_argument',
                                     src))
c.check(len(getopt) > 30, "getopt options found in cli/*.c and node/daemon.c", "(%d)" % len(getopt))
unhelped = sorted(getopt - program_flags)
c.check(not unhelped, "every getopt option appears in a command's help",
        "(not in any: %s)" % ", ".join("--" + f for f in unhelped))

for opt in ("data-dir", "help", "version"):
    c.check(re.search(r"^\.SH OPTIONS\n.*--%s\b.*^\.SH ENVIRONMENT" % opt, man1, re.M | re.S),
            "shoal.1 OPTIONS names --%s" % opt)

documented = set(FLAG.findall(man1))
unknown = sorted(f for f in documented - program_flags if "--" + f not in pend1)
c.check(not unknown, "every flag shoal.1 names exists in the program",
        "(unknown: %s)" % ", ".join("--" + f for f in unknown))
landed = sorted(f for f in pend1 if f.startswith("--") and f[2:] in program_flags)
c.check(not landed, "no pending-merge flag of shoal.1 exists yet",
        "(%s: merged, delete them from the pending-merge comment)" % ", ".join(landed))

# --- (b) settings keys ----------------------------------------------------
settings = open(os.path.join(SRCDIR, "node", "settings.c")).read()
body = settings[settings.index("int config_set("):]
body = body[:body.index("\n}\n")]
keys = set(re.findall(r'strcmp\(key, "([a-z][a-z0-9-]*)"\)', body))
c.check(len(keys) > 15 and "port" in keys, "config_set's keys found", "(%r)" % sorted(keys))
file_keys = keys - {"data-dir"}   # config_load_file refuses it

keys_sec = re.search(r"^\.SH KEYS\n(.*?)^\.SH ", man5_roff, re.M | re.S).group(1)
man_keys = set(re.findall(r'^\.BI "([a-z][a-z0-9\\-]*) = " ', keys_sec, re.M))
man_keys = {k.replace("\\-", "-") for k in man_keys}
c.equal(sorted(file_keys - man_keys), [], "every key config_set takes is in shoal.conf.5")
extra = sorted(k for k in man_keys - file_keys if k not in pend5)
c.equal(extra, [], "shoal.conf.5 documents no key config_set refuses")
landed = sorted(k for k in pend5 if k in keys)
c.check(not landed, "no pending-merge key of shoal.conf.5 exists yet",
        "(%s: merged, delete them from the pending-merge comment)" % ", ".join(landed))
# Each entry says whether SIGHUP applies it, as node/reload.c's table does
# (a key with an apply function is live; NULL takes a restart).
with open(os.path.join(SRCDIR, "node", "reload.c")) as f:
    reload_src = f.read()
live = {k: a != "NULL" for k, a in
        re.findall(r'\{ "([a-z][a-z0-9-]*)", differs_\w+, (\w+) \}', reload_src)}
c.check(len(live) > 10 and live.get("upload-limit") and live.get("port") is False,
        "node/reload.c's table of live keys found", "(%r)" % live)
for m in re.finditer(r'^\.TP\n\.BI "([a-z\\-]+) = ".*?(?=^\.TP\n\.BI|\Z)', keys_sec, re.M | re.S):
    entry = m.group(0)
    says_live = "SIGHUP applies it live" in entry
    says_restart = "Takes a restart." in entry
    for k in re.findall(r'^\.BI "([a-z][a-z0-9\\-]*) = "', entry, re.M):
        k = k.replace("\\-", "-")
        c.check(says_live != says_restart, "shoal.conf.5 says whether SIGHUP applies %s" % k)
        if k in live:
            c.equal("live" if says_live else "restart", "live" if live[k] else "restart",
                    "shoal.conf.5 on whether SIGHUP applies %s, as node/reload.c does" % k)

# The daemon's options are the same settings (its flags minus the common
# ones and the on-switches of no-X keys).
r = run(DAEMON, "--help")
daemon_flags = set(re.findall(r"^  (?:-h, )?--([a-z][a-z0-9-]*)", r.stdout, re.M))
daemon_flags -= {"help", "data-dir"}
c.equal(sorted(daemon_flags ^ file_keys), [], "shoal daemon's options are shoal.conf's keys")

# The example loads: a daemon that passes the whole file stops at the lock
# this test holds ("another shoal daemon"), exit 1; a bad line is exit 2.
example = re.search(r"^\.SH EXAMPLE\n.*?^\.EX\n(.*?)^\.EE", man5_roff, re.M | re.S).group(1)
data = tmp.sub("data")
os.makedirs(data, mode=0o700)
with open(os.path.join(data, "shoal.conf"), "w") as f:
    f.write(plain(example))
with open(os.path.join(data, "daemon.lock"), "w") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    r = run(DAEMON, "--data-dir", data)
    c.check(r.returncode == 1 and "another shoal daemon" in r.stderr,
            "shoal.conf.5's EXAMPLE loads (the daemon gets as far as the lock)",
            "(rc %d: %s)" % (r.returncode, r.stderr.strip()))
    with open(os.path.join(data, "shoal.conf"), "a") as f:
        f.write("no-such-key = 1\n")
    r = run(DAEMON, "--data-dir", data)
    c.check(r.returncode == 2 and "unknown setting" in r.stderr,
            "a key config_set refuses stops the daemon (so the check above can fail)",
            "(rc %d: %s)" % (r.returncode, r.stderr.strip()))

# --- (c) rendering ------------------------------------------------------
for page in (MAN1, MAN1D, MAN5):
    base = os.path.basename(page)
    r = run("groff", "-ww", "-man", "-Tutf8", "-z", page)
    c.equal((r.returncode, r.stderr), (0, ""), "groff -ww renders %s without warnings" % base)
    r = run("man", "-l", page, env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="",
                                        PAGER="cat", MANPAGER="cat"))
    name = {"shoal.1": "shoal - ", "shoal-daemon.1": "shoal-daemon - "}.get(base, "shoal.conf - ")
    c.check(r.returncode == 0 and re.search(r"^NAME\n\s+" + re.escape(name), r.stdout, re.M)
            and not r.stderr, "man -l %s renders its NAME line" % base,
            "(rc %d, stderr %r)" % (r.returncode, r.stderr[:300]))

# --- (d) installed where man looks -------------------------------------
builddir = os.path.dirname(SHOAL)
if os.path.exists(os.path.join(builddir, "Makefile")) and shutil.which("make"):
    dest = tmp.sub("dest")
    r = run("make", "-s", "-C", builddir, "install-man", "install-bashcompletionDATA",
            "DESTDIR=" + dest)
    c.equal(r.returncode, 0, "make install-man DESTDIR=... runs")
    found = {}
    for root, _, files in os.walk(dest):
        for f in files:
            found[f] = os.path.relpath(root, dest)
    c.check(found.get("shoal.1", "").endswith("share/man/man1"), "shoal.1 installed in man1",
            "(%r)" % found)
    c.check(found.get("shoal-daemon.1", "").endswith("share/man/man1"),
            "shoal-daemon.1 installed in man1", "(%r)" % found)
    c.check(found.get("shoal.conf.5", "").endswith("share/man/man5"),
            "shoal.conf.5 installed in man5", "(%r)" % found)
    c.check(found.get("shoal", "").endswith("share/bash-completion/completions"),
            "completion installed as bash-completion/completions/shoal", "(%r)" % found)
else:
    print("# no build tree beside %s: install layout not checked" % SHOAL)

c.done()
