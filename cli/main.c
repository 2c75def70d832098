/* main.c: entry point of `shoal`: dispatch to a subcommand. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

/* `shoal daemon` is the program shoal-daemon, so this CLI links none of the
 * daemon (docs/architecture.md, "Two programs").  It is looked for beside
 * this program first (the build tree, or an installed bindir), then where
 * `make install` put it, then on $PATH.  Returns only on failure. */
static int exec_daemon(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof path, "%s/shoal-daemon", self);
			if (access(path, X_OK) == 0)
				execv(path, argv);
		}
	}
	snprintf(path, sizeof path, "%s/shoal-daemon", SHOAL_BINDIR);
	if (access(path, X_OK) == 0)
		execv(path, argv);
	execvp("shoal-daemon", argv);
	fprintf(stderr, "shoal: cannot run shoal-daemon (looked beside shoal, in %s and on $PATH): %s\n",
		SHOAL_BINDIR, strerror(errno));
	return CLI_FAIL;
}

static int cmd_daemon(int argc, char **argv)
{
	(void)argc;
	argv[0] = (char *)"shoal-daemon";
	return exec_daemon(argv);
}

static int cmd_help(int argc, char **argv);

static const struct cli_command commands[] = {
	{ "daemon", "run a node in the foreground",
	  "shoal daemon [OPTIONS]   (see `shoal daemon --help`)\n", cmd_daemon },
	{ "status", "show the node, its DHT and its swarms",
	  "shoal status [--all] [--json] [--data-dir DIR]\n"
	  "\n"
	  "Ask the running daemon for its status and print the node, its DHT, the\n"
	  "number of swarms in each state, and a row per swarm.  When there are more\n"
	  "swarms than fit (the terminal's height, or 20 when the output is not a\n"
	  "terminal), only the 10 busiest are listed (by transfer rate, then peers,\n"
	  "then bytes moved), with those in error; --all lists every swarm.  --json\n"
	  "prints the raw reply of GET /api/v1/status (see docs/api.md).\n",
	  cmd_status },
	{ "share", "hash a directory and seed it; print its magnet link",
	  "shoal share DIR [--format hybrid|v2|v1] [--tracker URL[,URL...]]... [--json]\n"
	  "                [--data-dir DIR]\n"
	  "\n"
	  "Hash every file under DIR into a BitTorrent swarm (a progress bar shows\n"
	  "on a terminal), seed it from DIR in place, and print two lines: the magnet\n"
	  "link and the path of the .torrent written into the data dir.  --format\n"
	  "hybrid (the default, as libtorrent and qBittorrent make them) writes the v2\n"
	  "keys and the v1 keys (SHA-1 pieces, BEP 47 pad files), so v2 clients and\n"
	  "v1-only ones alike can download it, and its magnet carries both info-hashes;\n"
	  "--format v2 writes BitTorrent v2 only; --format v1 writes BitTorrent v1 only\n"
	  "(for clients without v2: Transmission 3, aria2, rTorrent).  --json\n"
	  "prints the swarm as JSON instead.  Sharing a directory that is already shared\n"
	  "returns the same swarm and re-checks files whose size or mtime changed\n"
	  "(asking for the other format is an error naming that swarm).\n"
	  "Symbolic links are never followed: a link under DIR is an error.\n"
	  "\n"
	  "--tracker URL (repeatable) writes an http://, https:// or udp://host:port\n"
	  "tracker into the .torrent (\"announce\" is the first, \"announce-list\" has one\n"
	  "tier per --tracker; URLs joined by ',' in one --tracker share a tier) and the\n"
	  "magnet link (tr=), and the swarm announces to them.  See `shoal trackers`.\n",
	  cmd_share },
	{ "join", "download from magnet links, .torrent files or directories of them",
	  "shoal join LINK|FILE|FOLDER... [--into DIR] [--overwrite] [--peer HOST:PORT]...\n"
	  "                     [--only GLOB]... [--skip GLOB]... [--sequential]\n"
	  "                     [--wait] [--json] [--data-dir DIR]\n"
	  "\n"
	  "Join the swarm of a magnet link (magnet:?xt=urn:btih:... or urn:btmh:1220...)\n"
	  "or a .torrent file (BitTorrent v1, v2 or hybrid) and download it into\n"
	  "DIR/<name>/ (a single-file torrent into DIR/<name>).  DIR is created if\n"
	  "missing; without --into it is the daemon's download-dir (`shoal daemon\n"
	  "--help`), not the current directory.  --peer adds a peer to contact\n"
	  "(repeatable); peers are also found through the DHT, peer exchange and the\n"
	  "trackers of the link (tr=) or the .torrent (announce-list).  With --wait,\n"
	  "show a progress bar until the download is complete, then exit 0; Ctrl-C\n"
	  "leaves it running in the daemon.  --json prints the daemon's reply.\n"
	  "\n"
	  "--only GLOB downloads only the files matching one --only; --skip GLOB never\n"
	  "downloads the files matching one --skip (each repeatable, up to 64; quote\n"
	  "them from the shell).  A GLOB is matched as fnmatch(3) does, '*' matching\n"
	  "'/' too, against the file's path inside the torrent as `shoal files` shows\n"
	  "it; one without '/' is also tried against the file's base name, so\n"
	  "--skip '*.nfo' skips them in every folder.  Skipped files are never created\n"
	  "(`shoal files` changes the choice later).  A join whose rules leave no file\n"
	  "fails (a magnet's, when its metadata arrives).  --sequential fetches the\n"
	  "pieces in file order, each file's first and last piece first (for playing\n"
	  "while it downloads).  With --wait the bar counts the wanted files only.\n"
	  "\n"
	  "Given a FOLDER, join every *.torrent directly in it (not in directories\n"
	  "below; hidden files left out), in name order; several arguments are joined\n"
	  "one after the other, each as above, with the same options (--wait takes one\n"
	  "swarm only).  A progress line shows on a terminal; at the end one line per\n"
	  "failure names the file and why, then \"joined N, already present N, failed\n"
	  "N\".  One that fails does not stop the others.  Exit 0 when every one\n"
	  "joined or was already there, 1 when any failed, 3 when no daemon answers\n"
	  "(those not tried are counted).  --json prints {\"results\": [{\"link\",\n"
	  "\"result\": \"joined\"|\"existing\"|\"failed\", \"swarm\" or \"error\"}...],\n"
	  "\"joined\", \"existing\", \"failed\", \"not_tried\"} (docs/api.md).\n"
	  "\n"
	  "A join never writes into a file it did not create.  A file already at one of\n"
	  "the torrent's names is used as downloaded data if every piece of it matches\n"
	  "the torrent (.torrent joins: the file is left untouched); otherwise the join\n"
	  "fails naming the file, unless --overwrite is given (the file is replaced by a\n"
	  "new one).  No symbolic link is followed: DIR itself or a directory below it\n"
	  "being one is an error.\n",
	  cmd_join },
	{ "files", "list a swarm's files; skip or prioritize them",
	  "shoal files SWARM [--set N=PRIORITY]... [--sequential on|off] [--json]\n"
	  "                  [--data-dir DIR]\n"
	  "\n"
	  "List the files of SWARM (its id, or 8+ hex digits of its info-hash): INDEX,\n"
	  "PRIORITY, DONE (the file's bytes in verified pieces), SIZE and PATH (inside\n"
	  "the torrent).  A priority is skip, low, normal (the default) or high: the\n"
	  "pieces of high files are fetched before normal ones, normal before low, and\n"
	  "a skipped file is not downloaded and not created (in a v1 torrent, the\n"
	  "bytes of a piece it shares with a wanted file are kept in the data dir,\n"
	  "never in the download folder).  A swarm whose wanted files are complete\n"
	  "seeds them: `shoal status` shows it as \"seeding (3 of 5 files)\".\n"
	  "\n"
	  "--set N=PRIORITY (repeatable) sets the priority of file N (its INDEX), or\n"
	  "of every file matching the GLOB N (as `shoal join --only` matches: '*'\n"
	  "matches '/' too; a GLOB without '/' is also tried against the base name).\n"
	  "A later --set wins for a file that several name; a GLOB that matches no\n"
	  "file is an error and nothing is changed.  Un-skipping a file creates it;\n"
	  "when something already has its name the change is refused and that file\n"
	  "left untouched.  Skipping a file already on disk keeps it as it is.\n"
	  "--sequential on fetches the wanted pieces in file order (each file's first\n"
	  "and last piece first), off goes back to rarest first.  The table is\n"
	  "printed after the change.  A share's files are all normal and cannot be\n"
	  "changed.  --json prints the API's reply (GET /api/v1/swarms/ID/files,\n"
	  "docs/api.md).\n",
	  cmd_files },
	{ "trackers", "show, add or remove a swarm's trackers; announce now",
	  "shoal trackers SWARM [--json] [--add URL | --remove URL | --reannounce]\n"
	  "                     [--data-dir DIR]\n"
	  "\n"
	  "Show the trackers of SWARM (its id, or 8+ hex digits of its info-hash), tier\n"
	  "by tier: status (idle, announcing, working, error, backup), the peers its\n"
	  "last answer held, seeders and leechers (from the last answer or a scrape),\n"
	  "when it was last announced to and will be next, and its last error (such as\n"
	  "the tracker's own \"failure reason\").  Tiers are announced to side by side;\n"
	  "within a tier one tracker at a time, the next when it fails (BEP 12).\n"
	  "--add URL adds an http://, https:// or udp://host:port tracker as a tier of\n"
	  "its own, --remove URL removes one (it is sent \"stopped\"), --reannounce\n"
	  "announces to every tier now.  --json prints the API's reply\n"
	  "(GET /api/v1/swarms/ID/trackers, see docs/api.md).\n",
	  cmd_trackers },
	{ "peers", "list a swarm's connected peers",
	  "shoal peers SWARM [--json] [--data-dir DIR]\n"
	  "\n"
	  "FLAGS: i we are interested, D they let us download, I they are interested,\n"
	  "U we let them download.  CRYPTO: the encrypted shoal transport's record\n"
	  "cipher, aes-gcm (AES-256-GCM) or xchacha (XChaCha20-Poly1305); shoal while\n"
	  "its handshake is still running; plain = plain BitTorrent.\n",
	  cmd_peers },
	{ "verify", "re-hash a swarm's files against its hashes",
	  "shoal verify SWARM [--json] [--data-dir DIR]\n"
	  "\n"
	  "Re-read and re-hash every file of SWARM (its id, or 8+ hex digits of its\n"
	  "info-hash), and report what this check found.  Pieces that no longer\n"
	  "match are no longer offered; a joined swarm fetches them again.  Exits 0\n"
	  "when every piece verifies, 1 otherwise.\n",
	  cmd_verify },
	{ "pause", "stop a swarm's transfers", "shoal pause SWARM [--data-dir DIR]\n", cmd_pause },
	{ "resume", "restart a paused swarm", "shoal resume SWARM [--data-dir DIR]\n", cmd_resume },
	{ "remove", "forget a swarm",
	  "shoal remove SWARM [--delete-data] [--data-dir DIR]\n"
	  "\n"
	  "Forget SWARM.  Shared directories are never deleted; --delete-data deletes\n"
	  "the downloaded files of a joined swarm.\n",
	  cmd_remove },
	{ "limit", "show or set upload/download limits",
	  "shoal limit [SWARM] [--upload RATE] [--download RATE] [--data-dir DIR]\n"
	  "\n"
	  "Without SWARM: the daemon-wide limits (until it restarts; set them for good\n"
	  "with --upload-limit/--download-limit or shoal.conf).  With SWARM: that\n"
	  "swarm's own limits, kept in the database and divided among its\n"
	  "connections once a second by what each uses.  RATE is bytes/s like\n"
	  "500K or 2M; 0 removes the limit.  Without --upload/--download, show the\n"
	  "limits.\n",
	  cmd_limit },
	{ "token", "print the API bearer token",
	  "shoal token [--metrics] [--data-dir DIR]\n"
	  "\n"
	  "Print the token that authorises requests to the control API, e.g.\n"
	  "  curl -H \"Authorization: Bearer $(shoal token)\" http://127.0.0.1:7881/api/v1/status\n"
	  "\n"
	  "--metrics prints the read-only token of GET /metrics instead, making\n"
	  "DATA_DIR/metrics.token (0600) when there is none; it opens nothing else,\n"
	  "so a Prometheus scraper can hold it.  A running daemon takes a new one at\n"
	  "its next SIGHUP (systemctl reload shoal) or start.  Run as root for a data\n"
	  "dir another user owns (the service's /var/lib/shoal), the file is given\n"
	  "to that user.\n",
	  cmd_token },
	{ "web", "print a one-time login address for the web dashboard",
	  "shoal web [--open] [--json] [--data-dir DIR]\n"
	  "\n"
	  "Ask the daemon for a one-time login code and print the address that\n"
	  "logs a browser into the web dashboard, http://127.0.0.1:7881/login#CODE\n"
	  "(the API's own address).  It works once, within 60 seconds, in a browser\n"
	  "on this machine; the session it opens lasts 12 hours (or until the daemon\n"
	  "stops, or you log out).  The code is in the address's fragment, which the\n"
	  "browser sends to no server.  Run `shoal web` again for a new one.\n"
	  "--open also opens the address with xdg-open (when xdg-open is missing the\n"
	  "address is printed and the exit status is 1).  --json prints the daemon's\n"
	  "reply: {\"code\", \"expires_in\", \"url\"} (POST /api/v1/web/codes, see\n"
	  "docs/api.md and docs/web.md).\n",
	  cmd_web },
	{ "stream", "print an address a player can read a file from, while it downloads",
	  "shoal stream SWARM FILE [--ttl SECONDS] [--open] [--json] [--data-dir DIR]\n"
	  "       shoal stream --list [--json] | --revoke ID\n"
	  "\n"
	  "Print an address, http://127.0.0.1:PORT/stream/TOKEN/NAME, that a video\n"
	  "player or browser on this machine opens to read FILE of SWARM (its id, or\n"
	  "8+ hex digits of its info-hash) while the swarm still downloads: the bytes\n"
	  "come as their pieces arrive and are verified, the pieces the player reads\n"
	  "next are fetched first, and a seek (an HTTP Range request) moves that\n"
	  "window.  FILE is the file's path inside the swarm (as `shoal files` shows\n"
	  "it) or its index.  For example:\n"
	  "  mpv \"$(shoal stream 3 movie.mkv)\"\n"
	  "\n"
	  "The address needs no token: the one in it is the credential, good for\n"
	  "that one file only (GET and HEAD), for --ttl SECONDS (default 86400, one\n"
	  "day; 1 to 604800), until revoked, or until the daemon stops (addresses live\n"
	  "in its memory only).  Anyone on this machine who sees it (shell history, a\n"
	  "player's log or recent files) can read the file until then: see\n"
	  "docs/security.md.  --list shows the addresses that still work (never their\n"
	  "tokens); --revoke ID ends one now, and closes the readers that use it.\n"
	  "--open also opens the address with xdg-open, through a page written into\n"
	  "$XDG_RUNTIME_DIR (or the data dir) so the token is on no command line (when\n"
	  "xdg-open is missing the address is printed and the exit status is 1).\n"
	  "--json prints the daemon's reply: {\"id\", \"url\", \"swarm\", \"file\",\n"
	  "\"path\", \"expires_at\"} (docs/api.md, docs/streaming.md).\n",
	  cmd_stream },
	{ "help", "show help for a command", "shoal help [COMMAND]\n", cmd_help },
	/* Hidden (a leading '_'): what bash completion asks, docs/completion.md. */
	{ "__complete", "answer shell completion",
	  "shoal __complete commands | flags COMMAND | args COMMAND\n"
	  "       shoal __complete swarms [WORD] [--data-dir DIR]\n",
	  cmd_complete },
};

const struct cli_command *cli_commands(size_t *n_out)
{
	*n_out = sizeof commands / sizeof commands[0];
	return commands;
}

const struct cli_command *cli_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

void cli_usage(const struct cli_command *cmd, FILE *out)
{
	if (strcmp(cmd->name, "daemon") == 0) {
		fflush(out);
		char *args[] = { (char *)"shoal-daemon", (char *)"--help", NULL };
		if (out == stdout) {
			exec_daemon(args);
			return;
		}
		fprintf(out, "Usage: shoal daemon [OPTIONS]   (see `shoal daemon --help`)\n");
		return;
	}
	fprintf(out, "Usage: %s", cmd->usage);
	fprintf(out, "\nEvery command takes --data-dir DIR (or $SHOAL_DATA_DIR) to pick the node.\n"
		     "Exit status: 0 ok, 1 failed, 2 bad usage, 3 no daemon running.\n");
}

static void main_usage(FILE *out)
{
	fprintf(out, "Usage: shoal [--data-dir DIR] COMMAND [OPTIONS]\n\n"
		     "shoal is a peer-to-peer file sharing node: BitTorrent v1, v2 and hybrid\n"
		     "content, a Mainline DHT, encrypted transfers between shoal nodes.\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (commands[i].name[0] != '_')
			fprintf(out, "  %-8s  %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun `shoal help COMMAND` or `shoal COMMAND --help` for details.\n");
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stdout);
		return CLI_OK;
	}
	const struct cli_command *cmd = cli_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "shoal: unknown command '%s'\n", argv[1]);
		main_usage(stderr);
		return CLI_USAGE;
	}
	cli_usage(cmd, stdout);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		main_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("shoal %s\n", PACKAGE_VERSION);
		return CLI_OK;
	}
	/* `shoal --data-dir D COMMAND ...` (or --data-dir=D): the option goes
	 * to the command, right after its name, as if written there. */
	char *moved[2] = { NULL, NULL };
	int skip = 0;
	if (strcmp(argv[1], "--data-dir") == 0) {
		if (argc < 4) {
			fprintf(stderr, "shoal: --data-dir needs a directory and then a command\n");
			main_usage(stderr);
			return CLI_USAGE;
		}
		moved[0] = argv[1];
		moved[1] = argv[2];
		skip = 2;
	} else if (strncmp(argv[1], "--data-dir=", 11) == 0) {
		if (argc < 3) {
			fprintf(stderr, "shoal: --data-dir=DIR needs a command after it\n");
			main_usage(stderr);
			return CLI_USAGE;
		}
		moved[0] = argv[1];
		skip = 1;
	}
	const char *name = argv[1 + skip];
	const struct cli_command *cmd = cli_find(name);
	if (!cmd) {
		fprintf(stderr, "shoal: unknown command '%s'\n", name);
		main_usage(stderr);
		return CLI_USAGE;
	}
	if (!skip)
		return cmd->run(argc - 1, argv + 1);
	if (cmd->run == cmd_help) /* help takes no data dir: drop it */
		return cmd_help(argc - 1 - skip, argv + 1 + skip);
	/* COMMAND, the moved option, then the rest. */
	int n = argc - 1; /* the same count: only the order changes */
	char **args = calloc((size_t)n + 1, sizeof *args);
	if (!args) {
		fprintf(stderr, "shoal: out of memory\n");
		return CLI_FAIL;
	}
	int k = 0;
	args[k++] = argv[1 + skip];
	for (int i = 0; i < skip; i++)
		args[k++] = moved[i];
	for (int i = 2 + skip; i < argc; i++)
		args[k++] = argv[i];
	int rc = cmd->run(k, args);
	free(args);
	return rc;
}
