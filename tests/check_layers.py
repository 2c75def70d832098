"""The layering rules of docs/architecture.md, checked on every #include.

  common/    includes nothing of ours but common/
  dht/       common/ and itself; no libevent, SQLite, jansson or HTTP
  transfer/  common/ and itself; the same
  node/      anything of ours except cli/
  cli/       common/ and itself (it is an HTTP client: no node/, dht/,
             transfer/, libevent or SQLite)
  node/conn.[ch]  the connection layer: none of the engine, swarms, the
             store or the API (it reports up through callbacks only); conn.c
             may use the worker pool (node/workers.h, which knows nothing of
             the engine) for its crypto threads, conn.h may not
  node/trackers.[ch]  the tracker client: not the mediator (swarms.h), the
             API or the share jobs (peers go up through node->events)

It also checks the `shoal` program links none of the daemon (no symbol of
node/, dht/ or transfer/ in it), and first checks itself on a made-up tree
that breaks every rule, so a checker that can no longer see a violation
fails too."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

OURS = ("common", "dht", "transfer", "node", "cli")
RULES = {
    "common": ({"common"}, {"event2", "sqlite3.h", "jansson.h", "evhttp.h"}),
    "dht": ({"common", "dht"}, {"event2", "sqlite3.h", "jansson.h", "evhttp.h"}),
    "transfer": ({"common", "transfer"}, {"event2", "sqlite3.h", "jansson.h", "evhttp.h"}),
    "node": ({"common", "dht", "transfer", "node"}, set()),
    "cli": ({"common", "cli"}, {"event2", "sqlite3.h", "evhttp.h"}),
}
# Files held to more than their folder's rule: banned headers of ours.
FILE_RULES = {
    "node/conn.c": ("node/engine", "node/peer", "node/swarm", "node/share", "node/store",
                    "node/api", "node/node.h"),
    "node/conn.h": ("node/engine", "node/peer", "node/swarm", "node/share", "node/store",
                    "node/api", "node/node.h", "node/workers"),
    # The tracker client reports peers up through node->events, never by
    # calling the mediator or the API; its codec stays pure (transfer/).
    "node/trackers.c": ("node/swarms.h", "node/api", "node/share"),
    "node/trackers.h": ("node/swarms.h", "node/api", "node/share"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def violations(top):
    """Every forbidden include under `top`, as 'file:line: why' strings."""
    out = []
    for folder, (allowed, banned) in RULES.items():
        d = os.path.join(top, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            with open(path, errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(2)
                    head = inc.split("/", 1)[0]
                    where = "%s/%s:%d" % (folder, name, n)
                    if "/" in inc and head in OURS and head not in allowed:
                        out.append("%s: %s/ may not include %s" % (where, folder, inc))
                    if head in banned or inc in banned:
                        out.append("%s: %s/ may not include %s" % (where, folder, inc))
                    if any(inc.startswith(b) for b in FILE_RULES.get(folder + "/" + name, ())):
                        out.append("%s: %s/%s may not include %s" % (where, folder, name, inc))
    return out


def self_test():
    """The checker finds a violation of every rule in a made-up tree."""
    tmp = tempfile.mkdtemp(prefix="shoal-layers-")
    try:
        bad = {
            "common/a.c": '#include "dht/dht.h"\n',
            "dht/a.c": '#include "transfer/wire.h"\n#include <event2/event.h>\n',
            "transfer/a.c": '#include "node/node.h"\n#include <sqlite3.h>\n',
            "node/a.c": '#include "cli/cli.h"\n',
            "node/conn.c": '#include "node/engine_state.h"\n',
            "cli/a.c": '#include "node/node.h"\n#include <event2/http.h>\n',
        }
        for rel, text in bad.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        found = violations(tmp)
        return len(found) == 9, found
    finally:
        shutil.rmtree(tmp, True)


def defined(path):
    """Global functions and data defined in an object, library or program."""
    r = subprocess.run(["nm", "--defined-only", "-g", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return {ln.split()[-1] for ln in r.stdout.splitlines() if len(ln.split()) >= 3}


def daemon_symbols_in_cli(shoal):
    """Symbols of node/, dht/ or transfer/ (their libraries in the build
    tree beside `shoal`) that the `shoal` program defines; None when nm or
    the libraries are not there."""
    if not shutil.which("nm"):
        return None
    build = os.path.dirname(os.path.abspath(shoal))
    libs = [os.path.join(build, d, "lib%s.a" % d) for d in ("node", "dht", "transfer")]
    if not all(os.path.exists(p) for p in libs):
        return None
    mine = defined(shoal)
    theirs = set()
    for p in libs:
        theirs |= defined(p) or set()
    return None if mine is None else sorted(mine & theirs)


# The engine's files, top to bottom (docs/architecture.md, "The engine's
# files"): each may call only files below it; what goes up is a callback.
ENGINE_LAYERS = ["engine", "peer_conn", "engine_wire", "engine_meta", "engine_io",
                 "engine_durable", "engine_peers", "engine_send", "engine_base", "engine_select", "peer"]


def undefined(path):
    r = subprocess.run(["nm", "--undefined-only", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return {ln.split()[-1] for ln in r.stdout.splitlines() if ln.split()}


def engine_climbs(build):
    """(climbs, unplaced): calls from an engine file to one above it, and
    engine objects missing from ENGINE_LAYERS; None when nm or the objects
    are not there."""
    obj = os.path.join(build, "node", "libnode_a-%s.o")
    if not shutil.which("nm") or not all(os.path.exists(obj % f) for f in ENGINE_LAYERS):
        return None
    present = {os.path.basename(p)[len("libnode_a-"):-2]
               for p in glob.glob(os.path.join(build, "node", "libnode_a-*.o"))}
    unplaced = sorted(f for f in present if (f.startswith("engine") or f.startswith("peer"))
                      and f not in ENGINE_LAYERS)
    defs = {f: defined(obj % f) or set() for f in ENGINE_LAYERS}
    climbs = []
    for i, f in enumerate(ENGINE_LAYERS):
        need = undefined(obj % f) or set()
        for above in ENGINE_LAYERS[:i]:
            for sym in sorted(need & defs[above]):
                climbs.append("%s calls %s in %s, a file above it" % (f, sym, above))
    return climbs, unplaced


def main():
    top = os.environ.get("SHOAL_SRCDIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failed = 0
    ok, found = self_test()
    print("%s - the checker sees every kind of violation in a made-up tree" % ("ok" if ok else "not ok"))
    if not ok:
        print("# found: %s" % found)
        failed += 1
    v = violations(top)
    print("%s - no folder includes what the layering forbids" % ("not ok" if v else "ok"))
    for line in v:
        print("#   " + line)
    failed += bool(v)
    shoal = os.environ.get("SHOAL_BIN")
    if shoal and os.path.exists(shoal):
        syms = daemon_symbols_in_cli(shoal)
        if syms is None:
            print("ok - # SKIP nm or the build's libraries are missing: link check skipped")
        else:
            print("%s - the shoal CLI links none of the daemon" % ("not ok" if syms else "ok"))
            for s in syms[:20]:
                print("#   " + s)
            failed += bool(syms)
        got = engine_climbs(os.path.dirname(os.path.abspath(shoal)))
        if got is None:
            print("ok - # SKIP nm or the engine's objects are missing: engine layering skipped")
        else:
            climbs, unplaced = got
            bad = climbs + ["%s is not placed in ENGINE_LAYERS" % f for f in unplaced]
            print("%s - the engine's files call only the files below them" %
                  ("not ok" if bad else "ok"))
            for line in bad[:20]:
                print("#   " + line)
            failed += bool(bad)
    print("layers: %d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
