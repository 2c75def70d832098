/* test_service.c: unit tests for the service manager's side: $NOTIFY_SOCKET
 * addresses and datagrams (node/notify.c), journald's line format and the
 * $JOURNAL_STREAM check (common/log.c), the log-format setting. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "node/notify.h"
#include "node/settings.h"

static void test_notify_addr(void **state)
{
	(void)state;
	struct sockaddr_un sa;
	socklen_t len = 0;
	assert_int_equal(notify_addr("/run/systemd/notify", &sa, &len), 0);
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);

	/* Abstract: a leading NUL, then the name, no terminator counted. */
	assert_int_equal(notify_addr("@shoal/x", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "shoal/x", 7);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 8);

	assert_int_equal(notify_addr("", &sa, &len), -EINVAL);
	assert_int_equal(notify_addr(NULL, &sa, &len), -EINVAL);
	assert_int_equal(notify_addr("relative/sock", &sa, &len), -EINVAL);
	assert_int_equal(notify_addr("vsock:2:1234", &sa, &len), -EAFNOSUPPORT);

	char longp[sizeof sa.sun_path + 2];
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(notify_addr(longp, &sa, &len), -ENAMETOOLONG);
	/* A path exactly sun_path long leaves no room for its NUL; an
	 * abstract name of that length fits (it has none). */
	longp[sizeof sa.sun_path] = '\0';
	assert_int_equal(notify_addr(longp, &sa, &len), -ENAMETOOLONG);
	longp[0] = '@';
	assert_int_equal(notify_addr(longp, &sa, &len), 0);
}

/* A real datagram socket as the manager: what notify_send writes arrives
 * as one datagram, byte for byte; without the variable nothing is sent. */
static void test_notify_send(void **state)
{
	(void)state;
	char dir[] = "/tmp/shoal-notify-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/notify", dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);

	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(notify_send("READY=1\nSTATUS=up"), 1);
	assert_int_equal(notify_sendf("STATUS=%d swarms", 3), 1);
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	assert_int_equal(n, strlen("READY=1\nSTATUS=up"));
	assert_memory_equal(buf, "READY=1\nSTATUS=up", (size_t)n);
	n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
	assert_int_equal(n, strlen("STATUS=3 swarms"));
	assert_memory_equal(buf, "STATUS=3 swarms", (size_t)n);
	assert_true(recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0);

	/* A manager that went away: an error, not a hang or a signal. */
	close(fd);
	unlink(path);
	assert_true(notify_send("STOPPING=1") < 0);
	unsetenv("NOTIFY_SOCKET");
	rmdir(dir);
}

static void test_journal_stream(void **state)
{
	(void)state;
	assert_true(log_journal_stream_matches("8:1234", 8, 1234));
	assert_false(log_journal_stream_matches("8:1234", 8, 1235));
	assert_false(log_journal_stream_matches("9:1234", 8, 1234));
	assert_false(log_journal_stream_matches(NULL, 8, 1234));
	assert_false(log_journal_stream_matches("", 8, 1234));
	assert_false(log_journal_stream_matches("8:", 8, 0));
	assert_false(log_journal_stream_matches(":1234", 0, 1234));
	assert_false(log_journal_stream_matches("8:1234x", 8, 1234));
	assert_false(log_journal_stream_matches("8:-1234", 8, 1234));
	assert_false(log_journal_stream_matches(" 8:1234", 8, 1234));
	assert_true(log_journal_stream_matches("64769:18446744073709551615", 64769,
					       (ino_t)18446744073709551615ULL));
}

/* Log into a file that is stderr, then read back what was written. */
static void log_to_file(int out_fd, void (*fn)(void))
{
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(out_fd, STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
}

static void write_lines(void)
{
	log_error("e%d", 1);
	log_warn("w");
	log_info("two\nlines");
	log_debug("d");
}

static void auto_format(void)
{
	log_set_format(LOG_FMT_AUTO);
}

static size_t read_back(int fd, char *buf, size_t cap)
{
	off_t end = lseek(fd, 0, SEEK_CUR);
	assert_true(end >= 0 && (size_t)end < cap);
	ssize_t n = pread(fd, buf, (size_t)end, 0);
	assert_int_equal(n, end);
	buf[n] = '\0';
	return (size_t)n;
}

static void test_journal_lines(void **state)
{
	(void)state;
	char path[] = "/tmp/shoal-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	char buf[1024];

	log_set_level(LOG_LVL_DEBUG);
	log_set_format(LOG_FMT_JOURNAL);
	assert_int_equal(log_get_format(), LOG_FMT_JOURNAL);
	log_to_file(fd, write_lines);
	read_back(fd, buf, sizeof buf);
	/* journald's priorities, no time, a newline inside a message folded. */
	assert_string_equal(buf, "<3>e1\n<4>w\n<6>two lines\n<7>d\n");

	assert_true(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	log_set_level(LOG_LVL_INFO);
	log_set_format(LOG_FMT_TEXT);
	log_to_file(fd, write_lines);
	read_back(fd, buf, sizeof buf);
	/* Today's format: "YYYY-MM-DDTHH:MM:SS.mmmZ level message", no debug. */
	assert_int_equal(strncmp(buf + 23, "Z error e1\n", 11), 0);
	assert_non_null(strstr(buf, "Z warn  w\n"));
	assert_null(strstr(buf, " d\n"));
	assert_null(strchr(buf, '<'));

	/* auto: journal only when $JOURNAL_STREAM names stderr itself. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char js[64];
	snprintf(js, sizeof js, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_to_file(fd, auto_format);
	assert_int_equal(log_get_format(), LOG_FMT_JOURNAL);
	snprintf(js, sizeof js, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_to_file(fd, auto_format);
	assert_int_equal(log_get_format(), LOG_FMT_TEXT);
	unsetenv("JOURNAL_STREAM");
	log_to_file(fd, auto_format);
	assert_int_equal(log_get_format(), LOG_FMT_TEXT);
	close(fd);
}

static void test_log_format_setting(void **state)
{
	(void)state;
	struct node_config cfg;
	char err[256];
	setenv("SHOAL_DATA_DIR", "/tmp/shoal-unused", 1);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_int_equal(cfg.log_format, LOG_FMT_AUTO);
	assert_int_equal(config_set(&cfg, "log-format", "journal", err, sizeof err), 0);
	assert_int_equal(cfg.log_format, LOG_FMT_JOURNAL);
	assert_int_equal(config_set(&cfg, "log-format", "text", err, sizeof err), 0);
	assert_int_equal(cfg.log_format, LOG_FMT_TEXT);
	assert_int_equal(config_set(&cfg, "log-format", "json", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "auto, text or journal"));
	assert_string_equal(log_format_name(LOG_FMT_JOURNAL), "journal");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_addr),
		cmocka_unit_test(test_notify_send),
		cmocka_unit_test(test_journal_stream),
		cmocka_unit_test(test_journal_lines),
		cmocka_unit_test(test_log_format_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
