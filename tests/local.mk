# tests/: integration tests that run real daemons on loopback (Python 3,
# standard library only, run by /usr/bin/python3).
TESTS += tests/integration/test_backbone.py tests/integration/test_share.py \
	tests/integration/test_transfer.py tests/interop/test_transfer_lt.py \
	tests/integration/test_corrupt_peer.py tests/integration/test_hostile_peer.py \
	tests/integration/test_api_guard.py tests/integration/test_distribution_smoke.py \
	tests/integration/test_crash_resume.py tests/integration/test_disk_full.py \
	tests/integration/test_liar_peer.py tests/integration/test_limits.py \
	tests/integration/test_limit_burst.py tests/integration/test_join_safety.py
EXTRA_DIST += tests/integration/shoal_harness.py
# The DHT in real daemons, and against libtorrent's DHT (node/dht_node.c).
TESTS += tests/integration/test_dht.py tests/interop/test_dht_libtorrent.py
