/* util.h: small parsing and formatting helpers with no dependencies. */
#ifndef SHOAL_COMMON_UTIL_H
#define SHOAL_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Lower-case hex of `len` bytes into `out`, which must hold 2*len+1 bytes. */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* A file-selection pattern (`--only`, `--skip`, `shoal files --set`)
 * against a path inside a torrent: fnmatch(3) without flags (so '*' also
 * matches '/'), and a pattern without '/' also against the base name. */
bool path_glob_match(const char *pattern, const char *path);

/* An IPv4 address (4 bytes, network order) in RFC 1918 private space:
 * 10/8, 172.16/12 or 192.168/16. */
bool ipv4_rfc1918(const uint8_t a[4]);

/* Value 0..15 of one hex digit (either case), or -1. */
int hex_digit_value(int c);

/* Decode exactly 2*len hex digits (either case) from `in` into `out`.
 * Returns 0, or -EINVAL if `in` is not that many hex digits. */
int hex_decode(const char *in, size_t in_len, uint8_t *out, size_t len)
	__attribute__((warn_unused_result));

/* Parse a transfer rate: a whole number of bytes per second with an optional
 * binary suffix K, M or G (KiB/s, MiB/s, GiB/s), e.g. "500K", "2M".  "0" means
 * unlimited.  Returns 0 or -EINVAL. */
int parse_rate(const char *s, uint64_t *bytes_per_s_out) __attribute__((warn_unused_result));

/* Format a byte count as "1.5 MiB" into `out` (at least 16 bytes). */
void format_bytes(uint64_t n, char *out, size_t out_len);

/* Parse a decimal port 0..65535.  Returns 0 or -EINVAL. */
int parse_port(const char *s, uint16_t *port_out) __attribute__((warn_unused_result));

/* Split "host:port", "[v6]:port" into host (without brackets) and port.
 * Returns 0, -EINVAL for bad syntax, -ENAMETOOLONG if host does not fit. */
int parse_hostport(const char *s, char *host_out, size_t host_len, uint16_t *port_out)
	__attribute__((warn_unused_result));

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

/* Create `path` and missing parents with `mode` (like mkdir -p).
 * Returns 0 or a negative errno. */
int mkdir_p(const char *path, unsigned mode) __attribute__((warn_unused_result));

/* Copy `in` to `out` (at most out_len-1 bytes, NUL-terminated), writing each
 * byte that is not part of a valid UTF-8 sequence as "\xNN", so the text
 * can go into JSON and terminals. */
void utf8_escape_invalid(const char *in, char *out, size_t out_len);

/* Write `len` bytes to `path` atomically: a temporary file beside it
 * (created with `mode`, never following a symlink), fsync, rename.
 * Returns 0 or a negative errno; on failure `path` is untouched. */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
	__attribute__((warn_unused_result));

/* Create `path` (0600, O_EXCL, never through a symlink) holding `secret`
 * as lowercase hex and a newline, fsync'ed; when `uid` is not (uid_t)-1
 * the file is first given to uid:gid.  Never replaces a file: returns 0,
 * -EEXIST when `path` exists, or another negative errno (the new file
 * removed).  For API and metrics tokens, from the daemon and the CLI. */
#define SECRET_HEX_MAX 64
int write_secret_hex_file(const char *path, const uint8_t *secret, size_t len, uid_t uid,
			  gid_t gid) __attribute__((warn_unused_result));

/* The data directory when none is given: $SHOAL_DATA_DIR, else
 * $XDG_DATA_HOME/shoal, else $HOME/.local/share/shoal (XDG base directory
 * convention).  Returns 0, -ENOENT when neither XDG_DATA_HOME nor HOME is set,
 * -ENAMETOOLONG when it does not fit in `out`. */
int default_data_dir(char *out, size_t out_len) __attribute__((warn_unused_result));

#endif
