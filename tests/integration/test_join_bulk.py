"""`shoal join FOLDER`: a folder of .torrent files (v1, v2 and hybrid) joined
in one command, one request each: the counts, the exit codes, one line per
failure, a user's file in the way left untouched, an identical one adopted,
the joined swarms in GET /api/v1/swarms, a rerun that finds them all already
present, the --json document, and a FIFO named like a .torrent that neither
the command nor the daemon waits on."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, Checks, Daemon, TestDir, wait_for, write_file  # noqa: E402

N_GOOD = 40          # 39 fresh downloads and one whose files are already there
FORMATS = ("v1", "v2", "hybrid")

c = Checks("join_bulk")
tmp = TestDir()
maker = Daemon(tmp, "maker").start()


def swarm_list(d):
    return d.api("GET", "/api/v1/swarms")["swarms"]


def share(d, src, fmt):
    st, doc, _ = d.request("POST", "/api/v1/swarms", {"share": src, "format": fmt})
    if st != 202:
        raise AssertionError("share %s -> %s %s" % (src, st, doc))
    return doc["swarm"]["id"]


def file_state(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_ino, st.st_size, st.st_mtime_ns, oct(st.st_mode), digest)


# ------------------------------------------------ the torrents, made by shoal
# Each source folder holds one or two small files; the formats take turns.
ids = {}
for i in range(N_GOOD):
    src = tmp.sub("src", "item-%02d" % i)
    write_file(os.path.join(src, "a.bin"), (b"%06d" % i) * (700 + 37 * i))
    if i % 2:
        write_file(os.path.join(src, "sub", "b.txt"), b"second file of %d\n" % i)
    ids[share(maker, src, FORMATS[i % 3])] = "item-%02d" % i
# The one whose file the user already has, with other bytes of the same size.
conflict_src = tmp.sub("src", "conflicting")
write_file(os.path.join(conflict_src, "data.bin"), b"the torrent's bytes\n" * 1000)
conflict_id = share(maker, conflict_src, "hybrid")
every = dict(ids)
every[conflict_id] = "conflicting"
ok = wait_for("the maker seeding everything", lambda: all(
    s["state"] == "seeding" for s in swarm_list(maker)) and len(swarm_list(maker)) == len(every),
    120)
c.check(ok, "the maker shares %d folders in v1, v2 and hybrid" % len(every))

tdir = tmp.sub("watch")
os.makedirs(tdir)
hashes = {}            # info_hash -> name, of the good ones
conflict_torrent = None
for s in swarm_list(maker):
    name = every[s["id"]]
    dst = os.path.join(tdir, "%s-%s.torrent" % (name, s["format"]))
    shutil.copyfile(s["torrent"], dst)
    if s["id"] == conflict_id:
        conflict_torrent = dst
    else:
        hashes[s["info_hash"]] = name
c.equal(sorted({s["format"] for s in swarm_list(maker)}), ["hybrid", "v1", "v2"],
        "the folder holds v1, v2 and hybrid torrents")
broken_torrent = os.path.join(tdir, "broken.torrent")
with open(broken_torrent, "wb") as f:
    f.write(b"d4:infod4:name3:abc12:piece lengthi-5eee")
# Neither is joined: not *.torrent, hidden, or in a folder below.
with open(os.path.join(tdir, "README.txt"), "w") as f:
    f.write("not a torrent\n")
shutil.copyfile(conflict_torrent, os.path.join(tdir, ".hidden.torrent"))
os.makedirs(os.path.join(tdir, "below"))
shutil.copyfile(broken_torrent, os.path.join(tdir, "below", "deeper.torrent"))

# ------------------------------------------------ the downloader's folder
# Its download-dir is the test's own: a join without --into stays in tmp.
joiner = Daemon(tmp, "joiner").start(env={"XDG_DOWNLOAD_DIR": tmp.sub("default-dl")})
into = tmp.sub("downloads")
user_file = os.path.join(into, "conflicting", "data.bin")
write_file(user_file, b"the user's own file!\n" * 952 + b"12345678")
c.equal(os.path.getsize(user_file), os.path.getsize(os.path.join(conflict_src, "data.bin")),
        "the user's file has the torrent's size (so it is hashed before refusing)")
before = file_state(user_file)
# item-01's files already there, byte for byte: adopted, not downloaded.
shutil.copytree(tmp.sub("src", "item-01"), os.path.join(into, "item-01"))

# ------------------------------------------------ usage and no daemon
r = joiner.cli("join", tdir, "--into", into, "--wait")
c.equal(r.returncode, 2, "--wait with a folder is bad usage (exit 2)")
r = joiner.cli("join")
c.equal(r.returncode, 2, "no argument is bad usage (exit 2)")
nodaemon = tmp.sub("no-daemon")
os.makedirs(nodaemon)
r = subprocess.run([SHOAL, "join", tdir, "--into", into, "--data-dir", nodaemon],
                   capture_output=True, text=True, timeout=30)
c.check(r.returncode == 3, "no daemon: exit 3", r.stderr)
c.equal(swarm_list(joiner), [], "nothing joined by the refused commands")

# ------------------------------------------------ the first run
t0 = time.monotonic()
r = joiner.cli("join", tdir, "--into", into, timeout=120)
secs = time.monotonic() - t0
c.check(r.returncode == 1, "a folder with two bad torrents: exit 1", r.stdout + r.stderr)
c.equal(r.stdout.strip(), "joined %d, already present 0, failed 2" % N_GOOD,
        "the summary counts %d joined and 2 failed" % N_GOOD)
fails = [l for l in r.stderr.splitlines() if l.startswith("shoal join: failed: ")]
c.check(len(fails) == 2, "one line per failure", r.stderr)
c.check(any(broken_torrent in l and "not a usable .torrent file: " in l for l in fails),
        "the malformed torrent's line names it and what is wrong", fails)
c.check(any(conflict_torrent in l and user_file in l for l in fails),
        "the conflicting torrent's line names it and the user's file in the way", fails)
c.check("deeper.torrent" not in r.stderr and ".hidden" not in r.stderr,
        "files below the folder and hidden ones are left alone", r.stderr)
c.equal(file_state(user_file), before, "the user's file is untouched (inode, size, mtime, bytes)")
print("# %d torrents joined in %.2f s" % (N_GOOD + 2, secs))

listed = swarm_list(joiner)
c.equal(sorted(s["info_hash"] for s in listed), sorted(hashes),
        "GET /api/v1/swarms holds exactly the %d good ones" % N_GOOD)
c.equal(sorted({s["format"] for s in listed}), ["hybrid", "v1", "v2"],
        "joined in all three formats")
c.check(all(s["role"] == "join" and s["root"].startswith(into) for s in listed),
        "each joined into --into", [s["root"] for s in listed][:3])
adopted = [s for s in listed if s["name"] == "item-01"]
c.check(adopted and adopted[0]["state"] == "seeding",
        "the torrent whose files were already there is adopted and seeding",
        adopted and adopted[0]["state"])

# ------------------------------------------------ several FILE, LINK and FOLDER arguments
odd = tmp.sub("odd")
os.makedirs(odd)
fifo = os.path.join(odd, "pipe.torrent")
os.mkfifo(fifo)
t0 = time.monotonic()
st, doc, _ = joiner.request("POST", "/api/v1/swarms", {"link": fifo, "into": into}, timeout=10)
c.check(st == 400 and "regular file" in doc["error"]["message"] and time.monotonic() - t0 < 5,
        "the daemon refuses a FIFO named .torrent at once, without waiting on it", (st, doc))
r = joiner.cli("join", odd, broken_torrent, "magnet:?xt=urn:btih:nothex", conflict_torrent,
               os.path.join(tdir, "item-02-hybrid.torrent"), "--into", into, "--json",
               timeout=60)
c.check(r.returncode == 1, "several arguments with failures: exit 1", r.stderr)
try:
    doc = json.loads(r.stdout)
except ValueError:
    doc = {}
    c.check(False, "--json prints one JSON document", r.stdout[:500])
res = doc.get("results", [])
c.equal([x.get("result") for x in res], ["failed", "failed", "failed", "failed", "existing"],
        "--json: one result per swarm, in the order given")
c.equal((doc.get("joined"), doc.get("existing"), doc.get("failed"), doc.get("not_tried")),
        (0, 1, 4, 0), "--json: the counts")
c.equal([x.get("link") for x in res],
        [fifo, broken_torrent, "magnet:?xt=urn:btih:nothex", conflict_torrent,
         os.path.join(tdir, "item-02-hybrid.torrent")], "--json: each result names its link")
c.equal([(x.get("error") or {}).get("code") for x in res[:4]],
        ["bad_link", "bad_link", "bad_link", "path_conflict"],
        "--json: each failure has the API's error code")
c.check("not a regular file" in res[0].get("error", {}).get("message", ""),
        "the FIFO is a failure, not a wait", res[:1])
c.check(res[-1].get("swarm", {}).get("name") == "item-02",
        "an existing one carries its swarm", res[-1:])
c.equal(file_state(user_file), before, "the user's file is still untouched")

# ------------------------------------------------ the rerun, bad ones removed
os.unlink(broken_torrent)
os.unlink(conflict_torrent)
r = joiner.cli("join", tdir, "--into", into, timeout=120)
c.check(r.returncode == 0, "the rerun exits 0", r.stdout + r.stderr)
c.equal(r.stdout.strip(), "joined 0, already present %d, failed 0" % N_GOOD,
        "the rerun finds all %d already present" % N_GOOD)
r = joiner.cli("join", tdir, "--into", into, "--json", timeout=120)
try:
    doc = json.loads(r.stdout)
except ValueError:
    doc = {}
c.equal((r.returncode, doc.get("joined"), doc.get("existing"), doc.get("failed")),
        (0, 0, N_GOOD, 0), "--json rerun: exit 0, every one existing")
c.equal(sorted(x["swarm"]["info_hash"] for x in doc.get("results", [])), sorted(hashes),
        "--json rerun: the swarms are the joined ones")
c.equal(len(swarm_list(joiner)), N_GOOD, "no swarm added twice")

empty = tmp.sub("empty")
os.makedirs(empty)
r = joiner.cli("join", empty, "--into", into)
c.check(r.returncode == 0 and "no .torrent files" in r.stderr,
        "an empty folder: exit 0, saying there was nothing to join", r.stderr)

c.equal(joiner.stop(), 0, "the joiner stops cleanly")
c.equal(maker.stop(), 0, "the maker stops cleanly")
c.done()
