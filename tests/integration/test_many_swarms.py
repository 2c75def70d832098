"""Many swarms on one daemon: GET /api/v1/swarms in pages and filtered, the
counts by state of GET /api/v1/status, `shoal status`'s summary when the
swarms do not fit on a screen, and a restart that re-hashes nothing."""
import http.client
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_for, write_file  # noqa: E402

N = 250          # > 2 pages of 100, and more than `shoal status` lists in full
PAGE = 100
HOLIDAY = 4      # of them named Holiday-<i>, for ?q=

c = Checks("many_swarms")
tmp = TestDir()
d = Daemon(tmp, "many").start()


def get(path):
    st, doc, _ = d.request("GET", path)
    if st != 200:
        raise AssertionError("GET %s -> %s %s" % (path, st, doc))
    return doc


def status_swarms():
    return get("/api/v1/status")["swarms"]


def walk(query, limit=PAGE):
    """Every page of GET /swarms?QUERY&limit=LIMIT; returns (swarms, pages)."""
    got, pages, after = [], [], None
    for _ in range(N + 5):      # bounded: a cursor that never ends fails the test
        q = dict(query, limit=str(limit))
        if after is not None:
            q["after"] = str(after)
        doc = get("/api/v1/swarms?" + urllib.parse.urlencode(q))
        pages.append(doc)
        got += doc["swarms"]
        if doc["next"] is None:
            return got, pages
        if after is not None and doc["next"] <= after:
            raise AssertionError("next went backwards: %s after %s" % (doc["next"], after))
        after = doc["next"]
    raise AssertionError("the walk did not end")


# ---------------------------------------------------------------- share N
ids = {}
for i in range(N):
    name = ("Holiday-%d" % i) if i < HOLIDAY else ("dir-%03d" % i)
    src = tmp.sub("src", name)
    write_file(os.path.join(src, "f.bin"), (b"%08d" % i) * 128)
    st, doc, _ = d.request("POST", "/api/v1/swarms", {"share": src})
    if st != 202:
        raise AssertionError("share %s -> %s %s" % (src, st, doc))
    ids[doc["swarm"]["id"]] = name
c.equal(len(ids), N, "%d shares accepted, each a swarm of its own" % N)
seeding = wait_for("every share seeding",
                   lambda: status_swarms()["by_state"]["seeding"] == N, 120)
c.check(seeding, "status: by_state.seeding reaches %d" % N, str(status_swarms()))
all_ids = sorted(ids)

# ---------------------------------------------------------------- pages
swarms, pages = walk({})
c.equal([len(p["swarms"]) for p in pages], [100, 100, 50], "limit=100: pages of 100, 100, 50")
c.equal([s["id"] for s in swarms], all_ids, "the pages hold every swarm once, ids ascending")
c.equal([p["next"] for p in pages], [all_ids[99], all_ids[199], None],
        "next is the last id of its page, null on the last page")
doc = get("/api/v1/swarms")
c.equal(([s["id"] for s in doc["swarms"]], doc["next"]), (all_ids, None),
        "without limit: every swarm in one answer, next null (as before pages)")
mid = all_ids[124]
doc = get("/api/v1/swarms?after=%d&limit=10" % mid)
c.equal([s["id"] for s in doc["swarms"]], all_ids[125:135], "after=ID starts past that id")
doc = get("/api/v1/swarms?after=%d" % all_ids[-1])
c.equal((doc["swarms"], doc["next"]), ([], None), "after the last id: an empty page, next null")
doc = get("/api/v1/swarms?limit=%d" % N)
c.equal((len(doc["swarms"]), doc["next"]), (N, None), "limit=N exactly: one page, next null")
doc = get("/api/v1/swarms?limit=1000")
c.equal(len(doc["swarms"]), N, "limit=1000 (the largest) is accepted")

# Pages over one kept-alive connection, as a client walking them sends
# them: a reply of ~100 KiB must not wait out the client's delayed ACK
# (Nagle's algorithm on the API's socket held back its last segment: 40 ms).
host, port = d.api_addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
slow = []
for i in range(20):
    t0 = time.monotonic()
    conn.request("GET", "/api/v1/swarms?limit=100&after=%d" % (all_ids[0] if i % 2 else 0),
                 headers={"Host": d.api_addr, "Authorization": "Bearer " + d.token})
    resp = conn.getresponse()
    body = resp.read()
    ms = (time.monotonic() - t0) * 1000
    if ms >= 40:
        slow.append(round(ms))
conn.close()
c.check(resp.status == 200 and len(body) > 50000 and len(slow) <= 2,
        "20 pages over one connection: none waits for a delayed ACK", "(slow: %s ms)" % slow)

# A swarm removed between two pages: the walk goes on after its id.
first = get("/api/v1/swarms?limit=100")
gone = first["next"]
st, _, _ = d.request("DELETE", "/api/v1/swarms/%d" % gone)
c.equal(st, 200, "remove the last swarm of page 1")
second = get("/api/v1/swarms?limit=100&after=%d" % gone)
c.equal([s["id"] for s in second["swarms"]], all_ids[100:200],
        "page 2 after a removed id: the swarms after it, none twice, none skipped")
all_ids.remove(gone)
del ids[gone]
n_now = N - 1

# ---------------------------------------------------------------- filters
paused = all_ids[10:17]
for sid in paused:
    d.api("POST", "/api/v1/swarms/%d/pause" % sid)
got, _ = walk({"state": "paused"})
c.equal([s["id"] for s in got], paused, "state=paused: exactly the paused swarms")
got, pages = walk({"state": "seeding"})
c.equal(len(got), n_now - len(paused), "state=seeding over pages: all the others")
c.check(all(s["state"] == "seeding" for s in got), "state=seeding lists only seeding swarms")
got, _ = walk({"state": "seeding,paused"})
c.equal([s["id"] for s in got], all_ids, "state=seeding,paused: every swarm")
got, _ = walk({"state": "downloading"})
c.equal(got, [], "state=downloading: none")
got, _ = walk({"q": "holiday"})
c.equal(sorted(s["name"] for s in got), sorted("Holiday-%d" % i for i in range(HOLIDAY)),
        "q=holiday: the names containing it, case folded")
got, _ = walk({"q": "dir-01", "state": "paused"})
c.equal([s["id"] for s in got], [sid for sid in paused if ids[sid].startswith("dir-01")],
        "q and state together")
doc = get("/api/v1/swarms?sort=busiest&limit=5")
c.equal(([s["id"] for s in doc["swarms"]], doc["next"]), (all_ids[::-1][:5], None),
        "sort=busiest with every swarm idle: the newest first, one page")

# ---------------------------------------------------------------- bad queries
bad = ["limit=0", "limit=abc", "limit=1001", "limit=-5", "after=-1", "after=x",
       "state=bogus", "state=", "sort=rate", "bogus=1", "limit=5&limit=6", "q=",
       "sort=busiest&after=3"]
for q in bad:
    st, doc, headers = d.request("GET", "/api/v1/swarms?" + q)
    err = (doc or {}).get("error") or {}
    c.check(st == 400 and err.get("code") == "bad_request" and err.get("status") == 400 and
            err.get("message"), "GET /swarms?%s -> 400 bad_request with a message" % q,
            "(%s %s)" % (st, doc))
c.equal(d.request("GET", "/api/v1/status")[0], 200, "the daemon still answers after them")

# ---------------------------------------------------------------- status counts
bad_src = tmp.sub("src", "with-a-link")
write_file(os.path.join(bad_src, "a"), b"x")
os.symlink("/etc/hostname", os.path.join(bad_src, "link"))
st, doc, _ = d.request("POST", "/api/v1/swarms", {"share": bad_src})
c.equal(st, 202, "share a directory holding a symbolic link (fails while scanning)")
err_id = doc["swarm"]["id"]
wait_for("the share to fail", lambda: get("/api/v1/swarms/%d" % err_id)["state"] == "error", 30)
counts = status_swarms()
listed = {}
for s in get("/api/v1/swarms")["swarms"]:
    listed[s["state"]] = listed.get(s["state"], 0) + 1
c.equal({k: v for k, v in counts["by_state"].items() if v}, listed,
        "status by_state matches the states the list shows")
c.equal(set(counts["by_state"]), {"hashing", "checking", "metadata", "downloading", "seeding",
                                  "paused", "error"}, "by_state names every state")
c.equal((counts["total"], counts["seeding"], counts["error"], counts["downloading"],
         counts["hashing"]), (n_now + 1, n_now - len(paused), 1, 0, 0),
        "the older keys (total, seeding, error, downloading, hashing) still add up")

# ---------------------------------------------------------------- shoal status


def swarm_rows(out):
    """The rows of the swarm table in `shoal status` output."""
    lines = out.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.split()[:2] == ["ID", "NAME"])
    except StopIteration:
        return []
    rows = []
    for l in lines[start + 1:]:
        if not l.strip() or not l.split()[0].isdigit():
            break
        rows.append(l)
    return rows


r = d.cli("status")
c.equal(r.returncode, 0, "shoal status exits 0", )
rows = swarm_rows(r.stdout)
c.check(0 < len(rows) <= 10, "shoal status with %d swarms lists at most the 10 busiest" % (n_now + 1),
        "(%d rows)\n%s" % (len(rows), r.stdout[-1500:]))
c.check("%d: %d seeding, %d paused, 1 error" % (n_now + 1, n_now - len(paused), len(paused))
        in r.stdout, "shoal status shows the counts by state", r.stdout[:800])
c.check("busiest" in r.stdout and "shoal status --all" in r.stdout,
        "shoal status says these are the busiest and how to list all", r.stdout[-600:])
c.check(("swarm %d: " % err_id) in r.stdout and "symbolic link" in r.stdout,
        "shoal status names the swarm in error and why", r.stdout[-800:])
r = d.cli("status", "--all")
rows = swarm_rows(r.stdout)
c.equal((r.returncode, len(rows)), (0, n_now + 1), "shoal status --all lists every swarm")
c.equal(sorted(int(l.split()[0]) for l in rows), sorted(all_ids + [err_id]),
        "shoal status --all: each swarm once (fetched in pages)")
r = d.cli("status", "--json")
try:
    import json
    js = json.loads(r.stdout)
    c.equal(js["swarms"]["by_state"]["paused"], len(paused), "shoal status --json has by_state")
except (ValueError, KeyError) as e:
    c.check(False, "shoal status --json has by_state", "%s %s" % (e, r.stdout[:300]))
r = d.cli("status", "--help")
c.check(r.returncode == 0 and "--all" in r.stdout, "shoal status --help documents --all")

# ---------------------------------------------------------------- restart
# One file changes while the daemon is down: only its swarm re-hashes.
changed_id = all_ids[-1]
c.equal(d.stop(), 0, "the daemon stops cleanly")
changed = tmp.sub("src", ids[changed_id], "f.bin")
st0 = os.stat(changed)
os.utime(changed, ns=(st0.st_atime_ns, st0.st_mtime_ns + 5 * 10 ** 9))
t0 = time.monotonic()
d.start()
ready = time.monotonic() - t0
c.check(ready < 10, "restart with %d swarms: API up in %.2f s" % (n_now, ready))
back = wait_for("every swarm back",
                lambda: (lambda s: s["by_state"]["seeding"] == n_now - len(paused) and
                         s["by_state"]["paused"] == len(paused) and s["total"] == n_now)(
                    status_swarms()), 60)
c.check(back, "after the restart: the same counts (the failed share was never recorded)",
        str(status_swarms()))
got, _ = walk({}, limit=1000)
checks = {s["id"]: s.get("last_check") for s in got if s["state"] != "paused"}
hashed = {sid: lc["files_hashed"] for sid, lc in checks.items() if lc and lc["files_hashed"]}
c.equal(hashed, {changed_id: 1}, "after the restart only the swarm whose file's mtime "
        "moved re-hashed its file (last_check.files_hashed)")
c.check(all(lc and lc["result"] == "ok" for lc in checks.values()),
        "every running swarm was checked at start, result ok")
c.equal(d.stop(), 0, "stops cleanly")
c.done()
