"""bash completion (completion/shoal.bash and cli/cmd_complete.c), driven in
a real bash: bash-completion's library and our script are sourced, the
line is set up as readline would (COMP_WORDS, COMP_CWORD, COMP_LINE,
COMP_POINT), the completion function runs and COMPREPLY is printed.

Checked: commands, per-command flags (from `shoal __complete flags`, i.e.
`shoal help`), choice values, swarm ids asked from a running daemon (by id
and by a partial name), the data dir of a --data-dir on the line, and that
no daemon means no output on the terminal and a quick answer."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, Daemon, TestDir, wait_state, write_file  # noqa: E402

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
SRCDIR = os.environ.get("SHOAL_SRCDIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SRCDIR, "completion", "shoal.bash")

if not os.path.exists(BASH_COMPLETION) or not shutil.which("bash"):
    print("skip: bash-completion is not installed (scripts/deps.sh installs it)")
    sys.exit(77)

c = Checks("completion")
tmp = TestDir("shoal-completion-")

DRIVER = r'''
source "$1"
source "$2"
shift 2
COMP_LINE=$1
COMP_POINT=${#COMP_LINE}
# Split as readline does (COMP_WORDBREAKS); a trailing space starts a new word.
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
_shoal shoal "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(line, env=None, cwd=None):
    """COMPREPLY for `line` (the cursor at its end), sorted; and stderr, and
    seconds taken.  The line's first word is the build's shoal."""
    line = line.replace("shoal", SHOAL, 1)
    e = dict(os.environ)
    e.pop("SHOAL_DATA_DIR", None)
    e["HOME"] = tmp.sub("home")
    os.makedirs(e["HOME"], exist_ok=True)
    if env:
        e.update(env)
    t0 = time.monotonic()
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "driver",
                        BASH_COMPLETION, SCRIPT, line],
                       capture_output=True, text=True, timeout=30, env=e, cwd=cwd)
    took = time.monotonic() - t0
    got = sorted(w for w in r.stdout.split("\n") if w)
    return got, r.stderr, took, r.returncode


def equal(line, want, what, **kw):
    got, err, _, rc = complete(line, **kw)
    c.equal(got, sorted(want), what)
    c.equal((rc, err), (0, ""), what + ": no error output")


# Without a daemon: everything that needs none.
equal("shoal st", ["status", "stream"], "`shoal st` -> status, stream")
equal("shoal join --o", ["--only", "--overwrite"], "`shoal join --o` -> --only, --overwrite")
equal("shoal share --format ", ["hybrid", "v1", "v2"], "share --format values come from its usage")
equal("shoal files 1 --sequential ", ["off", "on"], "files --sequential on|off")
equal("shoal files 1 --set 3=h", ["3=high"], "files --set N=PRIORITY completes the priority")
equal("shoal daemon --encryption ", ["off", "prefer", "require"], "daemon --encryption values")
equal("shoal daemon --log-level d", ["debug"], "daemon --log-level values")
equal("shoal daemon --no-l", ["--no-lsd"], "daemon flags come from shoal-daemon --help")
got, _, _, _ = complete("shoal daemon --")
c.check({"--lsd", "--port-mapping", "--tracker-min-interval", "--api-bind"} <= set(got)
        and "--into" not in got and "--peer" not in got,
        "daemon flags: option lines and --no-X's other half, no other command's flags",
        "(got %r)" % got)
equal("shoal help re", ["remove", "resume"], "help COMMAND completes commands")
equal("shoal --data-dir /nowhere ver", ["verify"], "a --data-dir before the command")
cmds, _, _, _ = complete("shoal ")
c.check("__complete" not in cmds and "daemon" in cmds and "help" in cmds,
        "the hidden command is not offered", "(got %r)" % cmds)

# Paths: a DIR argument completes directories only, a FILE anything.
work = tmp.sub("work")
os.makedirs(os.path.join(work, "alpha-dir"))
write_file(os.path.join(work, "alpha-file.torrent"), b"x")
equal("shoal share alp", ["alpha-dir"], "share DIR: directories only", cwd=work)
equal("shoal join alp", ["alpha-dir", "alpha-file.torrent"], "join LINK|FILE|FOLDER: paths",
      cwd=work)
equal("shoal join x --into alp", ["alpha-dir"], "join --into DIR: directories", cwd=work)

# No daemon: a swarm argument gets nothing, silently and quickly.
nodaemon = tmp.sub("nodaemon")
os.makedirs(nodaemon)
got, err, took, rc = complete("shoal pause --data-dir %s " % nodaemon)
c.equal((got, err, rc), ([], "", 0), "no daemon: no candidates and no error output")
c.check(took < 2.0, "no daemon: the answer comes in under 2 s", "(%.2f s)" % took)

# A listener that accepts and then trickles one byte every 0.3 s (a stuck
# or hostile process on the API's port): the whole answer still comes in
# under 2 s, since the request has one deadline, not one per read.
import socket  # noqa: E402
import threading  # noqa: E402
slow = tmp.sub("slow")
os.makedirs(slow)
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(4)
with open(os.path.join(slow, "api.addr"), "w") as f:
    f.write("127.0.0.1:%d\n" % lsock.getsockname()[1])
with open(os.path.join(slow, "api.token"), "w") as f:
    f.write("ab" * 32 + "\n")
os.chmod(os.path.join(slow, "api.token"), 0o600)
stop_trickle = threading.Event()


def trickle():
    lsock.settimeout(0.2)
    conns = []
    while not stop_trickle.is_set():
        try:
            conns.append(lsock.accept()[0])
        except OSError:
            pass
        for k in conns:
            try:
                k.send(b"H")
            except OSError:
                pass
        time.sleep(0.3)
    for k in conns:
        k.close()


tr = threading.Thread(target=trickle, daemon=True)
tr.start()
got, err, took, rc = complete("shoal pause --data-dir %s " % slow)
stop_trickle.set()
tr.join(5)
lsock.close()
c.equal((got, err, rc), ([], "", 0), "a listener that trickles: no candidates, no error output")
c.check(took < 2.0, "a listener that trickles: the answer still comes in under 2 s",
        "(%.2f s)" % took)

# A daemon with two shares named distinctly.
d = Daemon(tmp, "node")
d.start()
ids = {}
for name in ("Holiday-Photos", "tax-records"):
    src = tmp.sub(name)
    write_file(os.path.join(src, "a.bin"), os.urandom(40000) + name.encode())
    r = d.cli("share", src, "--json")
    c.check(r.returncode == 0, "share %s" % name, r.stderr)
    ids[name] = str(json.loads(r.stdout)["id"])
for sid in ids.values():
    wait_state(d, int(sid))

equal("shoal pause --data-dir %s " % d.data_dir, ids.values(),
      "`shoal pause ` -> both swarm ids, asked from the daemon of --data-dir")
equal("shoal --data-dir %s pause " % d.data_dir, ids.values(),
      "a --data-dir before the command names the daemon too")
equal("shoal files --data-dir %s holiday" % d.data_dir, [ids["Holiday-Photos"]],
      "`shoal files holiday` -> that swarm's id (a partial name, either case)")
equal("shoal files --data-dir=%s RECORDS" % d.data_dir, [ids["tax-records"]],
      "--data-dir=DIR, and a name that matches the other swarm")
equal("shoal remove --data-dir %s nothing-like-it" % d.data_dir, [],
      "a name matching no swarm -> nothing")
equal("shoal pause %s" % ids["tax-records"], [ids["tax-records"]],
      "SHOAL_DATA_DIR names the daemon when the line has no --data-dir",
      env={"SHOAL_DATA_DIR": d.data_dir})
# The data dir decides: the same line against the empty one offers nothing.
equal("shoal pause --data-dir %s " % nodaemon, [], "another data dir's daemon is not asked")
equal("shoal stream --data-dir %s %s --t" % (d.data_dir, ids["tax-records"]), ["--ttl"],
      "stream's flags after a swarm")

# The interface itself (docs/completion.md): "ID<TAB>NAME" lines.
r = subprocess.run([SHOAL, "__complete", "swarms", "--data-dir", d.data_dir],
                   capture_output=True, text=True, timeout=10)
rows = sorted(line.split("\t") for line in r.stdout.splitlines())
c.equal(rows, sorted([[v, k] for k, v in ids.items()]), "__complete swarms prints ID<TAB>NAME")

c.equal(d.stop(), 0, "the daemon stops cleanly")
c.done()
