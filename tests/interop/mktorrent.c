/* mktorrent.c: test tool that builds a v2 .torrent with shoal's own merkle and
 * metainfo code (and parses one), so interop tests can compare with libtorrent.
 *
 *   mktorrent create PATH PIECE_LENGTH OUT.torrent
 *       PATH is a folder (multi-file torrent named after it) or a file.
 *       Prints the info-hash in hex, then a magnet link, one per line.
 *   mktorrent parse FILE.torrent
 *       Prints the info-hash, "layers=all|partial", then "size<TAB>path" lines.
 *
 * Files are hashed piece by piece straight from read(): memory is the piece
 * layer of one file, never its blocks. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/sha256.h"
#include "common/util.h"
#include "transfer/magnet.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"

struct file_list {
	struct metainfo_file_in *v;
	char **abs; /* absolute/opened path of each file */
	size_t n, cap;
};

static int list_add(struct file_list *l, const char *rel, const char *abs, uint64_t size)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct metainfo_file_in *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		char **a = realloc(l->abs, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		l->abs = a;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof l->v[l->n]);
	l->v[l->n].path = strdup(rel);
	l->abs[l->n] = strdup(abs);
	if (!l->v[l->n].path || !l->abs[l->n])
		return -ENOMEM;
	l->v[l->n].size = size;
	l->n++;
	return 0;
}

/* Collect regular files under `dir` (paths relative to the top in `rel`). */
static int walk(struct file_list *l, const char *dir, const char *rel, unsigned depth)
{
	if (depth > METAINFO_MAX_DEPTH)
		return -ELOOP;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char abs[8192], r[8192];
		snprintf(abs, sizeof abs, "%s/%s", dir, e->d_name);
		snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		struct stat st;
		if (lstat(abs, &st) != 0) {
			rc = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode))
			rc = walk(l, abs, r, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = list_add(l, r, abs, (uint64_t)st.st_size);
	}
	closedir(d);
	return rc;
}

/* Hash one file from disk into its pieces root and (malloc'd) piece layer. */
static int hash_file(struct sha256_ctx *ctx, const char *path, uint64_t size, uint64_t pl,
		     uint8_t root[32], uint8_t **layer_out)
{
	*layer_out = NULL;
	if (size == 0)
		return 0;
	uint64_t pieces = merkle_piece_count(size, pl);
	uint8_t *layer = malloc(pieces * 32);
	static uint8_t chunk[1 << 16];
	int fd = open(path, O_RDONLY);
	if (!layer || fd < 0) {
		free(layer);
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	int rc = 0;
	uint64_t leaves = merkle_piece_leaves(size, pl);
	for (uint64_t k = 0; k < pieces && rc == 0; k++) {
		struct merkle_piece mp;
		uint64_t left = merkle_piece_size(size, pl, k);
		rc = merkle_piece_init(&mp, ctx, leaves);
		while (rc == 0 && left > 0) {
			size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
			ssize_t got = read(fd, chunk, want);
			if (got <= 0) {
				rc = -EIO;
				break;
			}
			rc = merkle_piece_update(&mp, chunk, (size_t)got);
			left -= (uint64_t)got;
		}
		if (rc == 0)
			rc = merkle_piece_final(&mp, layer + k * 32);
	}
	close(fd);
	if (rc == 0)
		rc = merkle_layer_root(ctx, layer, pieces, pl, root);
	if (rc) {
		free(layer);
		return rc;
	}
	*layer_out = layer;
	return 0;
}

static int cmd_create(const char *path, const char *pl_s, const char *out_path)
{
	uint64_t pl = strtoull(pl_s, NULL, 10);
	struct file_list l = { 0 };
	struct sha256_ctx *ctx = sha256_new();
	struct buf t;
	int rc = 0;
	buf_init(&t, METAINFO_MAX_TORRENT_SIZE);

	char *dup = strdup(path);
	size_t plen = strlen(dup);
	while (plen > 1 && dup[plen - 1] == '/')
		dup[--plen] = '\0';
	const char *name = strrchr(dup, '/') ? strrchr(dup, '/') + 1 : dup;
	struct stat st;
	if (!ctx || stat(dup, &st) != 0) {
		rc = -EIO;
		goto done;
	}
	if (S_ISDIR(st.st_mode))
		rc = walk(&l, dup, "", 1);
	else
		rc = list_add(&l, name, dup, (uint64_t)st.st_size); /* single file: path = name */
	if (rc)
		goto done;
	for (size_t k = 0; k < l.n && rc == 0; k++) {
		uint8_t *layer = NULL;
		rc = hash_file(ctx, l.abs[k], l.v[k].size, pl, l.v[k].root, &layer);
		l.v[k].layer = layer;
	}
	if (rc)
		goto done;
	uint8_t ih[32];
	rc = metainfo_build_torrent(name, pl, METAINFO_FORMAT_V2, l.v, l.n, "shoal mktorrent", 0, &t, ih);
	if (rc)
		goto done;
	FILE *f = fopen(out_path, "wb");
	if (!f || fwrite(t.data, 1, t.len, f) != t.len) {
		if (f)
			fclose(f);
		rc = -EIO;
		goto done;
	}
	if (fclose(f) != 0) {
		rc = -EIO;
		goto done;
	}
	char hex[65];
	hex_encode(ih, 32, hex);
	printf("%s\n", hex);
	struct buf m;
	buf_init(&m, MAGNET_MAX_LEN);
	static struct magnet ml;
	ml.has_v2 = true;
	memcpy(ml.info_hash, ih, 32);
	ml.has_name = snprintf(ml.name, sizeof ml.name, "%s", name) < (int)sizeof ml.name;
	rc = magnet_format(&ml, &m);
	if (rc == 0)
		printf("%.*s\n", (int)m.len, (const char *)m.data);
	buf_destroy(&m);
done:
	if (rc)
		fprintf(stderr, "mktorrent: %s\n", metainfo_strerror(rc));
	for (size_t k = 0; k < l.n; k++) {
		free((char *)l.v[k].path);
		free((uint8_t *)l.v[k].layer);
		free(l.abs[k]);
	}
	free(l.v);
	free(l.abs);
	free(dup);
	buf_destroy(&t);
	sha256_free(ctx);
	return rc ? 1 : 0;
}

static int cmd_parse(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	struct buf b;
	buf_init(&b, METAINFO_MAX_TORRENT_SIZE);
	uint8_t tmp[65536];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
		rc = buf_append(&b, tmp, n);
	fclose(f);
	struct metainfo mi;
	if (rc == 0)
		rc = metainfo_parse_torrent(&mi, b.data, b.data + b.len);
	buf_destroy(&b);
	if (rc) {
		fprintf(stderr, "mktorrent: %s: %s\n", path, metainfo_strerror(rc));
		return 1;
	}
	char hex[65];
	hex_encode(mi.info_hash, 32, hex);
	printf("%s\nlayers=%s\n", hex, mi.all_layers ? "all" : "partial");
	for (size_t k = 0; k < mi.file_count; k++)
		printf("%" PRIu64 "\t%s\n", mi.files[k].size, mi.files[k].path);
	metainfo_destroy(&mi);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "create") == 0)
		return cmd_create(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "parse") == 0)
		return cmd_parse(argv[2]);
	fprintf(stderr, "usage: mktorrent create PATH PIECE_LENGTH OUT.torrent\n"
			"       mktorrent parse FILE.torrent\n");
	return 2;
}
