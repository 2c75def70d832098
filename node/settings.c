/* settings.c: parse daemon settings from shoal.conf and command-line flags. */
#include "config.h"

#include "node/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/util.h"

int config_defaults(struct node_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->peer_port = CONFIG_DEFAULT_PEER_PORT;
	cfg->api_port = CONFIG_DEFAULT_API_PORT;
	snprintf(cfg->api_bind, sizeof cfg->api_bind, "127.0.0.1");
	snprintf(cfg->bootstrap, sizeof cfg->bootstrap, "%s", CONFIG_DEFAULT_BOOTSTRAP);
	cfg->log_level = LOG_LVL_INFO;
	cfg->log_format = LOG_FMT_AUTO;
	cfg->encryption = ENCRYPTION_PREFER;
	cfg->tracker_timeout = CONFIG_DEFAULT_TRACKER_TIMEOUT;
	cfg->tracker_min_interval = CONFIG_DEFAULT_TRACKER_MIN_INTERVAL;
	cfg->crypto_threads = -1;
	const char *xdg = getenv("XDG_DOWNLOAD_DIR"), *home = getenv("HOME");
	if (xdg && xdg[0] == '/' && strlen(xdg) < sizeof cfg->download_dir)
		snprintf(cfg->download_dir, sizeof cfg->download_dir, "%s", xdg);
	else if (home && home[0] == '/' && strlen(home) + 10 < sizeof cfg->download_dir)
		snprintf(cfg->download_dir, sizeof cfg->download_dir, "%s/Downloads", home);
	return default_data_dir(cfg->data_dir, sizeof cfg->data_dir);
}

const char *config_encryption_name(enum encryption_policy p)
{
	switch (p) {
	case ENCRYPTION_REQUIRE:
		return "require";
	case ENCRYPTION_OFF:
		return "off";
	case ENCRYPTION_PREFER:
		break;
	}
	return "prefer";
}

const char *config_cipher_name(enum cipher_policy p)
{
	return p == CIPHER_XCHACHA ? "xchacha20poly1305" : "auto";
}

/* Every entry of a comma-separated HOST:PORT list must parse. */
static int check_bootstrap(const char *list)
{
	char item[300];
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n >= sizeof item)
			return -EINVAL;
		memcpy(item, p, n);
		item[n] = '\0';
		char host[256];
		uint16_t port;
		if (parse_hostport(item, host, sizeof host, &port))
			return -EINVAL;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int fail(char *err, size_t err_len, const char *key, const char *value, const char *expect)
{
	snprintf(err, err_len, "invalid %s '%s': expected %s", key, value, expect);
	return -EINVAL;
}

int config_set(struct node_config *cfg, const char *key, const char *value, char *err,
	       size_t err_len)
{
	if (strcmp(key, "data-dir") == 0) {
		if (!*value || strlen(value) >= sizeof cfg->data_dir)
			return fail(err, err_len, key, value, "a directory path");
		snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", value);
	} else if (strcmp(key, "download-dir") == 0) {
		/* Absolute: the daemon's working directory means nothing to users. */
		if (value[0] != '/' || strlen(value) >= sizeof cfg->download_dir)
			return fail(err, err_len, key, value, "an absolute directory path");
		snprintf(cfg->download_dir, sizeof cfg->download_dir, "%s", value);
	} else if (strcmp(key, "metrics-token-file") == 0) {
		if (!*value || strlen(value) >= sizeof cfg->metrics_token_file)
			return fail(err, err_len, key, value, "a file path");
		snprintf(cfg->metrics_token_file, sizeof cfg->metrics_token_file, "%s", value);
	} else if (strcmp(key, "web-dir") == 0) {
		if (!*value || strlen(value) >= sizeof cfg->web_dir)
			return fail(err, err_len, key, value, "a directory path");
		snprintf(cfg->web_dir, sizeof cfg->web_dir, "%s", value);
	} else if (strcmp(key, "port") == 0) {
		uint16_t port;
		if (parse_port(value, &port) || port == 0)
			return fail(err, err_len, key, value, "a port number 1-65535");
		cfg->peer_port = port;
	} else if (strcmp(key, "api-port") == 0) {
		if (parse_port(value, &cfg->api_port))
			return fail(err, err_len, key, value, "a port number 0-65535 (0 picks a free one)");
	} else if (strcmp(key, "api-bind") == 0) {
		struct sockaddr_storage ss;
		if (strlen(value) >= sizeof cfg->api_bind || addr_from_numeric(value, 0, &ss) == 0)
			return fail(err, err_len, key, value, "a numeric IPv4 or IPv6 address");
		snprintf(cfg->api_bind, sizeof cfg->api_bind, "%s", value);
	} else if (strcmp(key, "bootstrap") == 0) {
		if (strlen(value) >= sizeof cfg->bootstrap || check_bootstrap(value))
			return fail(err, err_len, key, value,
				    "HOST:PORT[,HOST:PORT...] (IPv6 as [ADDR]:PORT), or \"\" for none");
		snprintf(cfg->bootstrap, sizeof cfg->bootstrap, "%s", value);
	} else if (strcmp(key, "upload-limit") == 0) {
		if (parse_rate(value, &cfg->upload_limit))
			return fail(err, err_len, key, value, "bytes/s like 500K or 2M (0 = unlimited)");
	} else if (strcmp(key, "download-limit") == 0) {
		if (parse_rate(value, &cfg->download_limit))
			return fail(err, err_len, key, value, "bytes/s like 500K or 2M (0 = unlimited)");
	} else if (strcmp(key, "log-level") == 0) {
		if (log_parse_level(value, &cfg->log_level))
			return fail(err, err_len, key, value, "error, warn, info or debug");
	} else if (strcmp(key, "log-format") == 0) {
		if (log_parse_format(value, &cfg->log_format))
			return fail(err, err_len, key, value, "auto, text or journal");
	} else if (strcmp(key, "encryption") == 0) {
		if (strcmp(value, "prefer") == 0)
			cfg->encryption = ENCRYPTION_PREFER;
		else if (strcmp(value, "require") == 0)
			cfg->encryption = ENCRYPTION_REQUIRE;
		else if (strcmp(value, "off") == 0)
			cfg->encryption = ENCRYPTION_OFF;
		else
			return fail(err, err_len, key, value, "prefer, require or off");
	} else if (strcmp(key, "cipher") == 0) {
		if (strcmp(value, "auto") == 0)
			cfg->cipher = CIPHER_AUTO;
		else if (strcmp(value, "xchacha20poly1305") == 0 || strcmp(value, "xchacha") == 0)
			cfg->cipher = CIPHER_XCHACHA;
		else
			return fail(err, err_len, key, value, "auto or xchacha20poly1305 (xchacha)");
	} else if (strcmp(key, "no-upload") == 0 || strcmp(key, "no-dht") == 0 ||
		   strcmp(key, "no-lsd") == 0 || strcmp(key, "no-port-mapping") == 0) {
		bool *flag = key[3] == 'u'   ? &cfg->no_upload
			     : key[3] == 'd' ? &cfg->no_dht
			     : key[3] == 'l' ? &cfg->no_lsd
					     : &cfg->no_port_mapping;
		if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0)
			*flag = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcmp(value, "no") == 0)
			*flag = false;
		else
			return fail(err, err_len, key, value, "true or false");
	} else if (strcmp(key, "tracker-timeout") == 0 || strcmp(key, "tracker-min-interval") == 0) {
		/* Seconds.  The defaults suit the Internet; tests lower them. */
		bool is_timeout = key[8] == 't';
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(value, &end, 10);
		unsigned long hi = is_timeout ? 120 : 3600;
		if (!*value || *end || errno || v < 1 || v > hi || value[0] == '-')
			return fail(err, err_len, key, value,
				    is_timeout ? "seconds, 1-120 (default 15)" : "seconds, 1-3600 (default 30)");
		*(is_timeout ? &cfg->tracker_timeout : &cfg->tracker_min_interval) = (unsigned)v;
	} else if (strcmp(key, "crypto-threads") == 0) {
		char *end = NULL;
		errno = 0;
		long v = -1;
		if (strcmp(value, "auto") != 0) {
			v = strtol(value, &end, 10);
			if (!*value || *end || errno || v < 0 || v > CONFIG_MAX_CRYPTO_THREADS)
				return fail(err, err_len, key, value,
					    "auto, or 0-16 (0: seal and open on the event loop)");
		}
		cfg->crypto_threads = (int)v;
	} else {
		snprintf(err, err_len, "unknown setting '%s'", key);
		return -EINVAL;
	}
	return 0;
}

int config_crypto_threads(const struct node_config *cfg, long cpus)
{
	if (cfg->crypto_threads >= 0)
		return cfg->crypto_threads;
	/* Measured on 2 CPUs (bench/RESULTS.md, 2026-12-03): handing records
	 * to a thread cost more than it saved (434 vs 574 MB/s, 3.19 vs
	 * 2.83 CPU s/GB), because the thread competes with the loop and the
	 * disk workers for the same cores. So below 4 CPUs auto keeps sealing
	 * on the loop; from 4 it takes one thread per 4 CPUs (not yet
	 * measured there). */
	if (cpus < CONFIG_AUTO_CRYPTO_THREADS_MIN_CPUS)
		return 0;
	long n = cpus / CONFIG_AUTO_CRYPTO_THREADS_MIN_CPUS;
	return n > CONFIG_AUTO_CRYPTO_THREADS_MAX ? CONFIG_AUTO_CRYPTO_THREADS_MAX : (int)n;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int config_load_file(struct node_config *cfg, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		int e = errno;
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	char line[2048];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, err_len, "%s:%d: line too long", path, lineno);
			rc = -EINVAL;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, err_len, "%s:%d: expected 'key = value'", path, lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		size_t vlen = strlen(value);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value[vlen - 1] = '\0';
			value++;
		}
		if (strcmp(key, "data-dir") == 0) {
			snprintf(err, err_len, "%s:%d: data-dir cannot be set inside the data dir", path,
				 lineno);
			rc = -EINVAL;
			break;
		}
		char msg[512];
		if (config_set(cfg, key, value, msg, sizeof msg)) {
			snprintf(err, err_len, "%s:%d: %s", path, lineno, msg);
			rc = -EINVAL;
			break;
		}
	}
	fclose(f);
	return rc;
}
