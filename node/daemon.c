/* daemon.c: `shoal daemon`: settings, data dir, lock, database, API, event loop. */
#include "config.h"

#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "node/api.h"
#include "node/dht_node.h"
#include "node/engine.h"
#include "node/lsd.h"
#include "node/notify.h"
#include "node/portmap.h"
#include "node/reload.h"
#include "node/store.h"
#include "node/swarm.h"
#include "node/swarms.h"
#include "node/trackers.h"
#include "node/workers.h"

void node_daemon_usage(FILE *out)
{
	fprintf(out,
		"Usage: shoal daemon [OPTIONS]\n"
		"\n"
		"Run a shoal node in the foreground until SIGINT or SIGTERM.  SIGHUP re-reads\n"
		"DIR/" CONFIG_FILE_NAME " (flags still win) and applies what can change while it\n"
		"runs (log-level, log-format, upload-limit, download-limit, encryption,\n"
		"tracker-timeout, tracker-min-interval, download-dir); other changes are\n"
		"named in a warning and wait for a restart.  Under a service manager it\n"
		"reports readiness on $NOTIFY_SOCKET (systemd Type=notify).\n"
		"\n"
		"Options:\n"
		"  --data-dir DIR        state directory (default $SHOAL_DATA_DIR, else\n"
		"                        $XDG_DATA_HOME/shoal, else ~/.local/share/shoal)\n"
		"  --download-dir DIR    where joins without --into download (created when\n"
		"                        needed; default $XDG_DOWNLOAD_DIR, else ~/Downloads)\n"
		"  --port PORT           peer TCP port; the DHT uses UDP on the same number\n"
		"                        (default %d)\n"
		"  --api-port PORT       HTTP control API port, 0 picks a free one (default %d)\n"
		"  --api-bind ADDR       address of the API (default 127.0.0.1; anything but\n"
		"                        loopback exposes the node, guarded only by the token)\n"
		"  --bootstrap LIST      DHT bootstrap nodes HOST:PORT[,HOST:PORT...]; \"\" for\n"
		"                        none (default: the public Mainline routers)\n"
		"  --upload-limit RATE   e.g. 500K, 2M; 0 = unlimited (default 0)\n"
		"  --download-limit RATE e.g. 500K, 2M; 0 = unlimited (default 0)\n"
		"  --encryption POLICY   prefer, require or off (default prefer)\n"
		"  --cipher NAME         record cipher between shoal nodes: auto (AES-256-GCM\n"
		"                        when both CPUs have AES-NI, else XChaCha20-Poly1305)\n"
		"                        or xchacha20poly1305 (alias xchacha) (default auto)\n"
		"  --crypto-threads N    threads that seal and open encrypted records beside\n"
		"                        the event loop: auto (one fewer than the CPUs, at\n"
		"                        most 4; none on one CPU) or 0-16 (default auto)\n"
		"  --no-upload           never upload (the client-server experiment's leechers)\n"
		"  --no-dht              no DHT: find peers only through trackers, peer exchange\n"
		"                        and --peer (the DHT is on by default)\n"
		"  --no-lsd              no local peer discovery (BEP 14 multicast on the LAN;\n"
		"                        on by default); --lsd turns it back on\n"
		"  --no-port-mapping     do not ask the router to forward the peer port (UPnP\n"
		"                        IGD, NAT-PMP; on by default); --port-mapping turns\n"
		"                        it back on\n"
		"  --tracker-timeout S   seconds before an HTTP tracker is given up, and the\n"
		"                        first UDP wait (doubling, 3 tries) (default %d)\n"
		"  --tracker-min-interval S  least seconds between two announces to a tracker,\n"
		"                        whatever it asks (default %d)\n"
		"  --web-dir DIR         the web dashboard's files (default: the source tree's\n"
		"                        web/ when run from the build tree, else\n"
		"                        " SHOAL_PKG_WEBDIR ")\n"
		"  --metrics-token-file FILE  a token (64 hex digits) good for GET /metrics\n"
		"                        and nothing else (default DIR/metrics.token when it\n"
		"                        exists; `shoal token --metrics` makes it)\n"
		"  --log-level LEVEL     error, warn, info or debug (default info)\n"
		"  --log-format FORMAT   auto, text or journal: journal starts each line with\n"
		"                        its syslog priority (<3> error ... <7> debug) and no\n"
		"                        time; auto picks it when stderr is the journal\n"
		"                        ($JOURNAL_STREAM) (default auto)\n"
		"  -h, --help            show this help\n"
		"\n"
		"Settings may also be written as 'key = value' lines in DIR/" CONFIG_FILE_NAME
		",\n"
		"using the option names without dashes (port = 6881); flags win.\n"
		"\n"
		"Exit status: 0 after a clean stop, 1 on a runtime error (another daemon\n"
		"holds the data dir, a port is taken, the database is refused), 2 on bad\n"
		"usage.\n",
		CONFIG_DEFAULT_PEER_PORT, CONFIG_DEFAULT_API_PORT, CONFIG_DEFAULT_TRACKER_TIMEOUT,
		CONFIG_DEFAULT_TRACKER_MIN_INTERVAL);
}

/* What a SIGHUP needs beside the node: the flags of the command line (a
 * reload applies them again over the file) and the settings as last read. */
struct daemon_reload {
	struct node *node;
	const struct node_flag *flags;
	size_t n_flags;
	struct node_config loaded;
	struct event *sig_hup;
};

/* libevent's own messages (evdns: "Nameserver ... has failed") go through
 * our log, so they carry a level (and the journal's <N> prefix) like every
 * other line instead of libevent's bare "[warn] ..." on stderr. */
static void on_libevent_log(int severity, const char *msg)
{
	enum log_level level = severity == EVENT_LOG_ERR    ? LOG_LVL_ERROR
			       : severity == EVENT_LOG_WARN ? LOG_LVL_WARN
			       : severity == EVENT_LOG_MSG  ? LOG_LVL_INFO
							    : LOG_LVL_DEBUG;
	log_msg(level, "libevent: %s", msg);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct node *node = arg;
	log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_send("STOPPING=1\nSTATUS=stopping: telling trackers, saving state");
	event_base_loopexit(node->base, NULL);
}

static void on_hup(evutil_socket_t sig, short events, void *arg)
{
	struct daemon_reload *dr = arg;
	if (!dr->node) { /* the trackers' last loop runs during shutdown */
		log_info("received SIGHUP while stopping: ignored");
		return;
	}
	log_info("received SIGHUP, reloading settings");
	node_reload(dr->node, &dr->loaded, dr->flags, dr->n_flags);
}

/* Take an exclusive lock on DIR/daemon.lock and write our pid into it.
 * Returns the descriptor or -1 with a message. */
static int take_lock(const char *data_dir, char *err, size_t err_len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", data_dir, NODE_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		if (n > 0)
			pid[strcspn(pid, "\n")] = '\0';
		else
			snprintf(pid, sizeof pid, "unknown");
		snprintf(err, err_len, "another shoal daemon (pid %s) is already running on %s", pid,
			 data_dir);
		close(fd);
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("%s: cannot record our pid: %s", path, strerror(errno));
	return fd;
}

/* Where the dashboard's files are when no web-dir is set: the source
 * tree's web/ when this program is the one in its build tree (so a
 * developer sees their edits without `make install`), else where `make
 * install` put them.  Both paths come from configure (node/local.mk). */
static void default_web_dir(char *out, size_t out_len)
{
	char self[PATH_MAX], build[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0 && realpath(SHOAL_ABS_BUILDDIR, build)) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash && slash != self) {
			*slash = '\0';
			if (strcmp(self, build) == 0) {
				snprintf(out, out_len, "%s", SHOAL_SRC_WEBDIR);
				return;
			}
		}
	}
	snprintf(out, out_len, "%s", SHOAL_PKG_WEBDIR);
}

/* Publish where the API listens, atomically, for the CLI. */
static int write_api_addr(const char *data_dir, const char *addr)
{
	char path[PATH_MAX], line[128];
	snprintf(path, sizeof path, "%s/%s", data_dir, NODE_API_ADDR_FILE);
	int n = snprintf(line, sizeof line, "%s\n", addr);
	return write_file_atomic(path, line, (size_t)n, 0600);
}

static int load_node_id(struct node *node)
{
	int n = store_setting_get(node->store, "node_id", node->node_id, NODE_ID_LEN);
	if (n == NODE_ID_LEN)
		return 0;
	randombytes_buf(node->node_id, NODE_ID_LEN);
	return store_setting_set(node->store, "node_id", node->node_id, NODE_ID_LEN);
}

/* Parse flags; returns 0, or 2 after printing usage or an error. */
static int parse_flags(struct node *node, int argc, char **argv, struct node_flag *flags,
		       size_t max_flags, size_t *n_flags, bool *help)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "download-dir", required_argument, NULL, 'o' },
		{ "port", required_argument, NULL, 'p' },
		{ "api-port", required_argument, NULL, 'a' },
		{ "api-bind", required_argument, NULL, 'b' },
		{ "bootstrap", required_argument, NULL, 'B' },
		{ "upload-limit", required_argument, NULL, 'u' },
		{ "download-limit", required_argument, NULL, 'D' },
		{ "encryption", required_argument, NULL, 'e' },
		{ "cipher", required_argument, NULL, 'C' },
		{ "crypto-threads", required_argument, NULL, 'X' },
		{ "no-upload", no_argument, NULL, 'N' },
		{ "no-dht", no_argument, NULL, 'H' },
		{ "no-lsd", no_argument, NULL, 'L' },
		{ "lsd", no_argument, NULL, 'l' + 256 },
		{ "no-port-mapping", no_argument, NULL, 'M' },
		{ "port-mapping", no_argument, NULL, 'M' + 256 },
		{ "tracker-timeout", required_argument, NULL, 'T' },
		{ "tracker-min-interval", required_argument, NULL, 'I' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "web-dir", required_argument, NULL, 'W' },
		{ "metrics-token-file", required_argument, NULL, 'm' + 256 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	optind = 1;
	int c, idx;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (c == 'h') {
			*help = true;
			return 0;
		}
		if (c == '?') {
			node_daemon_usage(stderr);
			return 2;
		}
		const char *key = opts[idx].name;
		const char *value = optarg ? optarg : "true";
		if (c == 'l' + 256 || c == 'M' + 256) { /* --lsd, --port-mapping: the no- key off */
			key = c == 'M' + 256 ? "no-port-mapping" : "no-lsd";
			value = "false";
		}
		if (*n_flags >= max_flags) {
			fprintf(stderr, "shoal daemon: too many options (at most %zu)\n", max_flags);
			return 2;
		}
		if (c == 'd') {
			char err[256];
			if (config_set(&node->cfg, key, value, err, sizeof err)) {
				fprintf(stderr, "shoal daemon: %s\n", err);
				return 2;
			}
			continue;
		}
		flags[(*n_flags)++] = (struct node_flag){ key, value };
	}
	if (optind < argc) {
		fprintf(stderr, "shoal daemon: unexpected argument '%s'\n", argv[optind]);
		node_daemon_usage(stderr);
		return 2;
	}
	return 0;
}

int node_daemon_main(int argc, char **argv)
{
	struct node node_storage, *node = &node_storage;
	memset(node, 0, sizeof *node);
	node->lock_fd = -1;
	node->next_swarm_id = 1;
	int exit_code = 1;
	char err[1024];
	struct node_flag flags[64];
	size_t n_flags = 0;
	struct daemon_reload reload = { .node = NULL };
	bool help = false;
	bool addr_written = false;
	char resolved_web[PATH_MAX];

	/* Lines logged before the settings are read follow the stream too. */
	log_set_format(LOG_FMT_AUTO);
	if (config_defaults(&node->cfg) != 0)
		node->cfg.data_dir[0] = '\0';
	int rc = parse_flags(node, argc, argv, flags, sizeof flags / sizeof flags[0], &n_flags, &help);
	if (rc)
		return rc;
	if (help) {
		node_daemon_usage(stdout);
		return 0;
	}
	if (!node->cfg.data_dir[0]) {
		fprintf(stderr, "shoal daemon: no data dir: set --data-dir, SHOAL_DATA_DIR or HOME\n");
		return 2;
	}
	/* Validate flags before touching the disk, so a typo changes nothing. */
	for (size_t i = 0; i < n_flags; i++) {
		struct node_config probe = node->cfg;
		if (config_set(&probe, flags[i].key, flags[i].value, err, sizeof err)) {
			fprintf(stderr, "shoal daemon: %s\n", err);
			return 2;
		}
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "shoal daemon: libsodium failed to initialise\n");
		return 1;
	}
	if ((rc = mkdir_p(node->cfg.data_dir, 0700)) != 0) {
		fprintf(stderr, "shoal daemon: cannot create %s: %s\n", node->cfg.data_dir,
			strerror(-rc));
		return 1;
	}
	struct stat st;
	if (stat(node->cfg.data_dir, &st) == 0 && (st.st_mode & 077)) {
		if (chmod(node->cfg.data_dir, 0700) == 0)
			log_warn("%s was accessible to other users; tightened it to 0700",
				 node->cfg.data_dir);
	}
	char path[PATH_MAX];
	reload = (struct daemon_reload){ .node = node, .flags = flags, .n_flags = n_flags };
	if (node_settings_read(&reload.loaded, node->cfg.data_dir, flags, n_flags, err,
			       sizeof err)) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		return 2;
	}
	node->cfg = reload.loaded;
	log_set_level(node->cfg.log_level);
	log_set_format(node->cfg.log_format);
	if (!node->cfg.web_dir[0])
		default_web_dir(node->cfg.web_dir, sizeof node->cfg.web_dir);
	else if (realpath(node->cfg.web_dir, resolved_web) &&
		 strlen(resolved_web) < sizeof node->cfg.web_dir)
		snprintf(node->cfg.web_dir, sizeof node->cfg.web_dir, "%s", resolved_web);
	/* The download directory is the user's own choice, and often a symlink
	 * (~/Downloads on another disk): resolve it once, so only what lies
	 * below it must be free of symlinks.  A missing one is resolved when a
	 * join creates it (node/api_swarms.c). */
	node_resolve_download_dir(&node->cfg);
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(on_libevent_log);

	node->lock_fd = take_lock(node->cfg.data_dir, err, sizeof err);
	if (node->lock_fd < 0) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		return 1;
	}
	snprintf(path, sizeof path, "%s/%s", node->cfg.data_dir, STORE_FILE_NAME);
	node->store = store_open(path, err, sizeof err);
	if (!node->store) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	node->store->commit_time = &node->metrics.sqlite_commit;
	if (load_node_id(node) != 0) {
		fprintf(stderr, "shoal daemon: cannot store the node id in %s\n", path);
		goto done;
	}
	uint8_t token[API_TOKEN_LEN];
	snprintf(path, sizeof path, "%s/%s", node->cfg.data_dir, NODE_TOKEN_FILE);
	if (api_token_load_or_create(path, token, err, sizeof err) != 0) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	node->base = event_base_new();
	if (!node->base) {
		fprintf(stderr, "shoal daemon: cannot create the event loop\n");
		goto done;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	node->workers = workers_new(node->base, cpus < 2 ? 2 : cpus > 8 ? 8 : (int)cpus);
	if (!node->workers) {
		fprintf(stderr, "shoal daemon: cannot start worker threads\n");
		goto done;
	}
	swarms_init(node);
	if (swarms_load(node) != 0) {
		fprintf(stderr, "shoal daemon: cannot load swarms from the database\n");
		goto done;
	}
	/* Shared files may have changed while we were away: re-check those
	 * whose size or mtime moved, so we never offer pieces that no longer
	 * match. */
	node->engine = engine_new(node, err, sizeof err);
	if (!node->engine) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	if (node->cfg.no_dht) {
		log_info("DHT off (--no-dht): peers come from trackers, peer exchange and --peer");
	} else if (!(node->dht = dht_node_new(node, err, sizeof err))) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	if (node->cfg.no_lsd) {
		log_info("local peer discovery off (--no-lsd)");
	} else if (!(node->lsd = node_lsd_new(node, err, sizeof err))) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	node->trackers = trackers_new(node, err, sizeof err);
	if (!node->trackers) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	if (node->cfg.no_port_mapping) {
		log_info("port mapping off (--no-port-mapping): peers behind other NATs reach us only if "
			 "the peer port is forwarded by hand");
	} else if (!(node->portmap = portmap_new(node, err, sizeof err))) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	swarms_start_all(node);
	node->started_ms = now_ms();
	node->started_at = time(NULL);
	node->api = api_new(node, node->cfg.api_bind, node->cfg.api_port, token, err, sizeof err);
	sodium_memzero(token, sizeof token);
	if (!node->api || api_metrics_token_setup(node->api, &node->cfg, NULL, err, sizeof err) != 0) {
		fprintf(stderr, "shoal daemon: %s\n", err);
		goto done;
	}
	if (strcmp(node->cfg.api_bind, "127.0.0.1") != 0 && strcmp(node->cfg.api_bind, "::1") != 0)
		log_warn("WARNING: the control API listens on %s, not loopback: anyone who can reach "
			 "it and learns the token controls this node",
			 node->cfg.api_bind);
	if ((rc = write_api_addr(node->cfg.data_dir, api_address(node->api))) != 0) {
		fprintf(stderr, "shoal daemon: cannot write %s/%s: %s\n", node->cfg.data_dir,
			NODE_API_ADDR_FILE, strerror(-rc));
		goto done;
	}
	addr_written = true;
	node->sig_int = evsignal_new(node->base, SIGINT, on_signal, node);
	node->sig_term = evsignal_new(node->base, SIGTERM, on_signal, node);
	reload.sig_hup = evsignal_new(node->base, SIGHUP, on_hup, &reload);
	if (!node->sig_int || !node->sig_term || !reload.sig_hup ||
	    evsignal_add(node->sig_int, NULL) || evsignal_add(node->sig_term, NULL) ||
	    evsignal_add(reload.sig_hup, NULL)) {
		fprintf(stderr, "shoal daemon: cannot install signal handlers\n");
		goto done;
	}
	log_info("shoal %s running: data dir %s, API http://%s/api/v1/, peer port %u",
		 NODE_VERSION_STRING, node->cfg.data_dir, api_address(node->api),
		 (unsigned)node->cfg.peer_port);
	log_info("web dashboard: run `shoal web` to log in (pages from %s)", node->cfg.web_dir);
	/* Ready: the API answers and api.addr names it, so a unit ordered
	 * after this one (or `systemctl start`'s caller) can use the CLI. */
	notify_sendf("READY=1\nSTATUS=running: API http://%s/api/v1/, peer port %u, %u swarms",
		     api_address(node->api), (unsigned)node->cfg.peer_port,
		     (unsigned)node->swarm_ix.count);
	if (event_base_dispatch(node->base) < 0) {
		log_error("event loop failed");
		goto done;
	}
	exit_code = 0;
done:
	reload.node = NULL; /* a SIGHUP from now on changes nothing */
	/* Stop accepting first, then release state in reverse order. */
	if (addr_written) {
		snprintf(path, sizeof path, "%s/%s", node->cfg.data_dir, NODE_API_ADDR_FILE);
		unlink(path);
	}
	api_free(node->api);
	node->api = NULL;
	/* The router's mappings go on the port-mapping thread while the
	 * trackers hear "stopped", the loop running at most 2 s more. */
	portmap_stop(node->portmap);
	trackers_shutdown(node->trackers);
	trackers_free(node->trackers);
	node->trackers = NULL;
	/* The router's mappings go, waiting at most ~2 s for a router that does not answer. */
	portmap_free(node->portmap);
	node->portmap = NULL;
	node->stopping = true; /* join checks still on the workers create nothing */
	node_lsd_free(node->lsd); /* leaves the groups; before the engine it feeds */
	node->lsd = NULL;
	dht_node_free(node->dht); /* saves the routing table; before the engine it feeds */
	node->dht = NULL;
	engine_free(node->engine); /* closes peers; transfers stop */
	node->engine = NULL;
	swarms_cancel_jobs(node);
	workers_free(node->workers); /* joins the threads before their jobs are freed */
	node->workers = NULL;
	swarms_free_all(node);
	reach_free(node);
	/* The database closes while the signal events still hold SIGINT,
	 * SIGTERM and SIGHUP: freeing them restores the default action, and
	 * a signal landing then would kill the process before SQLite closed. */
	store_close(node->store);
	if (node->sig_int)
		event_free(node->sig_int);
	if (node->sig_term)
		event_free(node->sig_term);
	if (reload.sig_hup)
		event_free(reload.sig_hup);
	if (node->base)
		event_base_free(node->base);
	if (node->lock_fd >= 0)
		close(node->lock_fd);
	if (exit_code == 0)
		log_info("stopped cleanly");
	return exit_code;
}
