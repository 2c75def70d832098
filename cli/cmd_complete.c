/* cmd_complete.c: `shoal __complete`, the hidden command that bash completion
 * (completion/shoal.bash) asks, so completion learns the commands and flags
 * from this program's own help and never drifts from `shoal help`. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

/* Completion runs on every Tab: one request, and a daemon that does not
 * answer within this long gets nothing asked of it. */
#define COMPLETE_TIMEOUT_MS 800
/* Swarms offered for one Tab: more than a terminal shows, fewer than a
 * seedbox holds (the API pages; docs/api.md). */
#define COMPLETE_MAX_SWARMS 200
#define COMPLETE_MAX_FLAGS 64
#define COMPLETE_FLAG_LEN 64
#define COMPLETE_ARG_LEN 64
#define COMPLETE_HELP_MAX (64u * 1024)

struct flag {
	char name[COMPLETE_FLAG_LEN]; /* "--into" */
	char arg[COMPLETE_ARG_LEN];   /* "DIR", "hybrid|v2|v1", or "" for none */
};

struct flags {
	struct flag v[COMPLETE_MAX_FLAGS];
	size_t n;
};

/* Add a flag unless it is there; a later sighting may name the argument. */
static void flags_add(struct flags *fl, const char *name, size_t name_len, const char *arg,
		      size_t arg_len)
{
	if (name_len >= COMPLETE_FLAG_LEN || arg_len >= COMPLETE_ARG_LEN)
		return;
	for (size_t i = 0; i < fl->n; i++) {
		struct flag *f = &fl->v[i];
		if (strlen(f->name) == name_len && memcmp(f->name, name, name_len) == 0) {
			if (!f->arg[0] && arg_len) {
				memcpy(f->arg, arg, arg_len);
				f->arg[arg_len] = '\0';
			}
			return;
		}
	}
	if (fl->n == COMPLETE_MAX_FLAGS)
		return;
	struct flag *f = &fl->v[fl->n++];
	memcpy(f->name, name, name_len);
	f->name[name_len] = '\0';
	memcpy(f->arg, arg, arg_len);
	f->arg[arg_len] = '\0';
}

static bool is_flag_char(char c)
{
	return islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-';
}

/* The argument written after a flag at p (just past its name), as in
 * "--into DIR]", "--format hybrid|v2|v1]", "--set N=PRIORITY]" or
 * "--peer HOST:PORT]...": one space, then a word up to ']', '[', a space or
 * the line's end.  A word that is another option, '|' or '[' is none. */
static size_t flag_arg(const char *p, const char *end, const char **arg_out)
{
	*arg_out = p;
	if (p >= end || *p != ' ' || p + 1 >= end)
		return 0;
	p++;
	if (!isalpha((unsigned char)*p))
		return 0;
	const char *a = p;
	while (p < end && *p != ']' && *p != '[' && *p != ' ' && *p != '\n')
		p++;
	*arg_out = a;
	return (size_t)(p - a);
}

/* Every --flag of a command's synopsis (its usage up to the first blank
 * line), with the argument the synopsis names. */
static void parse_synopsis(const char *usage, struct flags *fl)
{
	const char *end = strstr(usage, "\n\n");
	if (!end)
		end = usage + strlen(usage);
	for (const char *p = usage; p + 2 < end; p++) {
		if (p[0] != '-' || p[1] != '-' || !is_flag_char(p[2]) || (p > usage && p[-1] == '-'))
			continue;
		const char *name = p;
		p += 2;
		while (p < end && is_flag_char(*p))
			p++;
		const char *arg;
		size_t arg_len = flag_arg(p, end, &arg);
		flags_add(fl, name, (size_t)(p - name), arg, arg_len);
		p--;
	}
}

/* Whether fl holds "--no-" followed by the name of the flag at p. */
static bool has_negation(const struct flags *fl, const char *p, size_t len)
{
	for (size_t i = 0; i < fl->n; i++) {
		const char *f = fl->v[i].name;
		if (strncmp(f, "--no-", 5) == 0 && strlen(f + 5) == len - 2 &&
		    memcmp(f + 5, p + 2, len - 2) == 0)
			return true;
	}
	return false;
}

/* One pass over `shoal-daemon --help`: the flags of option lines ("  --port
 * PORT   ...", "  -h, --help"), with their arguments; or, with prose set,
 * the flags met elsewhere that are the other half of a --no-X option
 * ("--lsd turns it back on").  Other flags in the prose belong to other
 * commands ("joins without --into"). */
static void scan_daemon_help(const char *help, struct flags *fl, bool prose)
{
	for (const char *line = help; *line;) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		bool option_line = line[0] == ' ' && line[1] == ' ' && line[2] == '-';
		for (const char *p = line; p + 2 < eol; p++) {
			if (p[0] != '-' || p[1] != '-' || !is_flag_char(p[2]) ||
			    (p > line && p[-1] != ' ' && p[-1] != '('))
				continue;
			const char *name = p;
			size_t len = 2;
			while (name + len < eol && is_flag_char(name[len]))
				len++;
			p = name + len - 1;
			const char *arg = name + len;
			size_t arg_len = 0;
			if (option_line && name - line <= 6) { /* "  --x" or "  -h, --x" */
				if (prose)
					continue;
				arg_len = flag_arg(name + len, eol, &arg);
				for (size_t i = 0; i < arg_len; i++)
					if (!isupper((unsigned char)arg[i]))
						arg_len = 0;
			} else if (!prose || !has_negation(fl, name, len)) {
				continue;
			}
			flags_add(fl, name, len, arg, arg_len);
		}
		line = *eol ? eol + 1 : eol;
	}
}

static void parse_daemon_help(const char *help, struct flags *fl)
{
	scan_daemon_help(help, fl, false);
	scan_daemon_help(help, fl, true);
}

/* Run `shoal-daemon --help` (as `shoal help daemon` does) and read what it
 * prints into buf (NUL-terminated).  Returns 0 or -errno. */
static int read_daemon_help(char *buf, size_t cap)
{
	int pfd[2];
	if (pipe(pfd) != 0)
		return -errno;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (pid == 0) {
		close(pfd[0]);
		if (dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(1);
		close(pfd[1]);
		cli_usage(cli_find("daemon"), stdout); /* execs; returns on failure */
		_exit(1);
	}
	close(pfd[1]);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(pfd[0], buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	buf[len] = '\0';
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return len ? 0 : -EIO;
}

static int complete_flags(const char *cmd_name)
{
	const struct cli_command *cmd = cli_find(cmd_name);
	if (!cmd)
		return CLI_USAGE;
	struct flags fl = { .n = 0 };
	if (strcmp(cmd->name, "daemon") == 0) {
		char *help = malloc(COMPLETE_HELP_MAX);
		if (!help || read_daemon_help(help, COMPLETE_HELP_MAX) != 0) {
			free(help);
			return CLI_FAIL;
		}
		parse_daemon_help(help, &fl);
		free(help);
	} else {
		parse_synopsis(cmd->usage, &fl);
		if (strcmp(cmd->name, "help") != 0) { /* cli_getopt's own two */
			flags_add(&fl, "--data-dir", 10, "DIR", 3);
			flags_add(&fl, "--help", 6, "", 0);
		}
	}
	for (size_t i = 0; i < fl.n; i++)
		printf(fl.v[i].arg[0] ? "%s %s\n" : "%s\n", fl.v[i].name, fl.v[i].arg);
	return CLI_OK;
}

/* The positional arguments of a command's first synopsis line, in order,
 * without brackets: "SWARM", "LINK|FILE|FOLDER..." (a trailing "..."
 * repeats).  A flag's argument is not one of them. */
static int complete_args(const char *cmd_name)
{
	const struct cli_command *cmd = cli_find(cmd_name);
	if (!cmd)
		return CLI_USAGE;
	const char *p = cmd->usage, *eol = strchr(p, '\n');
	if (!eol)
		eol = p + strlen(p);
	int word = 0;
	bool skip_next = false;
	while (p < eol) {
		while (p < eol && *p == ' ')
			p++;
		const char *w = p;
		while (p < eol && *p != ' ')
			p++;
		size_t n = (size_t)(p - w);
		if (n == 0)
			break;
		if (word++ < 2) /* "shoal CMD" */
			continue;
		if (w[0] == '(') /* the daemon's "(see `shoal daemon --help`)" */
			break;
		if (skip_next) {
			skip_next = false;
			continue;
		}
		if (w[0] == '|')
			continue;
		if (w[0] == '-' || (w[0] == '[' && n > 1 && w[1] == '-')) {
			/* "[--into" takes the next word, "[--json]" does not */
			skip_next = !memchr(w, ']', n) && p + 1 < eol && isalpha((unsigned char)p[1]);
			continue;
		}
		while (n && (*w == '[' || *w == ']')) {
			w++;
			n--;
		}
		while (n && w[n - 1] == ']')
			n--;
		if (n && !(n == 7 && memcmp(w, "OPTIONS", 7) == 0))
			printf("%.*s\n", (int)n, w);
	}
	return CLI_OK;
}

static int complete_commands(void)
{
	size_t n;
	const struct cli_command *cmds = cli_commands(&n);
	for (size_t i = 0; i < n; i++)
		if (cmds[i].name[0] != '_')
			printf("%s\n", cmds[i].name);
	return CLI_OK;
}

/* Percent-encode s into out for a query string; false when it does not fit. */
static bool query_encode(const char *s, char *out, size_t cap)
{
	size_t k = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (k + 4 > cap)
			return false;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, cap - k, "%%%02X", c);
	}
	out[k] = '\0';
	return true;
}

/* "ID<TAB>NAME" for the swarms a word may complete to: those whose id
 * starts with it when it is digits (or empty), else those whose name
 * contains it (the API's q=).  Prints nothing, exit 3, without a daemon. */
static int complete_swarms(struct cli_conn *conn, const char *prefix)
{
	/* No message may reach the terminal in the middle of a command line. */
	if (!freopen("/dev/null", "w", stderr))
		return CLI_FAIL;
	int rc = cli_load_conn(conn);
	if (rc)
		return rc;
	bool by_id = strspn(prefix, "0123456789") == strlen(prefix);
	char path[600], q[256 * 3 + 1];
	if (by_id) {
		snprintf(path, sizeof path, "/api/v1/swarms?limit=%d", 1000);
	} else {
		if (strlen(prefix) > 255 || !query_encode(prefix, q, sizeof q))
			return CLI_OK;
		snprintf(path, sizeof path, "/api/v1/swarms?limit=%d&q=%s", COMPLETE_MAX_SWARMS, q);
	}
	int status;
	json_t *reply = NULL;
	rc = cli_request_within(conn, "GET", path, NULL, COMPLETE_TIMEOUT_MS, &status, &reply);
	if (rc)
		return rc;
	if (status != 200) {
		json_decref(reply);
		return CLI_FAIL;
	}
	json_t *swarms = json_object_get(reply, "swarms"), *sw;
	size_t i, shown = 0;
	json_array_foreach(swarms, i, sw) {
		json_int_t id = json_integer_value(json_object_get(sw, "id"));
		const char *name = json_string_value(json_object_get(sw, "name"));
		char id_s[24];
		snprintf(id_s, sizeof id_s, "%lld", (long long)id);
		if (by_id && strncmp(id_s, prefix, strlen(prefix)) != 0)
			continue;
		/* A name is one field of one line: tabs and newlines in it go. */
		printf("%s\t", id_s);
		for (const char *c = name ? name : ""; *c; c++)
			putchar(*c == '\t' || *c == '\n' || *c == '\r' ? ' ' : *c);
		putchar('\n');
		if (++shown == COMPLETE_MAX_SWARMS)
			break;
	}
	json_decref(reply);
	return CLI_OK;
}

int cmd_complete(int argc, char **argv)
{
	/* --data-dir DIR or --data-dir=DIR anywhere (`shoal --data-dir D
	 * __complete ...` puts it right after the command name). */
	const char *data_dir = NULL, *words[3] = { NULL, NULL, NULL };
	size_t n_words = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strncmp(argv[i], "--data-dir=", 11) == 0)
			data_dir = argv[i] + 11;
		else if (n_words < 3)
			words[n_words++] = argv[i];
		else
			return CLI_USAGE;
	}
	const char *what = words[0] ? words[0] : "";
	if (strcmp(what, "commands") == 0 && n_words == 1)
		return complete_commands();
	if (strcmp(what, "flags") == 0 && n_words == 2)
		return complete_flags(words[1]);
	if (strcmp(what, "args") == 0 && n_words == 2)
		return complete_args(words[1]);
	if (strcmp(what, "swarms") == 0 && n_words <= 2) {
		struct cli_conn conn;
		if (cli_resolve_data_dir(&conn, data_dir) != 0)
			return CLI_USAGE;
		return complete_swarms(&conn, words[1] ? words[1] : "");
	}
	cli_usage(cli_find("__complete"), stderr);
	return CLI_USAGE;
}
