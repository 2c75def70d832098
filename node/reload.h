/* reload.h: the daemon's settings as start-up reads them, and SIGHUP's
 * reload of those that can change while it runs. */
#ifndef SHOAL_NODE_RELOAD_H
#define SHOAL_NODE_RELOAD_H

#include <stddef.h>

#include "node/settings.h"

struct node;

/* One command-line setting, kept from start-up so a reload re-applies it
 * over the file (flags win, as at start).  Both strings point into argv. */
struct node_flag {
	const char *key;
	const char *value;
};

/* The settings start-up derives: defaults, then DATA_DIR/shoal.conf, then
 * `flags`, with `data_dir` as the data dir.  Paths are left as written
 * (daemon.c resolves the download and web dirs when it applies them), so
 * two reads of the same file compare equal.  Returns 0, or a negative
 * errno with "path:line: message" (or the bad flag) in `err`; `out` is
 * then half-filled and must not be used. */
int node_settings_read(struct node_config *out, const char *data_dir,
		       const struct node_flag *flags, size_t n_flags, char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* SIGHUP, on the loop thread: read the settings again and apply each key
 * that differs from `loaded` (the settings as last read, updated here for
 * each key applied).  Keys compare against the last read and not the
 * running value, so a limit changed through the API survives a reload of
 * a file that did not touch it.  Live: log-level, log-format,
 * upload-limit, download-limit, encryption, tracker-timeout,
 * tracker-min-interval, download-dir.  Others that changed are named in
 * one warning and keep their running values until a restart (and warn
 * again on the next reload).  A file that does not parse changes nothing:
 * the error is logged with its path:line.  Tells the service manager
 * RELOADING=1 before and READY=1 after (node/notify.h). */
void node_reload(struct node *node, struct node_config *loaded, const struct node_flag *flags,
		 size_t n_flags);

/* Resolve cfg->download_dir through symlinks when it exists (a missing one
 * is resolved when a join creates it, node/api_swarms.c). */
void node_resolve_download_dir(struct node_config *cfg);

#endif
