/* util.c: small parsing and formatting helpers. */
#include "config.h"

#include "common/util.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t in_len, uint8_t *out, size_t len)
{
	if (in_len != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit_value(in[2 * i]), lo = hex_digit_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int parse_rate(const char *s, uint64_t *bytes_per_s_out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	uint64_t mult = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1024;
		end++;
		break;
	case 'm': case 'M':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g': case 'G':
		mult = 1024ULL * 1024 * 1024;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end == 'i' || *end == 'I')
		end++; /* accept "KiB" style */
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > UINT64_MAX / mult)
		return -EINVAL;
	*bytes_per_s_out = v * mult;
	return 0;
}

void format_bytes(uint64_t n, char *out, size_t out_len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < ARRAY_LEN(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, out_len, "%" PRIu64 " B", n);
	else
		snprintf(out, out_len, "%.1f %s", v, units[u]);
}

int parse_port(const char *s, uint16_t *port_out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > 65535)
		return -EINVAL;
	*port_out = (uint16_t)v;
	return 0;
}

int parse_hostport(const char *s, char *host_out, size_t host_len, uint16_t *port_out)
{
	const char *host, *colon;
	size_t hlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL; /* bare IPv6 needs brackets */
		host = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0)
		return -EINVAL;
	if (hlen >= host_len)
		return -ENAMETOOLONG;
	uint16_t port;
	if (parse_port(colon + 1, &port) || port == 0)
		return -EINVAL;
	memcpy(host_out, host, hlen);
	host_out[hlen] = '\0';
	*port_out = port;
	return 0;
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mkdir_p(const char *path, unsigned mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(tmp, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int default_data_dir(char *out, size_t out_len)
{
	const char *env = getenv("SHOAL_DATA_DIR");
	int n;
	if (env && *env) {
		n = snprintf(out, out_len, "%s", env);
	} else if ((env = getenv("XDG_DATA_HOME")) && *env == '/') {
		n = snprintf(out, out_len, "%s/shoal", env);
	} else if ((env = getenv("HOME")) && *env) {
		n = snprintf(out, out_len, "%s/.local/share/shoal", env);
	} else {
		return -ENOENT;
	}
	if (n < 0 || (size_t)n >= out_len)
		return -ENAMETOOLONG;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void utf8_escape_invalid(const char *in, char *out, size_t out_len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	if (out_len == 0)
		return;
	while (*p) {
		size_t n = utf8_seq_len(p);
		if (n == 0) {
			if (o + 4 >= out_len)
				break;
			snprintf(out + o, out_len - o, "\\x%02x", *p);
			o += 4;
			p++;
			continue;
		}
		if (o + n >= out_len)
			break;
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
}

/* Write all `len` bytes to `fd`, then fsync.  Returns 0 or a negative errno. */
static int write_all_synced(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return fsync(fd) != 0 ? -errno : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0)
		return -errno;
	int rc = write_all_synced(fd, data, len);
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int write_secret_hex_file(const char *path, const uint8_t *secret, size_t len, uid_t uid,
			  gid_t gid)
{
	char hex[2 * SECRET_HEX_MAX + 1];
	if (len > SECRET_HEX_MAX)
		return -EINVAL;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0)
		rc = -errno;
	if (rc == 0) {
		hex_encode(secret, len, hex);
		hex[2 * len] = '\n';
		rc = write_all_synced(fd, hex, 2 * len + 1);
		memset(hex, 0, sizeof hex);
	}
	close(fd);
	if (rc != 0)
		unlink(path);
	return rc;
}

bool path_glob_match(const char *pattern, const char *path)
{
	if (fnmatch(pattern, path, 0) == 0)
		return true;
	const char *base = strrchr(path, '/');
	return !strchr(pattern, '/') && base && fnmatch(pattern, base + 1, 0) == 0;
}

bool ipv4_rfc1918(const uint8_t a[4])
{
	return a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168);
}
