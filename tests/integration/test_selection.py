"""Choosing files (issue 17): a join that skips some of a swarm's files
downloads only the wanted ones and seeds them (`selection.done`, "seeding
(3 of 5 files)"), creates nothing else in the download folder, and gets a
file later un-skipped byte for byte; for a hybrid share and for a v1 share
whose pieces straddle a wanted and a skipped file (the skipped file's bytes
of them go to <data-dir>/parts/, never to the download folder).  Also:
priorities and sequential mode surviving a restart in the middle of a
download, --only and --skip globs (one swarm, a folder of .torrents, a
magnet whose rules wait for its metadata), a join that would skip every
file refused (a magnet's ends in error), an un-skip refused when the
user's file has the name (the file untouched), the API's validation, and a
high-priority file completing before a low one from a seed capped at a low
rate."""
import hashlib
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_for, wait_state, write_file  # noqa: E402

c = Checks("selection")
tmp = TestDir()

# Five files, in the torrent's order (paths sorted):
#   0 a/one.bin   1 a/two.nfo   2 b/four.nfo   3 b/three.bin   4 five.txt
# None a multiple of 16 KiB, the piece length shoal picks for anything up
# to 32 MiB (transfer/metainfo.h), so in the v1 share pieces straddle
# one.bin|two.nfo, four.nfo|three.bin and three.bin|five.txt.
SIZES = {"a/one.bin": 40000, "a/two.nfo": 30001, "b/four.nfo": 20005, "b/three.bin": 50003,
         "five.txt": 33333}
ORDER = sorted(SIZES)
WANTED = ["a/one.bin", "b/three.bin", "five.txt"]
SKIPPED = ["a/two.nfo", "b/four.nfo"]


def make_content(name):
    src = tmp.sub("src", name)
    for p, n in SIZES.items():
        write_file(os.path.join(src, p), os.urandom(n))
    return src


def read(path):
    with open(path, "rb") as f:
        return f.read()


def digest(path):
    return hashlib.sha256(read(path)).hexdigest()


def everything_under(root):
    """Every file and folder under `root`, relative, '/'-separated."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/"))
    return out


def expected_tree(name, files):
    out = {name}
    for p in files:
        parts = p.split("/")
        for k in range(1, len(parts) + 1):
            out.add("/".join([name] + parts[:k]))
    return out


def same_files(dl, name, src, files, what):
    bad = [p for p in files if not os.path.isfile(os.path.join(dl, name, p)) or
           digest(os.path.join(dl, name, p)) != digest(os.path.join(src, p))]
    return c.check(not bad, what, "(missing or different: %s)" % bad)


def files_of(d, sid):
    return d.api("GET", "/api/v1/swarms/%s/files" % sid)


def prio_map(doc):
    return {f["path"]: f["priority"] for f in doc["files"]}


def wait_file(d, sid, index, timeout=60):
    return wait_for("file %d of swarm %s complete" % (index, sid),
                    lambda: files_of(d, sid)["files"][index]["progress"] >= 1.0, timeout)


def join(d, link, into, expect=202, **fields):
    body = {"link": link, "into": into, "peers": [seed_addr]}
    body.update(fields)
    st, doc, _ = d.request("POST", "/api/v1/swarms", body)
    if expect is not None and st != expect:
        raise AssertionError("join %s -> %s %s" % (link, st, doc))
    return st, doc


def check_partial_seed(d, sid, dl, name, src, wanted, what):
    sw = wait_state(d, sid, "seeding", timeout=90)
    sel = sw.get("selection") or {}
    c.equal(sel.get("done"), True, "%s: selection.done once the wanted files are in" % what)
    c.equal((sel.get("files_wanted"), sel.get("files_skipped")),
            (len(wanted), len(SIZES) - len(wanted)), "%s: selection counts the files" % what)
    c.equal(sel.get("bytes_wanted"), sum(SIZES[p] for p in wanted),
            "%s: bytes_wanted is the wanted files' size" % what)
    c.equal(sel.get("bytes_have_wanted"), sel.get("bytes_wanted"),
            "%s: every wanted byte verified" % what)
    got = everything_under(dl)
    want = expected_tree(name, wanted)
    c.equal(sorted(got), sorted(want),
            "%s: the download folder holds the wanted files and their folders only" % what)
    same_files(dl, name, src, wanted, "%s: the wanted files are the seed's, byte for byte" % what)
    doc = files_of(d, sid)
    c.equal({f["path"]: f["on_disk"] for f in doc["files"]},
            {p: p in wanted for p in ORDER}, "%s: on_disk is true for exactly the wanted" % what)
    return sw


# ------------------------------------------------------------------ the seed
seed = Daemon(tmp, "seed").start()
seed_addr = "127.0.0.1:%d" % seed.port
src_h = make_content("hyb")
src_1 = make_content("vone")
st, doc, _ = seed.request("POST", "/api/v1/swarms", {"share": src_h})
hyb_id = doc["swarm"]["id"]
st, doc, _ = seed.request("POST", "/api/v1/swarms", {"share": src_1, "format": "v1"})
c.equal(st, 202, "a v1 share of the same layout")
v1_id = doc["swarm"]["id"]
hsw = wait_state(seed, hyb_id, "seeding")
vsw = wait_state(seed, v1_id, "seeding")
c.equal((hsw["format"], vsw["format"]), ("hybrid", "v1"), "the seed shares a hybrid and a v1")
hyb_torrent, v1_torrent = hsw["torrent"], vsw["torrent"]
PLEN = vsw["piece_length"]
c.equal(PLEN, 16384, "shoal picks 16 KiB pieces for the v1 share")
# Which v1 pieces straddle a wanted and a skipped file?
spans, off = {}, 0
for p in ORDER:
    spans[p] = (off, off + SIZES[p])
    off += SIZES[p]
straddle = [k for k in range(vsw["num_pieces"])
            if {p in WANTED for p in ORDER
                if spans[p][0] < (k + 1) * PLEN and spans[p][1] > k * PLEN} == {True, False}]
c.check(len(straddle) >= 2, "v1 pieces straddle wanted and skipped files", str(straddle))

# The share answers the files API read-only, every file normal.
doc = files_of(seed, hyb_id)
c.equal(prio_map(doc), {p: "normal" for p in ORDER}, "a share's files are all normal")
c.equal([f["path"] for f in doc["files"]], ORDER,
        "the files API lists the torrent's files in order, pad files left out")
st, doc, _ = seed.request("POST", "/api/v1/swarms/%d/files" % hyb_id,
                          {"priorities": [{"index": 0, "priority": "skip"}]})
c.equal((st, (doc or {}).get("error", {}).get("code")), (409, "not_a_join"),
        "a share's priorities cannot be changed (409 not_a_join)")
r = seed.cli("files", str(hyb_id), "--set", "0=skip")
c.check(r.returncode == 1 and r.stderr.strip(), "shoal files --set on a share fails saying why",
        r.stdout + r.stderr)

# ------------------------------------- 1. hybrid, by the CLI: skip two files
l1 = Daemon(tmp, "leech1").start()
dl1 = tmp.sub("dl1")
r = l1.cli("join", hyb_torrent, "--into", dl1, "--peer", seed_addr, "--skip", "*.nfo", "--wait",
           timeout=120)
c.equal(r.returncode, 0, "shoal join --skip '*.nfo' --wait completes")
c.check("(3 of 5 files)" in r.stdout, "join says it downloads 3 of 5 files", r.stdout)
sw = check_partial_seed(l1, 1, dl1, "hyb", src_h, WANTED, "hybrid")
r = l1.cli("status")
c.check(re.search(r"\bseeding \(3 of 5 files\)", r.stdout) is not None,
        "shoal status shows 'seeding (3 of 5 files)'", r.stdout)
c.check(re.search(r"^\s*1\s.*\b100\.0%", r.stdout, re.M) is not None,
        "and the partial seed 100% done", r.stdout)
r = l1.cli("files", "1")
c.equal(r.returncode, 0, "shoal files lists the files")
rows = {m.group(3): (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^\s*(\d+)\s+(skip|low|normal|high)\s+\S+%\s+.*?\s(\S+)$",
                             r.stdout, re.M)}
c.check(rows == {p: (i, "skip" if p in SKIPPED else "normal") for i, p in enumerate(ORDER)},
        "shoal files: index, priority and path of each file", r.stdout)
r = l1.cli("files", "1", "--json")
try:
    jdoc = json.loads(r.stdout)
except ValueError:
    jdoc = {}
c.check(jdoc.get("metadata") is True and len(jdoc.get("files", [])) == 5 and
        jdoc.get("sequential") is False, "shoal files --json prints the API's object", r.stdout)

# Un-skip a/two.nfo with the CLI (a glob): it arrives, byte for byte.
r = l1.cli("files", "1", "--set", "two.nfo=normal")
c.equal(r.returncode, 0, "shoal files --set GLOB=normal exits 0")
c.check(re.search(r"^\s*1\s+normal\s.*a/two\.nfo$", r.stdout, re.M) is not None,
        "the table printed after shows it normal", r.stdout)
c.check(wait_file(l1, 1, ORDER.index("a/two.nfo")), "the un-skipped file completes")
sw = wait_state(l1, 1, "seeding", timeout=60)
c.equal((sw["selection"] or {}).get("files_wanted"), 4, "now 4 files wanted")
same_files(dl1, "hyb", src_h, WANTED + ["a/two.nfo"], "hybrid: the un-skipped file is the seed's")
c.check(not os.path.exists(os.path.join(dl1, "hyb", "b", "four.nfo")),
        "the file still skipped is still absent")

# ---------------- 6. an un-skip refused: the user's file has the name
user_file = os.path.join(dl1, "hyb", "b", "four.nfo")
write_file(user_file, b"the user's own notes, not the torrent's\n")
before = (read(user_file), os.stat(user_file).st_mtime_ns, os.stat(user_file).st_ino)
st, doc, _ = l1.request("POST", "/api/v1/swarms/1/files",
                        {"priorities": [{"index": ORDER.index("b/four.nfo"), "priority": "high"}]})
c.equal((st, (doc or {}).get("error", {}).get("code")), (409, "path_conflict"),
        "un-skipping a file whose name is taken is 409 path_conflict")
r = l1.cli("files", "1", "--set", "b/four.nfo=normal")
c.check(r.returncode == 1 and "four.nfo" in r.stderr,
        "shoal files --set says so and exits 1", r.stdout + r.stderr)
time.sleep(1)
c.equal((read(user_file), os.stat(user_file).st_mtime_ns, os.stat(user_file).st_ino), before,
        "the user's file is untouched")
c.equal(prio_map(files_of(l1, 1))["b/four.nfo"], "skip", "and the file stays skipped")

# ---------------- 7. the API's validation (nothing changed by a refusal)
bad = [
    ({"priorities": [{"index": 0, "priority": "urgent"}]}, "an unknown priority"),
    ({"priorities": [{"index": 5, "priority": "low"}]}, "an index out of range"),
    ({"priorities": [{"index": -1, "priority": "low"}]}, "a negative index"),
    ({"priorities": [{"index": 0, "priority": "low"}, {"index": 0, "priority": "high"}]},
     "a duplicate index"),
    ({"priorities": [{"index": "0", "priority": "low"}]}, "an index that is a string"),
    ({"priorities": {"index": 0, "priority": "low"}}, "priorities not a list"),
    ({"sequential": "yes"}, "sequential not a boolean"),
    ({}, "neither priorities nor sequential"),
]
before = files_of(l1, 1)
for body, what in bad:
    st, doc, _ = l1.request("POST", "/api/v1/swarms/1/files", body)
    c.equal((st, (doc or {}).get("error", {}).get("code")), (400, "bad_request"),
            "POST files with %s is 400 bad_request" % what)
c.equal(files_of(l1, 1), before, "the refused requests changed nothing")
r = l1.cli("files", "1", "--set", "0=urgent")
c.equal(r.returncode, 2, "shoal files --set 0=urgent is a usage error (exit 2)")
r = l1.cli("files", "1", "--set", "7=low")
c.check(r.returncode == 1 and "no file 7" in r.stderr, "shoal files --set 7=low: no such file",
        r.stdout + r.stderr)
r = l1.cli("files", "1", "--set", "*.iso=low")
c.check(r.returncode == 1 and "matches" in r.stderr, "a glob matching nothing is an error",
        r.stdout + r.stderr)
r = l1.cli("files", "1", "--sequential", "maybe")
c.equal(r.returncode, 2, "--sequential takes on or off")
r = l1.cli("files", "nine")
c.equal(r.returncode, 2, "a swarm that is not an id is a usage error")
st, _, _ = l1.request("GET", "/api/v1/swarms/77/files")
c.equal(st, 404, "GET files of an unknown swarm is 404")
r = l1.cli("files", "77")
c.equal(r.returncode, 1, "shoal files of an unknown swarm exits 1")
c.equal(files_of(l1, 1), before, "nothing changed by the CLI's refusals either")
c.equal(l1.stop(), 0, "leecher 1 stops cleanly")

# -------------------------------- 2. v1, by the API: pieces straddle files
l2 = Daemon(tmp, "leech2").start()
dl2 = tmp.sub("dl2")
st, doc = join(l2, v1_torrent, dl2, skip=["*.nfo"])
sid2 = doc["swarm"]["id"]
doc_hash2 = doc["swarm"]["info_hash"]
check_partial_seed(l2, sid2, dl2, "vone", src_1, WANTED, "v1")
parts = os.path.join(l2.data_dir, "parts")
part_files = sorted(os.listdir(parts)) if os.path.isdir(parts) else []
c.equal(part_files, ["%s.part" % doc_hash2],
        "the straddling bytes went to <data-dir>/parts/<info-hash>.part")
blob = b"".join(read(os.path.join(parts, n)) for n in part_files)
# two.nfo's first bytes are in the piece it shares with one.bin, and
# four.nfo's last ones in the piece it shares with three.bin.
two = read(os.path.join(src_1, "a", "two.nfo"))
four = read(os.path.join(src_1, "b", "four.nfo"))
c.check(two[:4096] in blob and four[-4096:] in blob,
        "the part file holds the skipped files' bytes of the straddling pieces")
c.check(not any(n.endswith(".part") or n.startswith(".") for n in
                (os.path.basename(p) for p in everything_under(dl2))),
        "no part file or hidden file in the download folder")
# The content of a skipped file never made is not served: whatever is at
# its name is the user's, not the torrent's (its shared pieces are had).
user_nfo = os.path.join(dl2, "vone", "a", "two.nfo")
with open(user_nfo, "wb") as fh:
    fh.write(b"the user's own notes")
st, doc, _ = l2.request("GET", "/api/v1/swarms/%d/files/%d/content" % (sid2, ORDER.index("a/two.nfo")),
                        headers={"Range": "bytes=0-99"})
c.check(st == 409 and doc and doc["error"]["code"] == "file_skipped",
        "a skipped file's content is 409 file_skipped, not the user's bytes", (st, doc))
os.unlink(user_nfo)
# `shoal verify` of the partial v1 seed hashes the straddling pieces with
# their part-file bytes: nothing is dropped; a damaged part file drops the
# piece, which is fetched again.
def check_seq(d, sid, seq):
    return wait_for("check %d" % seq, lambda: (
        lambda lc: lc if lc and lc.get("seq") == seq else None)(
        d.api("GET", "/api/v1/swarms/%d" % sid).get("last_check")), 30)
have2 = l2.api("GET", "/api/v1/swarms/%d" % sid2)["pieces_have"]
l2.api("POST", "/api/v1/swarms/%d/verify" % sid2, expect=202)
lc = check_seq(l2, sid2, 1)
c.check(lc and lc["result"] == "ok" and lc["pieces_dropped"] == 0,
        "verify of a partial v1 seed drops nothing", str(lc))
part_path = os.path.join(parts, "%s.part" % doc_hash2)
off = blob.index(two[:4096]) if two[:4096] in blob else 0
with open(part_path, "r+b") as fh:
    fh.seek(off + 10)
    byte = fh.read(1)
    fh.seek(off + 10)
    fh.write(bytes([byte[0] ^ 0xFF]))
l2.api("POST", "/api/v1/swarms/%d/verify" % sid2, expect=202)
lc = check_seq(l2, sid2, 2)
c.check(lc and lc["pieces_dropped"] == 1, "a damaged part file drops the piece it holds bytes of",
        str(lc))
c.check(wait_for("refetched", lambda: l2.api("GET", "/api/v1/swarms/%d" % sid2)["pieces_have"]
                 == have2, 30), "and the piece is fetched again")
# Un-skip a/two.nfo with the API: the piece whose bytes of it were in the
# part file is fetched again, and the file arrives byte for byte.
st, doc, _ = l2.request("POST", "/api/v1/swarms/%d/files" % sid2,
                        {"priorities": [{"index": ORDER.index("a/two.nfo"), "priority": "normal"}]})
c.equal(st, 200, "POST files un-skips a v1 file")
c.equal(prio_map(doc or {"files": []}).get("a/two.nfo"), "normal",
        "the reply is the GET shape, the file now normal")
c.check(wait_file(l2, sid2, ORDER.index("a/two.nfo")), "the un-skipped v1 file completes")
wait_state(l2, sid2, "seeding", timeout=60)
same_files(dl2, "vone", src_1, WANTED + ["a/two.nfo"],
           "v1: the un-skipped file is the seed's, byte for byte")
c.equal(sorted(everything_under(dl2)), sorted(expected_tree("vone", WANTED + ["a/two.nfo"])),
        "v1: the download folder holds the 4 wanted files only")
c.check(os.path.isdir(parts), "the part file's folder is there while a file is still skipped")
# Un-skip the last one: every file wanted, selection null, all identical.
st, doc, _ = l2.request("POST", "/api/v1/swarms/%d/files" % sid2,
                        {"priorities": [{"index": ORDER.index("b/four.nfo"), "priority": "low"}]})
c.equal(st, 200, "the last skipped v1 file un-skipped")
sw = wait_for("every file of the v1 swarm", lambda: (
    lambda s: s if s["state"] == "seeding" and s["pieces_have"] == s["num_pieces"] else None)(
    l2.api("GET", "/api/v1/swarms/%d" % sid2)), 60)
c.check(sw and sw.get("selection") is None, "with every file wanted, selection is null",
        str(sw and sw.get("selection")))
same_files(dl2, "vone", src_1, ORDER, "v1: all five files are the seed's")
c.check(not os.path.exists(os.path.join(parts, "%s.part" % doc_hash2)),
        "with no file skipped, the part file is gone")
c.equal(l2.stop(), 0, "leecher 2 stops cleanly")

# ---------- 3. priorities and sequential mode across restarts mid-download
l3 = Daemon(tmp, "leech3").start()
dl3 = tmp.sub("dl3")
# No peer yet: the swarm waits with nothing downloaded.
r = l3.cli("join", v1_torrent, "--into", dl3, "--skip", "b/four.nfo", "--sequential")
c.equal(r.returncode, 0, "join --skip b/four.nfo --sequential, no peer yet")
c.equal(files_of(l3, 1)["sequential"], True, "join --sequential sets sequential mode")
c.equal(l3.api("GET", "/api/v1/swarms/1").get("sequential"), True,
        "GET swarm says sequential too")
r = l3.cli("files", "1", "--set", "0=low", "--set", "*.txt=high", "--sequential", "off")
c.equal(r.returncode, 0, "shoal files --set and --sequential off")
want3 = {"a/one.bin": "low", "a/two.nfo": "normal", "b/four.nfo": "skip",
         "b/three.bin": "normal", "five.txt": "high"}
doc = files_of(l3, 1)
c.equal((prio_map(doc), doc["sequential"]), (want3, False), "priorities set, sequential off")
r = l3.cli("files", "1", "--sequential", "on")
c.check(r.returncode == 0 and "sequential on" in r.stdout, "sequential on again", r.stdout)
c.equal(l3.stop(), 0, "leecher 3 stops (before any byte)")
l3.start()
doc = files_of(l3, 1)
c.equal((prio_map(doc), doc["sequential"]), (want3, True),
        "priorities and sequential mode survive a restart")
# Now some pieces, slowly, and a restart in the middle of it.
l3.cli("limit", "1", "--download", "16K")
join(l3, v1_torrent, dl3, expect=200)
got = wait_for("some pieces", lambda: l3.api("GET", "/api/v1/swarms/1")["pieces_have"] >= 2, 30)
sw = l3.api("GET", "/api/v1/swarms/1")
c.check(got and sw["state"] == "downloading", "part of the download is in",
        "%s %s" % (sw["state"], sw["pieces_have"]))
c.equal(l3.kill9(), -9, "leecher 3 killed mid-download")
l3.start()
doc = files_of(l3, 1)
c.equal((prio_map(doc), doc["sequential"]), (want3, True),
        "priorities and sequential mode survive a kill mid-download")
l3.cli("limit", "1", "--download", "0")
join(l3, v1_torrent, dl3, expect=200)
wants3 = [p for p in ORDER if want3[p] != "skip"]
check_seed = wait_state(l3, 1, "seeding", timeout=90)
c.equal((check_seed.get("selection") or {}).get("done"), True, "the sequential download completes")
same_files(dl3, "vone", src_1, wants3, "sequential v1 download: the wanted files are the seed's")
c.equal(sorted(everything_under(dl3)), sorted(expected_tree("vone", wants3)),
        "and nothing else is in its folder")
c.equal(l3.stop(), 0, "leecher 3 stops cleanly")

# ------------- 4. --only with globs: one swarm, and a folder of .torrents
l4 = Daemon(tmp, "leech4").start()
dl4 = tmp.sub("dl4")
watch = tmp.sub("watch")
os.makedirs(watch)
shutil.copyfile(hyb_torrent, os.path.join(watch, "hyb.torrent"))
shutil.copyfile(v1_torrent, os.path.join(watch, "vone.torrent"))
# 'a/*' by path, 'three.bin' by base name; then '*.nfo' skipped.
r = l4.cli("join", watch, "--into", dl4, "--peer", seed_addr, "--only", "a/*", "--only",
           "three.bin", "--skip", "*.nfo")
c.check(r.returncode == 0 and "joined 2" in r.stdout, "join FOLDER --only --skip joins both",
        r.stdout + r.stderr)
want4 = ["a/one.bin", "b/three.bin"]
for sid, name, src in ((1, "hyb", src_h), (2, "vone", src_1)):
    c.equal(prio_map(files_of(l4, sid)), {p: "normal" if p in want4 else "skip" for p in ORDER},
            "%s: the same rules for each swarm of the folder" % name)
for sid, name, src in ((1, "hyb", src_h), (2, "vone", src_1)):
    wait_state(l4, sid, "seeding", timeout=90)
    same_files(dl4, name, src, want4, "--only: %s's two files are the seed's" % name)
c.equal(sorted(everything_under(dl4)),
        sorted(expected_tree("hyb", want4) | expected_tree("vone", want4)),
        "--only: nothing else in the download folder")

# ---------------- 5. a join whose rules leave no file is refused
dl5 = tmp.sub("dl5")
os.makedirs(dl5)
l5 = Daemon(tmp, "leech5").start()
for fields, what in (({"skip": ["*"]}, "skip '*'"), ({"only": ["*.iso"]}, "only '*.iso'"),
                     ({"only": ["a/*"], "skip": ["a/*"]}, "only and skip the same")):
    st, doc = join(l5, hyb_torrent, dl5, expect=None, **fields)
    c.equal((st, (doc or {}).get("error", {}).get("code")), (400, "bad_request"),
            "a .torrent join with %s is 400 bad_request" % what)
c.check("no file" in str((doc or {}).get("error", {}).get("message")),
        "saying the selection leaves no file", str(doc))
r = l5.cli("join", hyb_torrent, "--into", dl5, "--skip", "*")
c.check(r.returncode == 1 and "no file" in r.stderr, "shoal join --skip '*' exits 1 saying why",
        r.stdout + r.stderr)
for fields, what in (({"skip": [""]}, "an empty pattern"), ({"skip": "*.nfo"}, "skip not a list"),
                     ({"only": ["x"] * 65}, "65 patterns"), ({"sequential": 1}, "sequential 1")):
    st, doc = join(l5, hyb_torrent, dl5, expect=None, **fields)
    c.equal(st, 400, "a join with %s is 400" % what)
r = l5.cli("join", hyb_torrent, "--into", dl5, "--only", "")
c.equal(r.returncode, 2, "shoal join --only '' is a usage error")
c.equal(os.listdir(dl5), [], "nothing created by the refused joins")
c.equal(l5.api("GET", "/api/v1/swarms")["swarms"], [], "and no swarm recorded")
# A magnet's rules wait for its metadata: then applied, or, leaving no
# file, an error.
st, doc = join(l5, hsw["magnet"], dl5, skip=["*"])
sw = wait_state(l5, doc["swarm"]["id"], "error", timeout=60)
c.check("no file" in str(sw.get("error")), "a magnet whose rules leave no file ends in error",
        str(sw.get("error")))
st, doc = join(l5, vsw["magnet"], dl5, peers=[], only=["five.txt"], sequential=True)
msid = doc["swarm"]["id"]
doc = files_of(l5, msid)
c.equal((doc.get("metadata"), doc.get("files"), doc.get("rules")),
        (False, [], {"only": ["five.txt"], "skip": []}),
        "before the metadata: no files, the join's rules")
c.equal(doc.get("sequential"), True, "and the join's sequential mode")
st, doc, _ = l5.request("POST", "/api/v1/swarms/%d/files" % msid,
                        {"priorities": [{"index": 0, "priority": "high"}]})
c.equal((st, (doc or {}).get("error", {}).get("code")), (409, "no_metadata"),
        "priorities before the metadata are 409 no_metadata")
r = l5.cli("files", str(msid))
c.check(r.returncode == 0 and "not known yet" in r.stdout and "only five.txt" in r.stdout,
        "shoal files says the list is not known yet and shows the rules", r.stdout)
r = l5.cli("files", str(msid), "--set", "0=high")
c.equal(r.returncode, 1, "shoal files --set before the metadata exits 1")
join(l5, vsw["magnet"], dl5, expect=200)
sw = wait_state(l5, msid, "seeding", timeout=60)
c.equal((sw.get("selection") or {}).get("files_wanted"), 1, "the rules applied when it came")
c.equal(sorted(everything_under(dl5)), sorted(expected_tree("vone", ["five.txt"])),
        "only five.txt downloaded by the magnet")
same_files(dl5, "vone", src_1, ["five.txt"], "and it is the seed's")
c.equal(l5.stop(), 0, "leecher 5 stops cleanly")

# ---------------- 8. priorities order: high before low from a slow seed
src_p = tmp.sub("src", "prio")
write_file(os.path.join(src_p, "a_low.bin"), os.urandom(160 * 1024))
write_file(os.path.join(src_p, "b_high.bin"), os.urandom(160 * 1024))
st, doc, _ = seed.request("POST", "/api/v1/swarms", {"share": src_p})
pid = doc["swarm"]["id"]
psw = wait_state(seed, pid, "seeding")
seed.cli("limit", str(pid), "--upload", "64K")
st, doc = join(l4, psw["torrent"], dl4, peers=[])
lp = doc["swarm"]["id"]
l4.api("POST", "/api/v1/swarms/%d/files" % lp,
       {"priorities": [{"index": 0, "priority": "low"}, {"index": 1, "priority": "high"}]})
join(l4, psw["torrent"], dl4, expect=200)
low_at_high_done = None
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    fs = files_of(l4, lp)["files"]
    if fs[1]["progress"] >= 1.0:
        low_at_high_done = fs[0]["progress"]
        break
    time.sleep(0.05)
print("# the low file was at %s when the high one completed" % low_at_high_done)
c.check(low_at_high_done is not None and low_at_high_done < 1.0,
        "from a seed capped at 64K/s the high file completes before the low one",
        "(low file at %s when the high one completed)" % low_at_high_done)
wait_state(l4, lp, "seeding", timeout=60)
same_files(dl4, "prio", src_p, ["a_low.bin", "b_high.bin"], "both prioritized files arrive")
c.equal(l4.stop(), 0, "leecher 4 stops cleanly")
c.equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
