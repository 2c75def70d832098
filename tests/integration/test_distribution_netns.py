"""bench/distribution --netns, tiny: N = 2 on a 2 MiB file, every host in its
own network namespace on fast links (1-2 ms one-way, 0.1 % loss, tbf), all
four rows (nginx + curl, shoal client-server, shoal p2p, libtorrent).  Every
row must finish with byte-identical copies and the CSV carries the link
columns and the gap records (distribution_checks.py).  Then bench/linkemu's
own check: the delay and loss it gives a host are the ones asked for (its
ceiling, a 1 s flood, is left to the benchmark).  Needs
root, /dev/net/tun, tc, nginx and curl: SKIP (77) otherwise."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "lib"))
from shoal_harness import SRCDIR, SHOAL, Checks, TestDir  # noqa: E402
from distribution_checks import run_and_check  # noqa: E402
import netlab  # noqa: E402

ok, why = netlab.netns_available()
if ok and not ((shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")) and shutil.which("curl")):
    ok, why = False, "nginx or curl missing (apt-get install -y nginx-light curl)"
if ok:
    try:
        import libtorrent  # noqa: F401
    except ImportError:
        ok, why = False, "python3-libtorrent missing"
if not ok:
    print("SKIP: %s" % why)
    sys.exit(77)

c = Checks("distribution_netns")
tmp = TestDir(prefix="shoal-dist-netns-")
os.chmod(tmp.path, 0o755)   # nginx's workers (nobody) read the content under it
link = {"delays": (1.0, 2.0), "loss_pct": 0.1, "shaper": "tbf"}
doc = run_and_check(c, tmp, ["nginx", "client-server", "p2p", "libtorrent"], [2], 2 << 20, 1 << 20,
              extra=["--netns", "--no-linkemu-ceiling", "--delay-ms", "1-2", "--loss-pct", "0.1",
                     "--shaper", "tbf"],
              link=link)
r = subprocess.run(["/usr/bin/python3", os.path.join(SRCDIR, "bench", "distribution"),
                    "--linkemu-check", "--no-linkemu-ceiling", "--shoal", SHOAL, "--out", tmp.sub("check")],
                   capture_output=True, text=True, timeout=120)
sys.stdout.write(r.stdout[-1500:])
c.equal(r.returncode, 0, "bench/linkemu: 40 ms round trip and 20 % loss as asked")
prefix = ((doc.get("raw", {}).get("config") or {}).get("net") or {}).get("names")
left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
c.check(prefix and prefix + "h" not in left, "the run's namespaces are gone", "(%s)" % prefix)
c.done()
