/* browser.h: opening an address of the daemon in the user's browser
 * without putting it on a command line (`shoal web --open`, `shoal stream
 * --open`). */
#ifndef SHOAL_CLI_BROWSER_H
#define SHOAL_CLI_BROWSER_H

#include <stddef.h>

/* $XDG_RUNTIME_DIR when it is a directory of ours that nobody else can
 * write (another user could otherwise swap a page before the browser reads
 * it), else `fallback`. */
const char *cli_private_dir(const char *fallback);

/* Write a page that sends the browser on to `url` into DIR/NAME (0600, made
 * anew: an old one or anything else at that name is removed first, never
 * followed), titled `title` with one link `link_text`, and put its path in
 * `path`.  The browser is then started with this path, so the address
 * (and the secret in it) is never on a command line, where any local user
 * could read it in /proc (docs/security.md).  `url` must need no HTML
 * escaping (the callers check it holds only URL-safe characters).  Returns
 * 0 or an errno. */
int cli_write_redirect(const char *dir, const char *name, const char *title,
		       const char *link_text, const char *url, char *path, size_t path_len);

/* Start `xdg-open target` without waiting for it (it may run the browser in
 * the foreground).  Returns 0 once xdg-open is running, or the errno of
 * its exec (ENOENT: not installed), which the child reports through a
 * close-on-exec pipe. */
int cli_open_in_browser(const char *target);

/* Both steps for `shoal CMD --open`: the page DIR/NAME (cli_private_dir
 * of `data_dir`) sending the browser on to `url`, then xdg-open of it; a
 * failure is said on stderr ("shoal CMD: ...; open the address above
 * yourself").  Returns 0 or an errno. */
int cli_open_address(const char *cmd, const char *data_dir, const char *name, const char *title,
		     const char *link_text, const char *url);

/* The host:port a browser on this machine reaches the API at `addr` by: a
 * wildcard address (0.0.0.0:P, [::]:P) as loopback, else `addr` itself. */
void cli_reach_addr(const char *addr, char *out, size_t len);

#endif
