# tests/: integration tests that run real daemons on loopback (Python 3,
# standard library only, run by /usr/bin/python3).
TESTS += tests/integration/test_backbone.py tests/integration/test_share.py \
	tests/integration/test_transfer.py tests/interop/test_transfer_lt.py \
	tests/integration/test_corrupt_peer.py tests/integration/test_hostile_peer.py \
	tests/integration/test_api_guard.py tests/integration/test_distribution_smoke.py \
	tests/integration/test_crash_resume.py tests/integration/test_disk_full.py \
	tests/integration/test_liar_peer.py tests/integration/test_limits.py \
	tests/integration/test_limit_burst.py tests/integration/test_peer_list.py \
	tests/integration/test_metadata_size.py tests/integration/test_unsolicited_hashes.py \
	tests/integration/test_join_safety.py tests/integration/test_ban_return.py \
	tests/integration/test_serve_budget.py tests/integration/test_hash_proofs.py \
	tests/integration/test_pad_blocks.py tests/integration/test_v1.py \
	tests/integration/test_have_redundant.py \
	tests/interop/test_hybrid_lt.py tests/interop/test_v1_lt.py \
	tests/integration/test_many_swarms.py tests/integration/test_join_bulk.py \
	tests/integration/test_events.py tests/integration/test_distribution_netns.py
EXTRA_DIST += tests/integration/shoal_harness.py tests/integration/rawpeer.py \
	tests/integration/distribution_checks.py tests/integration/netns.py
# The layering of docs/architecture.md, on every #include and on the CLI's link.
TESTS += tests/check_layers.py
EXTRA_DIST += tests/check_layers.py
# The DHT in real daemons, and against libtorrent's DHT (node/dht_node.c).
TESTS += tests/integration/test_dht.py tests/interop/test_dht_libtorrent.py
TESTS += tests/integration/test_portmap.py
# Durability under a failing or slow disk: tests/fault/faultfs.so is an
# LD_PRELOAD shim (test code, never linked into shoal) that the test loads
# into its daemons.  Built without the sanitizers: it only forwards calls.
TESTS += tests/integration/test_durability.py tests/integration/test_peer_batch.py
check_DATA = tests/fault/faultfs.so
CLEANFILES += tests/fault/faultfs.so
tests/fault/faultfs.so: $(top_srcdir)/tests/fault/faultfs.c
	@mkdir -p tests/fault
	$(AM_V_CC)$(CC) -shared -fPIC -O2 $(WARN_CFLAGS) -o $@ $(top_srcdir)/tests/fault/faultfs.c -ldl -lpthread
# Real v1 clients from Debian packages (Transmission, aria2) as test peers,
# each in a network namespace of its own (tests/interop/realpeers.py); the
# self-test needs root and skips (77) without them.
TESTS += tests/interop/test_realpeers.py tests/interop/test_v1_clients.py
EXTRA_DIST += tests/interop/realpeers.py
# Trackers: a fake HTTP and UDP tracker written in the test (node/trackers.c),
# and Debian's opentracker with shoal and libtorrent peers.
TESTS += tests/integration/test_trackers.py tests/interop/test_opentracker.py
EXTRA_DIST += tests/integration/fake_tracker.py tests/interop/opentracker.py
# Many swarms in one daemon: the tracker request cap, counts, idle seeds
# that wake for a peer, restart without re-hashing (node/swarm.c indexes,
# node/engine_base.c awake list, node/dht_tracks.c).
TESTS += tests/integration/test_swarm_scale.py
# Local peer discovery (node/lsd.c, BEP 14) between daemons in network
# namespaces the test makes (skips, 77, without root); hostile LAN packets.
TESTS += tests/integration/test_lsd.py
# The web dashboard's pages, login codes, sessions and request checks
# (node/api_web.c, node/web_auth.c, cli/cmd_web.c; docs/web.md).
TESTS += tests/integration/test_web_auth.py
# Choosing files: skipped files never created, v1 pieces that straddle a
# skipped file (node/ and transfer/storage.c part files), priorities and
# sequential mode across restarts, the join's only/skip rules, shoal files.
TESTS += tests/integration/test_selection.py
TESTS += tests/integration/test_unskip_midpiece.py
# A file read over HTTP while it downloads, and its stream addresses
# (node/api_stream.c, cli/cmd_stream.c; docs/streaming.md).
TESTS += tests/integration/test_stream.py
TESTS += tests/integration/test_stream_blocks.py
# GET /metrics (node/api_metrics.c, docs/metrics.md): promtool's lint,
# names and bounded labels, counters across a download, the metrics token.
TESTS += tests/integration/test_metrics.py
# The web dashboard (web/) in headless Chromium driven by selenium, against
# real daemons on loopback; skips (77) without chromium / python3-selenium.
TESTS += tests/web/test_ui.py
# The daemon as a systemd service: sd_notify readiness, journald's line
# format, SIGHUP's reload, a bounded SIGTERM, and the units of dist/
# checked by systemd-analyze (docs/service.md).
TESTS += tests/integration/test_service.py
# The man pages against `shoal help` and config_set, rendered by groff and
# man; bash completion driven in bash against a daemon (man/, completion/).
TESTS += tests/integration/test_manpages.py tests/integration/test_completion.py
