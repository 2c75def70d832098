/* cmd_web.c: `shoal web`: a one-time login address for the web dashboard. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/browser.h"
#include "cli/cli.h"
#include "cli/client.h"

struct web_opts {
	int json, open;
};

static int on_opt(int val, const char *arg, void *ctx)
{
	(void)arg;
	struct web_opts *o = ctx;
	if (val == 'j')
		o->json = 1;
	else if (val == 'o')
		o->open = 1;
	else
		return CLI_USAGE;
	return 0;
}

/* Is `url` what our daemon answers: "http://ADDR/login#" and the reply's
 * `code` of 32 hex digits, ADDR the address we asked (`addr`, from
 * api.addr; a wildcard bind is answered with loopback)?  Whatever holds
 * the port while the daemon is down must not steer the browser elsewhere,
 * nor get xdg-open to open a file or take an option. */
static bool url_is_login(const char *url, const char *code, const char *addr)
{
	if (!url || !code || strlen(code) != 32 || strspn(code, "0123456789abcdef") != 32)
		return false;
	if (strncmp(url, "http://", 7) != 0)
		return false;
	const char *host = url + 7;
	const char *end = strstr(host, "/login#");
	if (!end || strcmp(end + 7, code) != 0)
		return false;
	size_t n = (size_t)(end - host);
	char want[160];
	cli_reach_addr(addr, want, sizeof want);
	return strlen(want) == n && strncmp(host, want, n) == 0;
}

int cmd_web(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "open", no_argument, NULL, 'o' },
		{ 0 },
	};
	struct web_opts o = { 0 };
	struct cli_conn conn;
	int rc = cli_getopt("web", argc, argv, extra, on_opt, &o, &conn);
	if (rc < 0)
		return CLI_GETOPT_EXIT(rc);
	if (rc < argc) {
		fprintf(stderr, "shoal web: unexpected argument '%s'\n", argv[rc]);
		return CLI_USAGE;
	}
	if ((rc = cli_load_conn(&conn)))
		return rc;
	json_t *reply = NULL;
	if ((rc = cli_call(&conn, "web", "POST", "/api/v1/web/codes", NULL, &reply)))
		return rc;
	const char *url = json_string_value(json_object_get(reply, "url"));
	const char *code = json_string_value(json_object_get(reply, "code"));
	json_int_t ttl = json_integer_value(json_object_get(reply, "expires_in"));
	if (!url_is_login(url, code, conn.addr)) {
		fprintf(stderr, "shoal web: the reply from %s is not a login address of a shoal "
				"daemon\n", conn.addr);
		json_decref(reply);
		return CLI_FAIL;
	}
	if (o.json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		printf("%s\n", url);
		printf("valid for %lld seconds, once: open it in a browser on this machine\n",
		       (long long)ttl);
	}
	rc = CLI_OK;
	if (o.open && cli_open_address("web", conn.data_dir, "shoal-login.html",
				       "shoal: logging in", "Log in to shoal", url) != 0)
		rc = CLI_FAIL;
	json_decref(reply);
	return rc;
}
