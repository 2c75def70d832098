/* reload.c: re-read shoal.conf and the flags on SIGHUP and apply what may
 * change while the daemon runs; say which changes wait for a restart. */
#include "config.h"

#include "node/reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/api.h"
#include "node/engine.h"
#include "node/node.h"
#include "node/notify.h"
#include "node/swarms.h"

int node_settings_read(struct node_config *out, const char *data_dir,
		       const struct node_flag *flags, size_t n_flags, char *err, size_t err_len)
{
	/* Only the data dir can fail to derive, and it comes from the caller. */
	if (config_defaults(out) != 0)
		out->data_dir[0] = '\0';
	if (strlen(data_dir) >= sizeof out->data_dir) {
		snprintf(err, err_len, "data dir too long");
		return -ENAMETOOLONG;
	}
	snprintf(out->data_dir, sizeof out->data_dir, "%s", data_dir);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/%s", data_dir, CONFIG_FILE_NAME);
	int rc = config_load_file(out, path, err, err_len);
	if (rc)
		return rc;
	for (size_t i = 0; i < n_flags; i++) {
		char msg[512];
		if (config_set(out, flags[i].key, flags[i].value, msg, sizeof msg)) {
			snprintf(err, err_len, "--%s: %s", flags[i].key, msg);
			return -EINVAL;
		}
	}
	return 0;
}

void node_resolve_download_dir(struct node_config *cfg)
{
	char resolved[PATH_MAX];
	if (cfg->download_dir[0] && realpath(cfg->download_dir, resolved) &&
	    strlen(resolved) < sizeof cfg->download_dir)
		snprintf(cfg->download_dir, sizeof cfg->download_dir, "%s", resolved);
}

/* ------------------------------------------------------------ the keys */

/* One setting: whether it differs between two reads, and how to apply it
 * to the running node (NULL: only at start-up).  apply returns 0 once the
 * node runs with want's value; it then copies the value into `loaded`. */
struct reload_key {
	const char *name;
	bool (*differs)(const struct node_config *a, const struct node_config *b);
	int (*apply)(struct node *node, struct node_config *loaded, const struct node_config *want);
};

#define DIFFERS_NUM(field)                                                                   \
	static bool differs_##field(const struct node_config *a, const struct node_config *b) \
	{                                                                                    \
		return a->field != b->field;                                                 \
	}
#define DIFFERS_STR(field)                                                                   \
	static bool differs_##field(const struct node_config *a, const struct node_config *b) \
	{                                                                                    \
		return strcmp(a->field, b->field) != 0;                                      \
	}
DIFFERS_STR(download_dir)
DIFFERS_STR(web_dir)
DIFFERS_NUM(peer_port)
DIFFERS_NUM(api_port)
DIFFERS_STR(api_bind)
DIFFERS_STR(bootstrap)
DIFFERS_NUM(upload_limit)
DIFFERS_NUM(download_limit)
DIFFERS_NUM(log_level)
DIFFERS_NUM(log_format)
DIFFERS_NUM(encryption)
DIFFERS_NUM(cipher)
DIFFERS_NUM(no_upload)
DIFFERS_NUM(no_dht)
DIFFERS_NUM(no_lsd)
DIFFERS_NUM(no_port_mapping)
DIFFERS_NUM(tracker_timeout)
DIFFERS_NUM(tracker_min_interval)
DIFFERS_NUM(crypto_threads)

static int apply_log_level(struct node *node, struct node_config *loaded,
			   const struct node_config *want)
{
	log_set_level(want->log_level);
	node->cfg.log_level = loaded->log_level = want->log_level;
	return 0;
}

static int apply_log_format(struct node *node, struct node_config *loaded,
			    const struct node_config *want)
{
	log_set_format(want->log_format);
	node->cfg.log_format = loaded->log_format = want->log_format;
	return 0;
}

/* The same path as POST /api/v1/limits: the mediator, then the engine's
 * rate-limit group, which takes effect within a second. */
static int apply_upload_limit(struct node *node, struct node_config *loaded,
			      const struct node_config *want)
{
	if (swarms_set_global_limits(node, want->upload_limit, node->cfg.download_limit) != 0)
		return -EINVAL;
	loaded->upload_limit = want->upload_limit;
	return 0;
}

static int apply_download_limit(struct node *node, struct node_config *loaded,
				const struct node_config *want)
{
	if (swarms_set_global_limits(node, node->cfg.upload_limit, want->download_limit) != 0)
		return -EINVAL;
	loaded->download_limit = want->download_limit;
	return 0;
}

static int apply_encryption(struct node *node, struct node_config *loaded,
			    const struct node_config *want)
{
	engine_set_encryption(node->engine, want->encryption);
	loaded->encryption = want->encryption;
	return 0;
}

/* The trackers read these from node->cfg at each request. */
static int apply_tracker_timeout(struct node *node, struct node_config *loaded,
				 const struct node_config *want)
{
	node->cfg.tracker_timeout = loaded->tracker_timeout = want->tracker_timeout;
	return 0;
}

static int apply_tracker_min_interval(struct node *node, struct node_config *loaded,
				      const struct node_config *want)
{
	node->cfg.tracker_min_interval = loaded->tracker_min_interval = want->tracker_min_interval;
	return 0;
}

/* Read by each join that names no directory; swarms already joined keep
 * theirs. */
static int apply_download_dir(struct node *node, struct node_config *loaded,
			      const struct node_config *want)
{
	memcpy(loaded->download_dir, want->download_dir, sizeof loaded->download_dir);
	memcpy(node->cfg.download_dir, want->download_dir, sizeof node->cfg.download_dir);
	node_resolve_download_dir(&node->cfg);
	return 0;
}

/* Every key config_set knows but data-dir (which neither the file nor a
 * reload can change).  A new key goes here: with an apply function when
 * the running node can take a new value, else NULL (then a change is only
 * warned about).  A key missing here is silently ignored by a reload.
 *
 * metrics-token-file is not in this table: its file is re-read on every
 * reload (node_reload below), so a token rewritten in place takes effect
 * as a changed path does. */
static const struct reload_key reload_keys[] = {
	{ "log-level", differs_log_level, apply_log_level },
	{ "log-format", differs_log_format, apply_log_format },
	{ "upload-limit", differs_upload_limit, apply_upload_limit },
	{ "download-limit", differs_download_limit, apply_download_limit },
	{ "encryption", differs_encryption, apply_encryption },
	{ "tracker-timeout", differs_tracker_timeout, apply_tracker_timeout },
	{ "tracker-min-interval", differs_tracker_min_interval, apply_tracker_min_interval },
	{ "download-dir", differs_download_dir, apply_download_dir },
	/* Sockets, threads and subsystems made at start-up. */
	{ "port", differs_peer_port, NULL },
	{ "api-port", differs_api_port, NULL },
	{ "api-bind", differs_api_bind, NULL },
	{ "bootstrap", differs_bootstrap, NULL },
	{ "cipher", differs_cipher, NULL },
	{ "crypto-threads", differs_crypto_threads, NULL },
	{ "no-upload", differs_no_upload, NULL },
	{ "no-dht", differs_no_dht, NULL },
	{ "no-lsd", differs_no_lsd, NULL },
	{ "no-port-mapping", differs_no_port_mapping, NULL },
	{ "web-dir", differs_web_dir, NULL },
};

/* Append ", name" (or "name" first) to a bounded list. */
static void list_add(char *list, size_t cap, const char *name)
{
	size_t n = strlen(list);
	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

static void notify_running(struct node *node)
{
	notify_sendf("READY=1\nSTATUS=running: %u swarms, log level %s",
		     (unsigned)node->swarm_ix.count, log_level_name(log_get_level()));
}

void node_reload(struct node *node, struct node_config *loaded, const struct node_flag *flags,
		 size_t n_flags)
{
	/* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match this
	 * reload to the signal it sent; older managers ignore it. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_sendf("RELOADING=1\nSTATUS=reloading settings\nMONOTONIC_USEC=%llu",
		     (unsigned long long)ts.tv_sec * 1000000ULL +
			     (unsigned long long)(ts.tv_nsec / 1000));

	/* ~13 KiB: on the heap, the loop's stack is not ours to spend. */
	struct node_config *want = malloc(sizeof *want);
	char err[1024];
	if (!want) {
		log_error("reload: out of memory; keeping the running settings");
		goto done;
	}
	if (node_settings_read(want, node->cfg.data_dir, flags, n_flags, err, sizeof err) != 0) {
		log_error("reload: %s; keeping the running settings", err);
		goto done;
	}
	char changed[512] = "", later[512] = "", failed[256] = "";
	for (size_t i = 0; i < sizeof reload_keys / sizeof reload_keys[0]; i++) {
		const struct reload_key *k = &reload_keys[i];
		if (!k->differs(loaded, want))
			continue;
		if (!k->apply)
			list_add(later, sizeof later, k->name);
		else if (k->apply(node, loaded, want) == 0)
			list_add(changed, sizeof changed, k->name);
		else
			list_add(failed, sizeof failed, k->name);
	}
	/* The metrics token: re-read whether or not its path changed. */
	bool token_changed = false;
	if (api_metrics_token_setup(node->api, want, &token_changed, err, sizeof err) != 0) {
		list_add(failed, sizeof failed, "metrics-token-file");
		log_error("reload: %s", err);
	} else {
		memcpy(loaded->metrics_token_file, want->metrics_token_file,
		       sizeof loaded->metrics_token_file);
		memcpy(node->cfg.metrics_token_file, want->metrics_token_file,
		       sizeof node->cfg.metrics_token_file);
		if (token_changed)
			list_add(changed, sizeof changed, "metrics token");
	}
	if (later[0])
		log_warn("reload: %s changed but take%s effect only after a restart; running "
			 "with the old value%s",
			 later, strchr(later, ',') ? "" : "s", strchr(later, ',') ? "s" : "");
	if (failed[0])
		log_error("reload: could not apply %s; keeping the old value", failed);
	log_info("reloaded settings from %s/%s and the command line: %s%s", node->cfg.data_dir,
		 CONFIG_FILE_NAME, changed[0] ? "changed " : "nothing changed", changed);
done:
	free(want);
	notify_running(node);
}
