"""What test_distribution_smoke.py and test_distribution_netns.py both check
of a tiny bench/distribution run: the CSV shape (header, one row per mode and
N, bounds recomputed, link columns), the JSON for bench/run, the picture when
gnuplot is there, and that every downloader's copy is byte-identical to the
original (checked here again, not only by the script)."""
import csv
import filecmp
import glob
import json
import os
import shutil
import subprocess
import sys

from shoal_harness import SHOAL, SRCDIR  # noqa: E402

HEADER = ["mode", "n", "file_bytes", "us_Bps", "ui_Bps", "dmin_Bps", "bound_s", "measured_s",
          "delay_ms", "loss_pct", "shaper", "first_byte_s", "endgame_s", "wire_per_payload"]


def run_and_check(c, tmp, modes, ns, F, U, extra=(), link=None, timeout=300):
    """Run bench/distribution on N in `ns`, F bytes, u = U bytes/s, and check it.
    link: None for loopback, else {"delays": (lo, hi), "loss_pct": x, "shaper": s}."""
    out, work = tmp.sub("out"), tmp.sub("work")
    cmd = ["/usr/bin/python3", os.path.join(SRCDIR, "bench", "distribution"),
           "--ns", ",".join(map(str, ns)), "--file-mib", "%g" % (F / (1 << 20)),
           "--u-kib", str(U // 1024), "--modes", ",".join(modes),
           "--out", out, "--shoal", SHOAL, "--keep", "--work", work] + list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(r.stdout[-4000:])
    c.equal(r.returncode, 0, "bench/distribution exits 0")
    if r.returncode != 0:
        print(r.stderr[-3000:])

    rows = []
    try:
        with open(os.path.join(out, "distribution.csv")) as f:
            rows = list(csv.reader(f))
    except OSError as e:
        c.check(False, "distribution.csv written", str(e))
    c.equal(rows[0] if rows else None, HEADER, "CSV header")
    body = [dict(zip(HEADER, x)) for x in rows[1:]]
    c.equal(sorted((x["mode"], int(x["n"])) for x in body),
            sorted((m, n) for m in modes for n in ns), "one CSV row per mode and N")
    for x in body:
        mode, n = x["mode"], int(x["n"])
        f, us, ui, dmin = (int(x[k]) for k in ("file_bytes", "us_Bps", "ui_Bps", "dmin_Bps"))
        bound = float(x["bound_s"])
        measured = float(x["measured_s"]) if x["measured_s"] else None
        c.check((f, us, ui, dmin) == (F, 10 * U, U, 20 * U), "%s N=%d: F and rates as asked" % (mode, n))
        want = max(n * f / us, f / dmin) if mode in ("client-server", "nginx") else \
            max(f / us, f / dmin, n * f / (us + n * ui))
        c.check(abs(bound - want) < 1e-3, "%s N=%d: bound_s = the formula" % (mode, n),
                "(%s vs %s)" % (bound, want))
        # A lower bound, so a run on a slow machine cannot fail it: every cap's
        # burst is at most 10 ms of its rate (docs/architecture.md, "Rate limits
        # hold over short windows"; the tc shapers' bursts are 10 ms too), so
        # no machine moves F faster than about (F - 10 ms x u_s) / u_s, 0.19 s
        # here against a bound of 0.20 s.  Half the bound leaves room for the
        # clock and the polling, nothing more.
        c.check(measured is not None and measured >= 0.5 * bound,
                "%s N=%d: measured_s present and not below half the bound" % (mode, n),
                "(%s)" % measured)
        fb = float(x["first_byte_s"]) if x["first_byte_s"] else None
        eg = float(x["endgame_s"]) if x["endgame_s"] else None
        c.check(fb is not None and measured is not None and 0 <= fb <= measured,
                "%s N=%d: first byte recorded, within the run" % (mode, n), "(%s)" % fb)
        c.check(eg is not None and measured is not None and 0 <= eg <= measured,
                "%s N=%d: endgame recorded, within the run" % (mode, n), "(%s)" % eg)
        if link is None:
            c.check((float(x["delay_ms"]), float(x["loss_pct"]), x["shaper"], x["wire_per_payload"])
                    == (0.0, 0.0, "app", ""), "%s N=%d: loopback link columns" % (mode, n))
        else:
            lo, hi = link["delays"]
            c.check(lo <= float(x["delay_ms"]) <= hi and float(x["loss_pct"]) == link["loss_pct"]
                    and x["shaper"] == link["shaper"], "%s N=%d: link columns as asked" % (mode, n),
                    "(%s %s %s)" % (x["delay_ms"], x["loss_pct"], x["shaper"]))
            # Every payload byte crossed a link once at least, in frames with headers.
            w = float(x["wire_per_payload"]) if x["wire_per_payload"] else None
            c.check(w is not None and 1.0 < w < 1.5,
                    "%s N=%d: bytes on the wire / payload between 1 and 1.5" % (mode, n), "(%s)" % w)

    with open(os.path.join(out, "distribution.json")) as f:
        doc = json.load(f)
    c.equal(doc.get("status"), "ok", "distribution.json status")
    c.check(len(doc.get("rows", [])) >= 2, "distribution.json has summary rows")
    if link is not None:
        runs = doc.get("raw", {}).get("runs", [])
        c.check(runs and all(len(r.get("links", [])) == r["n"] + 1 for r in runs),
                "every run recorded each host's link counters")
    if shutil.which("gnuplot"):
        with open(os.path.join(out, "distribution.png"), "rb") as f:
            c.equal(f.read(8), b"\x89PNG\r\n\x1a\n", "distribution.png is a PNG")

    # Every downloader's copy, byte for byte against the original.
    orig = glob.glob(os.path.join(work, "shoal-dist-*", "content", "dist.bin"))
    c.equal(len(orig), 1, "the original file is kept")
    copies = glob.glob(os.path.join(work, "shoal-dist-*", "*-n*", "l*-files", "**", "dist.bin"),
                       recursive=True)
    c.equal(len(copies), len(modes) * sum(ns), "one copy per downloader")
    c.check(orig and copies and all(filecmp.cmp(orig[0], p, shallow=False) for p in copies),
            "every copy is byte-identical to the original")
    return doc
