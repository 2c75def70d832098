"""bench/distribution, tiny: N = 1, 2 on a 2 MiB file.  Checks the CSV shape
(header, one row per mode and N, bounds recomputed), the JSON for bench/run,
the picture when gnuplot is there, and that every downloader's copy is
byte-identical to the original (checked here again, not only by the script)."""
import csv
import filecmp
import glob
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import SHOAL, SRCDIR, Checks, TestDir  # noqa: E402

c = Checks("distribution_smoke")
tmp = TestDir(prefix="shoal-dist-smoke-")
out, work = tmp.sub("out"), tmp.sub("work")
try:
    import libtorrent  # noqa: F401
    modes = ["p2p", "client-server", "libtorrent"]
except ImportError:
    modes = ["p2p", "client-server"]
ns = [1, 2]
F, U = 2 << 20, 1 << 20

r = subprocess.run(["/usr/bin/python3", os.path.join(SRCDIR, "bench", "distribution"),
                    "--ns", "1,2", "--file-mib", "2", "--u-kib", "1024", "--modes", ",".join(modes),
                    "--out", out, "--shoal", SHOAL, "--keep", "--work", work],
                   capture_output=True, text=True, timeout=300)
sys.stdout.write(r.stdout[-3000:])
c.equal(r.returncode, 0, "bench/distribution exits 0")
if r.returncode != 0:
    print(r.stderr[-3000:])

rows = []
try:
    with open(os.path.join(out, "distribution.csv")) as f:
        rows = list(csv.reader(f))
except OSError as e:
    c.check(False, "distribution.csv written", str(e))
c.equal(rows[0] if rows else None,
        ["mode", "n", "file_bytes", "us_Bps", "ui_Bps", "dmin_Bps", "bound_s", "measured_s"],
        "CSV header")
body = rows[1:]
c.equal(sorted((x[0], int(x[1])) for x in body), sorted((m, n) for m in modes for n in ns),
        "one CSV row per mode and N")
for x in body:
    mode, n, f, us, ui, dmin, bound, measured = x[0], int(x[1]), *map(int, x[2:6]), \
        float(x[6]), float(x[7]) if x[7] else None
    c.check((f, us, ui, dmin) == (F, 10 * U, U, 20 * U), "%s N=%d: F and rates as asked" % (mode, n))
    want = max(n * f / us, f / dmin) if mode == "client-server" else \
        max(f / us, f / dmin, n * f / (us + n * ui))
    c.check(abs(bound - want) < 1e-3, "%s N=%d: bound_s = the formula" % (mode, n),
            "(%s vs %s)" % (bound, want))
    # A lower bound, so a run on a slow machine cannot fail it: every cap's
    # burst is at most 10 ms of its rate (docs/architecture.md, "Rate limits
    # hold over short windows"), so no machine moves F faster than about
    # (F - 10 ms x u_s) / u_s, 0.19 s here against a bound of 0.20 s.  Half
    # the bound leaves room for the clock and the polling, nothing more.
    c.check(measured is not None and measured >= 0.5 * bound,
            "%s N=%d: measured_s present and not below half the bound" % (mode, n),
            "(%s)" % measured)

with open(os.path.join(out, "distribution.json")) as f:
    doc = json.load(f)
c.equal(doc.get("status"), "ok", "distribution.json status")
c.check(len(doc.get("rows", [])) >= 2, "distribution.json has summary rows")
if shutil.which("gnuplot"):
    with open(os.path.join(out, "distribution.png"), "rb") as f:
        c.equal(f.read(8), b"\x89PNG\r\n\x1a\n", "distribution.png is a PNG")

# Every downloader's copy, byte for byte against the original.
orig = glob.glob(os.path.join(work, "shoal-dist-*", "content", "dist.bin"))
c.equal(len(orig), 1, "the original file is kept")
copies = [p for p in glob.glob(os.path.join(work, "shoal-dist-*", "*-n*", "l*-files", "**", "dist.bin"),
                               recursive=True)]
c.equal(len(copies), len(modes) * sum(ns), "one copy per downloader")
c.check(orig and copies and all(filecmp.cmp(orig[0], p, shallow=False) for p in copies),
        "every copy is byte-identical to the original")
c.done()
