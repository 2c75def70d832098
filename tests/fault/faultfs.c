/* faultfs.c: an LD_PRELOAD shim for tests that makes fdatasync, fsync and
 * pwrite fail with EIO or stall, for files under one directory, so the
 * durability tests can act out a failing or slow disk on a real daemon.
 *
 * Control: SHOAL_FAULT_FILE names a control file that the test writes (and
 * rewrites) while the daemon runs; the shim re-reads it at most every 20 ms.
 * A missing file means no faults.  Lines, each optional:
 *
 *     prefix /abs/dir      only files whose path starts with this (required
 *                          for any fault to apply)
 *     fdatasync eio        fdatasync fails with EIO (fsync, which shoal uses
 *                          for directories, is journaled but never faulted)
 *     fdatasync stall MS   ... sleep MS milliseconds first, then succeed
 *     pwrite eio           pwrite fails with EIO
 *     pwrite stall MS      ... sleep MS milliseconds first, then write
 *     fdatasync eio MS     stall MS, then fail (likewise for pwrite)
 *
 * Power loss, acted out: when SHOAL_FAULT_JOURNAL names a file, every
 * successful pwrite under the prefix appends "W <seq> <offset> <length>
 * <path>" and every successful fdatasync/fsync appends "S <seq0> 0 0 <path>",
 * where seq numbers the W lines and seq0 is the count of W lines when the
 * sync began: W lines of that path numbered below seq0 are durable.  An
 * fdatasync failed with EIO appends "F <seq0> 0 0 <path>": as on Linux,
 * where a failed writeback drops the dirty pages and the error is reported
 * once, the W lines of that path below seq0 not yet durable are lost for
 * good, even when a later sync succeeds.  After a
 * kill -9 the test zeroes every range not made durable, which is what a
 * power cut could have left, and then checks what the database claims.
 *
 * Every call the shim failed or stalled is counted; when SHOAL_FAULT_LOG is
 * set, the counts are written there ("fdatasync_failed N" ...) after each
 * faulted call, so a test can tell that its fault actually happened.
 *
 * Test code only: it is never linked into shoal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum mode { M_OK, M_EIO, M_STALL };

struct rule {
	enum mode mode;
	long ms;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char prefix[PATH_MAX];
static struct rule r_sync, r_write;
static struct timespec last_read;
static unsigned long n_sync_failed, n_sync_stalled, n_write_failed, n_write_stalled;
static unsigned long journal_seq; /* W lines written */
static int journal_fd = -2;        /* -2: not opened yet, -1: no journal */

static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);

static long ms_since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000L + (b->tv_nsec - a->tv_nsec) / 1000000L;
}

static void parse_rule(struct rule *r, const char *rest)
{
	if (strncmp(rest, "eio", 3) == 0) {
		r->mode = M_EIO;
		r->ms = strtol(rest + 3, NULL, 10);
	} else if (strncmp(rest, "stall", 5) == 0) {
		r->mode = M_STALL;
		r->ms = strtol(rest + 5, NULL, 10);
	} else {
		r->mode = M_OK;
	}
}

/* Under `lock`: re-read the control file when it may have changed. */
static void reload(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (last_read.tv_sec && ms_since(&last_read, &now) < 20)
		return;
	last_read = now;
	prefix[0] = '\0';
	r_sync.mode = r_write.mode = M_OK;
	const char *path = getenv("SHOAL_FAULT_FILE");
	FILE *f = path ? fopen(path, "re") : NULL;
	if (!f)
		return;
	char line[PATH_MAX + 32];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "prefix ", 7) == 0)
			snprintf(prefix, sizeof prefix, "%s", line + 7);
		else if (strncmp(line, "fdatasync ", 10) == 0)
			parse_rule(&r_sync, line + 10);
		else if (strncmp(line, "pwrite ", 7) == 0)
			parse_rule(&r_write, line + 7);
	}
	fclose(f);
}

static void write_log(void)
{
	const char *path = getenv("SHOAL_FAULT_LOG");
	if (!path)
		return;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "fdatasync_failed %lu\nfdatasync_stalled %lu\npwrite_failed %lu\npwrite_stalled %lu\n",
		n_sync_failed, n_sync_stalled, n_write_failed, n_write_stalled);
	fclose(f);
	rename(tmp, path);
}

/* Under `lock`: is fd's file under the prefix?  Its path goes to path_out. */
static bool under_prefix(int fd, char *path_out, size_t len)
{
	if (!prefix[0])
		return false;
	char link[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path_out, len - 1);
	if (n <= 0)
		return false;
	path_out[n] = '\0';
	return strncmp(path_out, prefix, strlen(prefix)) == 0;
}

/* Under `lock`: the journal's descriptor, or -1. */
static dev_t journal_dev;
static ino_t journal_ino;

static int journal(void)
{
	if (journal_fd == -2) {
		const char *path = getenv("SHOAL_FAULT_JOURNAL");
		journal_fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
		struct stat st;
		if (journal_fd >= 0 && fstat(journal_fd, &st) == 0) {
			journal_dev = st.st_dev;
			journal_ino = st.st_ino;
		}
	}
	return journal_fd;
}

/* Under `lock`: is the journal's descriptor still the journal?  A daemon
 * that closed a descriptor twice could have handed its number to a file. */
static bool journal_same(void)
{
	struct stat st;
	return fstat(journal_fd, &st) == 0 && st.st_dev == journal_dev && st.st_ino == journal_ino;
}

/* What happens to one call on fd: the rule, and whether to journal it. */
struct verdict {
	struct rule rule;
	bool journal;
	unsigned long seq0;
	char path[PATH_MAX];
};

static void judge(int fd, const struct rule *which, struct verdict *v)
{
	v->rule.mode = M_OK;
	v->rule.ms = 0;
	v->journal = false;
	pthread_mutex_lock(&lock);
	reload();
	if ((which->mode != M_OK || journal() >= 0) && under_prefix(fd, v->path, sizeof v->path)) {
		v->rule = *which;
		v->journal = journal() >= 0;
		v->seq0 = journal_seq;
	}
	pthread_mutex_unlock(&lock);
}

static void journal_line(char kind, unsigned long seq0, off_t off, size_t len, const char *path)
{
	pthread_mutex_lock(&lock);
	char line[PATH_MAX + 96];
	unsigned long seq = kind == 'W' ? journal_seq++ : seq0;
	int n = snprintf(line, sizeof line, "%c %lu %lld %zu %s\n", kind, seq, (long long)off, len,
			 path);
	if (n > 0 && (size_t)n < sizeof line && journal() >= 0 &&
	    (!journal_same() || write(journal(), line, (size_t)n) != n)) {
		/* A broken journal stops rather than lies, and says so: the
		 * test must not read the missing syncs as lost data. */
		int e = journal_same() ? errno : EBADF;
		journal_fd = -1;
		char broken[PATH_MAX];
		snprintf(broken, sizeof broken, "%s.broken", getenv("SHOAL_FAULT_JOURNAL"));
		FILE *f = fopen(broken, "we");
		if (f) {
			fprintf(f, "journal write failed: %s\n", strerror(e));
			fclose(f);
		}
	}
	pthread_mutex_unlock(&lock);
}

static void count(unsigned long *c)
{
	pthread_mutex_lock(&lock);
	(*c)++;
	write_log();
	pthread_mutex_unlock(&lock);
}

static void stall(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int sync_common(int fd, int (*real)(int), bool faults)
{
	struct verdict v;
	const struct rule none = { M_OK, 0 };
	judge(fd, faults ? &r_sync : &none, &v);
	if (v.rule.mode != M_OK)
		stall(v.rule.ms);
	if (v.rule.mode == M_EIO) {
		/* As on Linux: the dirty pages may be dropped and the error is
		 * reported once, so what this sync was to cover is lost. */
		if (v.journal)
			journal_line('F', v.seq0, 0, 0, v.path);
		count(&n_sync_failed);
		errno = EIO;
		return -1;
	}
	if (v.rule.mode == M_STALL)
		count(&n_sync_stalled);
	int rc = real(fd);
	if (rc == 0 && v.journal)
		journal_line('S', v.seq0, 0, 0, v.path);
	return rc;
}

int fdatasync(int fd)
{
	if (!real_fdatasync)
		real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return sync_common(fd, real_fdatasync, true);
}

int fsync(int fd)
{
	if (!real_fsync)
		real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return sync_common(fd, real_fsync, false);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (!real_pwrite)
		real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	struct verdict v;
	judge(fd, &r_write, &v);
	if (v.rule.mode != M_OK)
		stall(v.rule.ms);
	if (v.rule.mode == M_EIO) {
		count(&n_write_failed);
		errno = EIO;
		return -1;
	}
	if (v.rule.mode == M_STALL)
		count(&n_write_stalled);
	ssize_t n = real_pwrite(fd, buf, len, off);
	if (n > 0 && v.journal)
		journal_line('W', 0, off, (size_t)n, v.path);
	return n;
}

/* glibc may route pwrite to pwrite64 under _FILE_OFFSET_BITS=64. */
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}
