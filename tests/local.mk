# tests/: integration tests that run real daemons on loopback (Python 3,
# standard library only, run by /usr/bin/python3).
TESTS += tests/integration/test_backbone.py tests/integration/test_share.py \
	tests/integration/test_transfer.py
EXTRA_DIST += tests/integration/shoal_harness.py
# The DHT in real daemons, and against libtorrent's DHT (node/dht_node.c).
TESTS += tests/integration/test_dht.py tests/interop/test_dht_libtorrent.py
