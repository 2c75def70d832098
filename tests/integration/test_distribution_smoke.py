"""bench/distribution, tiny: N = 1, 2 on a 2 MiB file over loopback (the
checks are in distribution_checks.py, shared with the --netns test)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, TestDir  # noqa: E402
from distribution_checks import run_and_check  # noqa: E402

c = Checks("distribution_smoke")
tmp = TestDir(prefix="shoal-dist-smoke-")
try:
    import libtorrent  # noqa: F401
    modes = ["p2p", "client-server", "libtorrent"]
except ImportError:
    modes = ["p2p", "client-server"]
run_and_check(c, tmp, modes, [1, 2], 2 << 20, 1 << 20)
c.done()
