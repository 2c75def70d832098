/* browser.c: pages that send a browser on to an address of the daemon, and
 * xdg-open. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli/browser.h"

const char *cli_private_dir(const char *fallback)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (runtime && *runtime == '/' && stat(runtime, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == getuid() && (st.st_mode & 077) == 0)
		return runtime;
	return fallback;
}

int cli_write_redirect(const char *dir, const char *name, const char *title,
		       const char *link_text, const char *url, char *path, size_t path_len)
{
	if ((size_t)snprintf(path, path_len, "%s/%s", dir, name) >= path_len)
		return ENAMETOOLONG;
	if (unlink(path) != 0 && errno != ENOENT)
		return errno;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		return e;
	}
	fprintf(f, "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<title>%s</title>\n"
		   "<meta http-equiv=\"refresh\" content=\"0;url=%s\">\n"
		   "<p><a href=\"%s\">%s</a></p>\n", title, url, url, link_text);
	if (fclose(f) != 0)
		return errno ? errno : EIO;
	return 0;
}

int cli_open_in_browser(const char *target)
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
		char *args[] = { (char *)"xdg-open", (char *)target, NULL };
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

int cli_open_address(const char *cmd, const char *data_dir, const char *name, const char *title,
		     const char *link_text, const char *url)
{
	const char *dir = cli_private_dir(data_dir);
	char page[PATH_MAX];
	int e = cli_write_redirect(dir, name, title, link_text, url, page, sizeof page);
	if (e) {
		fprintf(stderr, "shoal %s: cannot write %s/%s (%s); open the address above yourself\n",
			cmd, dir, name, strerror(e));
		return e;
	}
	e = cli_open_in_browser(page);
	if (e)
		fprintf(stderr, "shoal %s: cannot run xdg-open (%s)%s; open the address above "
				"yourself\n",
			cmd, strerror(e), e == ENOENT ? ": it is not installed (xdg-utils)" : "");
	return e;
}

void cli_reach_addr(const char *addr, char *out, size_t len)
{
	const char *port = strrchr(addr, ':');
	if (strncmp(addr, "0.0.0.0:", 8) == 0 && port)
		snprintf(out, len, "127.0.0.1%s", port);
	else if (strncmp(addr, "[::]:", 5) == 0 && port)
		snprintf(out, len, "[::1]%s", port);
	else
		snprintf(out, len, "%s", addr);
}
