/* cmd_web.c: `shoal web`: a one-time login address for the web dashboard. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

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

/* Start `xdg-open url` without waiting for it (it may run the browser in
 * the foreground).  Returns 0 once xdg-open is running, or the errno of
 * its exec (ENOENT: not installed), which the child reports through a
 * close-on-exec pipe. */
static int open_in_browser(const char *url)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		close(p[0]);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			close(devnull);
		}
		char *args[] = { (char *)"xdg-open", (char *)url, NULL };
		execvp(args[0], args);
		int e = errno;
		ssize_t w = write(p[1], &e, sizeof e);
		(void)w;
		_exit(127);
	}
	close(p[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(p[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	return n == (ssize_t)sizeof e ? e : 0;
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
	json_int_t ttl = json_integer_value(json_object_get(reply, "expires_in"));
	if (!url) {
		fprintf(stderr, "shoal web: the daemon's reply holds no login address\n");
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
	if (o.open) {
		int e = open_in_browser(url);
		if (e) {
			fprintf(stderr, "shoal web: cannot run xdg-open (%s)%s; open the address "
					"above yourself\n",
				strerror(e), e == ENOENT ? ": it is not installed (xdg-utils)" : "");
			rc = CLI_FAIL;
		}
	}
	json_decref(reply);
	return rc;
}
