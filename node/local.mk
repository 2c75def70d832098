# node/: the daemon (config, SQLite store, HTTP API, glue).
noinst_LIBRARIES += node/libnode.a
node_libnode_a_CPPFLAGS = $(AM_CPPFLAGS) $(SODIUM_CFLAGS) $(EVENT_CFLAGS) $(SQLITE_CFLAGS) \
	$(JANSSON_CFLAGS) $(EVSSL_CFLAGS) $(MINIUPNPC_CFLAGS) \
	-DSHOAL_ABS_BUILDDIR='"$(abs_top_builddir)"' -DSHOAL_SRC_WEBDIR='"$(abs_top_srcdir)/web"' \
	-DSHOAL_PKG_WEBDIR='"$(pkgdatadir)/web"'
node_libnode_a_SOURCES = \
	node/api.c node/api_reply.c node/api.h node/api_server.h node/api_auth.c node/api_routes.c \
	node/api_web.c node/web_auth.c node/web_auth.h node/api_metrics.c node/metrics.c node/metrics.h \
	node/api_swarms.c node/api_json.c node/api_trackers.c node/api_events.c node/api_stream.c \
	node/dht_node.c node/dht_node.h node/dht_tracks.c node/dht_tracks.h \
	node/lsd.c node/lsd.h \
	node/trackers.c node/trackers_db.c node/trackers.h \
	node/portmap.c node/portmap.h \
	node/engine.c node/engine.h node/engine_state.h node/engine-parts.h \
	node/engine_base.c node/engine_select.c node/engine_durable.c node/engine_io.c node/engine_meta.c \
	node/engine_peers.c node/engine_send.c node/engine_wire.c node/peer.c node/peer_conn.c \
	node/conn.c node/conn.h \
	node/ratelimit.c node/ratelimit.h \
	node/joincheck.c node/joincheck.h \
	node/share.c node/share.h \
	node/swarm.c node/swarm.h \
	node/swarms.c node/swarms.h node/swarms_stream.c \
	node/workers.c node/workers.h \
	node/diskio.c node/diskio.h \
	node/settings.c node/settings.h \
	node/daemon.c node/node.h \
	node/notify.c node/notify.h node/reload.c node/reload.h \
	node/store.c node/store.h
# The daemon is its own program; `shoal daemon` execs it.
bin_PROGRAMS += shoal-daemon
shoal_daemon_SOURCES = node/main.c
shoal_daemon_LDADD = $(NODE_LIBS)
NODE_LIBS = node/libnode.a $(DHT_LIBS) $(TRANSFER_LIBS) $(EVSSL_LIBS) $(EVENT_LIBS) $(SQLITE_LIBS) $(JANSSON_LIBS) \
	$(SODIUM_LIBS) $(MINIUPNPC_LIBS) $(NATPMP_LIBS) -lpthread

check_PROGRAMS += tests/unit/test_config tests/unit/test_store tests/unit/test_api_auth
TESTS += tests/unit/test_config tests/unit/test_store tests/unit/test_api_auth
check_PROGRAMS += tests/unit/test_reach
# The Prometheus text format writer and the histograms (node/metrics.c).
check_PROGRAMS += tests/unit/test_metrics
TESTS += tests/unit/test_metrics
tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_metrics_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
TESTS += tests/unit/test_reach
tests_unit_test_reach_SOURCES = tests/unit/test_reach.c
tests_unit_test_reach_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_reach_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
tests_unit_test_api_auth_SOURCES = tests/unit/test_api_auth.c
tests_unit_test_api_auth_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_api_auth_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
# The DHT's per-swarm schedule, and the swarm indexes it follows.
check_PROGRAMS += tests/unit/test_dht_tracks
TESTS += tests/unit/test_dht_tracks
tests_unit_test_dht_tracks_SOURCES = tests/unit/test_dht_tracks.c
tests_unit_test_dht_tracks_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_dht_tracks_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
# Seeking to a swarm id, and the query of GET /api/v1/swarms.
check_PROGRAMS += tests/unit/test_swarm_pages
TESTS += tests/unit/test_swarm_pages
tests_unit_test_swarm_pages_SOURCES = tests/unit/test_swarm_pages.c
tests_unit_test_swarm_pages_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS) $(EVENT_CFLAGS)
tests_unit_test_swarm_pages_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
# The disk layer alone, on a real worker pool and event loop.
check_PROGRAMS += tests/unit/test_diskio
TESTS += tests/unit/test_diskio
tests_unit_test_diskio_SOURCES = tests/unit/test_diskio.c
tests_unit_test_diskio_CFLAGS = $(UNIT_CFLAGS) $(EVENT_CFLAGS)
tests_unit_test_diskio_LDADD = $(NODE_LIBS) $(UNIT_LIBS)

# Fuzz harness of the API's input checks, replayed over its corpus.
check_PROGRAMS += tests/fuzz/replay_api_json
TESTS += tests/fuzz/replay_api_json
tests_fuzz_replay_api_json_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_api_json.c
tests_fuzz_replay_api_json_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS) -DFUZZ_SURFACE=\"api_json\"
tests_fuzz_replay_api_json_LDADD = $(NODE_LIBS)

# A whole peer connection of a real engine (transport, wire, engine), fuzzed.
check_PROGRAMS += tests/fuzz/replay_peer
TESTS += tests/fuzz/replay_peer
tests_fuzz_replay_peer_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_peer.c
tests_fuzz_replay_peer_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS) $(EVENT_CFLAGS) \
	$(SQLITE_CFLAGS) $(SODIUM_CFLAGS) -DFUZZ_SURFACE=\"peer\"
tests_fuzz_replay_peer_LDADD = $(NODE_LIBS)
# The dashboard's login codes, sessions, cookie parsing and request checks.
check_PROGRAMS += tests/unit/test_web_auth
TESTS += tests/unit/test_web_auth
tests_unit_test_web_auth_SOURCES = tests/unit/test_web_auth.c
tests_unit_test_web_auth_CFLAGS = $(UNIT_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_web_auth_LDADD = $(NODE_LIBS) $(UNIT_LIBS)

# The service manager's side: sd_notify addresses and messages, journald's
# log line format (node/notify.c, common/log.c; docs/service.md).
check_PROGRAMS += tests/unit/test_service
TESTS += tests/unit/test_service
tests_unit_test_service_SOURCES = tests/unit/test_service.c
tests_unit_test_service_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_service_LDADD = $(NODE_LIBS) $(UNIT_LIBS)
