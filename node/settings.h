/* settings.h: the daemon's settings, from defaults, shoal.conf and flags. */
#ifndef SHOAL_NODE_SETTINGS_H
#define SHOAL_NODE_SETTINGS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define CONFIG_FILE_NAME "shoal.conf"
#define CONFIG_DEFAULT_PEER_PORT 6881
#define CONFIG_DEFAULT_API_PORT 7881
#define CONFIG_DEFAULT_TRACKER_TIMEOUT 15
#define CONFIG_DEFAULT_TRACKER_MIN_INTERVAL 30
/* The public Mainline routers; every test overrides them with --bootstrap. */
#define CONFIG_DEFAULT_BOOTSTRAP \
	"router.bittorrent.com:6881,dht.transmissionbt.com:6881,router.utorrent.com:6881"

enum encryption_policy { ENCRYPTION_PREFER = 0, ENCRYPTION_REQUIRE, ENCRYPTION_OFF };
/* The encrypted transport's record cipher: AES-256-GCM when both ends have
 * it (auto), or XChaCha20-Poly1305 always (docs/protocol.md 2.14). */
enum cipher_policy { CIPHER_AUTO = 0, CIPHER_XCHACHA };

struct node_config {
	char data_dir[PATH_MAX];
	char download_dir[PATH_MAX]; /* joins without "into" go here; "" = none known */
	uint16_t peer_port;      /* TCP for peers, UDP for the DHT */
	uint16_t api_port;       /* 0 = let the kernel pick */
	char api_bind[64];       /* numeric address the API listens on */
	char bootstrap[1024];    /* comma-separated HOST:PORT list, "" = none */
	uint64_t upload_limit;   /* bytes/s, 0 = unlimited */
	uint64_t download_limit; /* bytes/s, 0 = unlimited */
	enum log_level log_level;
	enum log_format log_format; /* auto: journal when stderr is journald's */
	enum encryption_policy encryption;
	enum cipher_policy cipher;
	bool no_upload;          /* client-server experiment: never upload (leechers) */
	bool no_dht;             /* no DHT: peers only from trackers, PEX and --peer */
	bool no_lsd;             /* no BEP 14 local peer discovery (node/lsd.c) */
	bool no_port_mapping;    /* no UPnP IGD / NAT-PMP port mapping (node/portmap.c) */
	unsigned tracker_timeout;      /* s: an HTTP request, the first UDP wait (15) */
	unsigned tracker_min_interval; /* s: the least time between announces (30) */
	int crypto_threads;      /* threads sealing and opening records; -1 = auto */
	char web_dir[PATH_MAX];  /* the dashboard's files; "" = the default
				  * (node/daemon.c: the source tree's web/ from
				  * the build tree, else $(pkgdatadir)/web) */
	char metrics_token_file[PATH_MAX]; /* a token accepted for GET /metrics only;
					    * "" = DATA_DIR/metrics.token if it exists */
};

/* "crypto-threads = auto": one fewer than the CPUs, at most this many; none
 * on one CPU, where a thread could only take turns with the loop. */
#define CONFIG_MAX_CRYPTO_THREADS 16
#define CONFIG_AUTO_CRYPTO_THREADS_MAX 4
#define CONFIG_AUTO_CRYPTO_THREADS_MIN_CPUS 4
/* The number "auto" (or an explicit count) comes to on `cpus` CPUs. */
int config_crypto_threads(const struct node_config *cfg, long cpus);

/* Fill `cfg` with the defaults (data dir from default_data_dir(); download
 * dir $XDG_DOWNLOAD_DIR when set and absolute, else $HOME/Downloads, else
 * none).
 * Returns 0 or a negative errno when no data dir can be derived. */
int config_defaults(struct node_config *cfg) __attribute__((warn_unused_result));

/* Set one key ("port", "api-port", "api-bind", "bootstrap", "upload-limit",
 * "download-limit", "log-level", "log-format", "encryption", "cipher", "no-upload", "no-dht", "no-lsd", "no-port-mapping", "tracker-timeout",
 * "tracker-min-interval", "crypto-threads", "data-dir", "download-dir", "web-dir") from
 * its text form, or "metrics-token-file" (a path).  On error returns -EINVAL and writes a message naming the
 * key and the accepted forms into `err`. */
int config_set(struct node_config *cfg, const char *key, const char *value, char *err,
	       size_t err_len) __attribute__((warn_unused_result));

/* Apply "key = value" lines from the file at `path` ('#' starts a comment,
 * blank lines ignored).  A missing file is not an error.  Returns 0, or a
 * negative errno with "path:line: message" in `err`. */
int config_load_file(struct node_config *cfg, const char *path, char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* Names for the enum values, as accepted by config_set. */
const char *config_encryption_name(enum encryption_policy p);
const char *config_cipher_name(enum cipher_policy p);

#endif
