/* test_metainfo.c: BEP 52 info dict / .torrent building and sanitising
 * parsing (transfer/metainfo.h). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/sha1.h"
#include "common/sha256.h"
#include "transfer/merkle.h"
#include "transfer/metainfo.h"

#define B XFER_BLOCK_SIZE
#define H METAINFO_HASH_LEN
#define R32 "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
#define INFO(tree) "d9:file tree" tree "12:meta versioni2e4:name1:x12:piece lengthi16384ee"
#define LEAF(len) "d0:d6:lengthi" #len "e11:pieces root32:" R32 "ee"
#define EMPTY_LEAF "d0:d6:lengthi0eee"

static int parse_info_str(struct metainfo *mi, const char *s)
{
	return metainfo_parse_info(mi, (const uint8_t *)s, (const uint8_t *)s + strlen(s));
}

/* Expect a bare info dict to be refused with `want`, leaving nothing owned. */
static void expect_info_err(const char *s, int want)
{
	struct metainfo mi;
	int rc = parse_info_str(&mi, s);
	if (rc != want)
		fprintf(stderr, "input %s: got %d (%s), want %d (%s)\n", s, rc, metainfo_strerror(rc),
			want, metainfo_strerror(want));
	assert_int_equal(rc, want);
	assert_null(mi.files);
	assert_null(mi.name);
	assert_null(mi.info);
}

static uint8_t *make_data(size_t n, uint32_t seed)
{
	uint8_t *d = malloc(n ? n : 1);
	assert_non_null(d);
	for (size_t k = 0; k < n; k++) {
		seed = seed * 1103515245u + 12345u;
		d[k] = (uint8_t)(seed >> 16);
	}
	return d;
}

static void test_piece_length_rule(void **state)
{
	(void)state;
	assert_int_equal(metainfo_pick_piece_length(0), 16384);
	assert_int_equal(metainfo_pick_piece_length(1), 16384);
	assert_int_equal(metainfo_pick_piece_length(32u << 20), 16384);
	assert_int_equal(metainfo_pick_piece_length((32u << 20) + 1), 32768);
	assert_int_equal(metainfo_pick_piece_length(1u << 30), 512u << 10); /* 2048 pieces */
	assert_int_equal(metainfo_pick_piece_length((1u << 30) + 1), 1u << 20);
	assert_int_equal(metainfo_pick_piece_length(32ull << 30), 16u << 20);
	assert_int_equal(metainfo_pick_piece_length(1ull << 40), 16u << 20); /* capped */
	/* Between the floor and the cap the count lands in (1024, 2048]. */
	for (uint64_t size = 40u << 20; size < (30ull << 30); size = size * 3 + 12345) {
		uint64_t pl = metainfo_pick_piece_length(size);
		uint64_t pieces = (size + pl - 1) / pl;
		assert_true(pieces > 1024 && pieces <= 2048);
		assert_true(merkle_piece_length_ok(pl));
	}
}

static void test_component_ok(void **state)
{
	(void)state;
#define OK(s) assert_true(metainfo_component_ok((const uint8_t *)(s), sizeof(s) - 1))
#define BAD(s) assert_false(metainfo_component_ok((const uint8_t *)(s), sizeof(s) - 1))
	OK("a");
	OK("...");
	OK(".hidden");
	OK("file name.txt");
	OK("\xc3\xa9t\xc3\xa9");       /* été */
	OK("\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
	OK("\xf0\x9f\x98\x80");         /* U+1F600 */
	OK("\xf4\x8f\xbf\xbf");         /* U+10FFFF */
	BAD("");
	BAD(".");
	BAD("..");
	BAD("a/b");
	BAD("/");
	BAD("a\\b");
	BAD("a\0b");
	BAD("\xc0\xaf");         /* overlong '/' */
	BAD("\xe0\x80\xaf");     /* overlong '/' */
	BAD("\xc1\xbf");         /* overlong */
	BAD("\xed\xa0\x80");     /* surrogate U+D800 */
	BAD("\xf4\x90\x80\x80"); /* U+110000 */
	BAD("\xc3");             /* truncated */
	BAD("a\xe6\x97");        /* truncated */
	BAD("\x80");             /* lone continuation */
	BAD("\xf8\x88\x80\x80\x80");
	BAD("\xff");
#undef OK
#undef BAD
	char name[257];
	memset(name, 'n', sizeof name);
	assert_true(metainfo_component_ok((const uint8_t *)name, 255));
	assert_false(metainfo_component_ok((const uint8_t *)name, 256));
}

/* The exact bytes of a small info dict, written out by hand. */
static void test_build_info_exact(void **state)
{
	(void)state;
	struct metainfo_file_in files[3] = {
		{ .path = "sub/b.bin", .size = 40000 },
		{ .path = "a.txt", .size = 5 },
		{ .path = "empty", .size = 0 },
	};
	memset(files[0].root, 'A', H);
	memset(files[1].root, 'C', H);
	memset(files[2].root, 'Z', H); /* ignored: empty files have no root */
	const char *want =
		"d9:file treed"
		"5:a.txtd0:d6:lengthi5e11:pieces root32:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCee"
		"5:emptyd0:d6:lengthi0eee"
		"3:subd5:b.bind0:d6:lengthi40000e11:pieces root32:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAeee"
		"e12:meta versioni2e4:name1:d12:piece lengthi16384ee";
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_append(&b, "prefix", 6), 0);
	uint8_t ih[H], want_ih[H];
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_V2, files, 3, &b, ih), 0);
	assert_int_equal(b.len - 6, strlen(want));
	assert_memory_equal(b.data + 6, want, strlen(want));
	assert_int_equal(sha256_digest(want, strlen(want), want_ih), 0);
	assert_memory_equal(ih, want_ih, H); /* only the appended bytes are hashed */

	/* Parsing it back gives the files in tree order with piece numbering. */
	struct metainfo mi;
	assert_int_equal(metainfo_parse_info(&mi, b.data + 6, b.data + b.len), 0);
	assert_string_equal(mi.name, "d");
	assert_int_equal(mi.piece_length, 16384);
	assert_int_equal(mi.file_count, 3);
	assert_string_equal(mi.files[0].path, "a.txt");
	assert_string_equal(mi.files[1].path, "empty");
	assert_string_equal(mi.files[2].path, "sub/b.bin");
	assert_int_equal(mi.files[0].first_piece, 0);
	assert_int_equal(mi.files[0].piece_count, 1);
	assert_int_equal(mi.files[1].piece_count, 0);
	assert_false(mi.files[1].has_root);
	assert_null(mi.files[1].layer);
	assert_int_equal(mi.files[2].first_piece, 1);
	assert_int_equal(mi.files[2].piece_count, 3);
	assert_int_equal(mi.total_pieces, 4);
	assert_int_equal(mi.total_size, 40005);
	assert_memory_equal(mi.info_hash, want_ih, H);
	assert_int_equal(mi.info_len, strlen(want));
	assert_memory_equal(mi.info, want, mi.info_len);
	assert_ptr_equal(mi.files[0].layer, mi.files[0].root); /* one piece: its own layer */
	assert_null(mi.files[2].layer);
	assert_false(mi.all_layers);
	assert_int_equal(metainfo_check_hash(&mi, want_ih), 0);
	uint8_t other[H];
	memcpy(other, want_ih, H);
	other[31] ^= 1;
	assert_int_equal(metainfo_check_hash(&mi, other), METAINFO_E_HASH_MISMATCH);
	metainfo_destroy(&mi);
	buf_destroy(&b);
}

/* A hybrid (BEP 52 upgrade path, BEP 47 pad files), byte for byte: the v1
 * "files" in file tree order with a pad after every file that does not end
 * on a piece boundary except the last, "pieces" in the same order, and both
 * info-hashes over the same bytes. */
static void test_build_hybrid_exact(void **state)
{
	(void)state;
	uint8_t v1a[20], v1b[60];
	memset(v1a, 'a', sizeof v1a);
	for (int i = 0; i < 3; i++)
		memset(v1b + 20 * i, '1' + i, 20);
	struct metainfo_file_in files[3] = {
		{ .path = "sub/b.bin", .size = 40000, .v1_pieces = v1b },
		{ .path = "a.txt", .size = 5, .v1_pieces = v1a },
		{ .path = "empty", .size = 0 },
	};
	memset(files[0].root, 'A', H);
	memset(files[1].root, 'C', H);
	const char *head =
		"d9:file treed"
		"5:a.txtd0:d6:lengthi5e11:pieces root32:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCee"
		"5:emptyd0:d6:lengthi0eee"
		"3:subd5:b.bind0:d6:lengthi40000e11:pieces root32:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAeee"
		"e"
		"5:filesl"
		"d6:lengthi5e4:pathl5:a.txtee"
		"d4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379ee"
		"d6:lengthi0e4:pathl5:emptyee"
		"d6:lengthi40000e4:pathl3:sub5:b.binee"
		"d4:attr1:p6:lengthi9152e4:pathl4:.pad4:9152ee"
		"e"
		"12:meta versioni2e4:name1:d12:piece lengthi16384e"
		"6:pieces80:";
	char want[1024];
	size_t hl = strlen(head);
	memcpy(want, head, hl);
	memcpy(want + hl, v1a, 20);
	memcpy(want + hl + 20, v1b, 60);
	want[hl + 80] = 'e';
	size_t wl = hl + 81;

	struct buf b;
	buf_init(&b, 1 << 16);
	uint8_t ih[H], want_ih[H], want_v1[20];
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_HYBRID, files, 3, &b, ih), 0);
	assert_int_equal(b.len, wl);
	assert_memory_equal(b.data, want, wl);
	assert_int_equal(sha256_digest(want, wl, want_ih), 0);
	assert_memory_equal(ih, want_ih, H);
	assert_int_equal(sha1_digest(want, wl, want_v1), 0);

	struct metainfo mi;
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), 0);
	assert_true(mi.has_v1);
	assert_memory_equal(mi.info_hash, want_ih, H);
	assert_memory_equal(mi.info_hash_v1, want_v1, 20);
	assert_int_equal(mi.file_count, 3); /* pad files are not files of the swarm */
	assert_int_equal(mi.total_pieces, 4);
	metainfo_destroy(&mi);

	/* A HYBRID file without its SHA-1s is a bad argument; nothing written. */
	b.len = 0;
	files[1].v1_pieces = NULL;
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_HYBRID, files, 3, &b, NULL),
			 -EINVAL);
	assert_int_equal(b.len, 0);
	files[1].v1_pieces = v1a;
	assert_int_equal(metainfo_build_info("d", 16384, (enum metainfo_format)7, files, 3, &b, NULL),
			 -EINVAL);

	/* The same files as V2 parse without v1. */
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_V2, files, 3, &b, NULL), 0);
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), 0);
	assert_false(mi.has_v1);
	metainfo_destroy(&mi);
	buf_destroy(&b);
}

/* A single file: v1 "length" instead of "files", no pad. */
static void test_build_hybrid_single(void **state)
{
	(void)state;
	uint8_t v1[40];
	memset(v1, 'x', 20);
	memset(v1 + 20, 'y', 20);
	struct metainfo_file_in f = { .path = "f", .size = 20000, .v1_pieces = v1 };
	memset(f.root, 'R', H);
	const char *head = "d9:file treed1:fd0:d6:lengthi20000e11:pieces root32:" R32 "eee"
			   "6:lengthi20000e"
			   "12:meta versioni2e4:name1:f12:piece lengthi16384e"
			   "6:pieces40:";
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(metainfo_build_info("f", 16384, METAINFO_FORMAT_HYBRID, &f, 1, &b, NULL), 0);
	size_t hl = strlen(head);
	assert_int_equal(b.len, hl + 41);
	assert_memory_equal(b.data, head, hl);
	assert_memory_equal(b.data + hl, v1, 40);
	assert_int_equal(b.data[hl + 40], 'e');
	buf_destroy(&b);
}

static void test_v1_pad(void **state)
{
	(void)state;
	assert_int_equal(metainfo_v1_pad(5, 16384, false), 16379);
	assert_int_equal(metainfo_v1_pad(5, 16384, true), 0); /* a single file has none */
	assert_int_equal(metainfo_v1_pad(0, 16384, false), 0);
	assert_int_equal(metainfo_v1_pad(32768, 16384, false), 0);
	assert_int_equal(metainfo_v1_pad(32769, 16384, false), 16383);
}

/* Tree order is per path component: folder "a" sorts before file "a-c"
 * although '/' > '-' as bytes. */
static void test_build_order(void **state)
{
	(void)state;
	struct metainfo_file_in files[4] = {
		{ .path = "a-c", .size = 0 },
		{ .path = "a/z", .size = 0 },
		{ .path = "a/b/c", .size = 0 },
		{ .path = "B", .size = 0 },
	};
	const char *want = "d9:file treed"
			   "1:B" EMPTY_LEAF
			   "1:ad1:bd1:c" EMPTY_LEAF "e1:z" EMPTY_LEAF "e"
			   "3:a-c" EMPTY_LEAF
			   "e12:meta versioni2e4:name4:root12:piece lengthi32768ee";
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(metainfo_build_info("root", 32768, METAINFO_FORMAT_V2, files, 4, &b, NULL), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	struct metainfo mi;
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), 0);
	assert_string_equal(mi.files[0].path, "B");
	assert_string_equal(mi.files[1].path, "a/b/c");
	assert_string_equal(mi.files[2].path, "a/z");
	assert_string_equal(mi.files[3].path, "a-c");
	assert_int_equal(mi.total_size, 0);
	assert_true(mi.all_layers);
	metainfo_destroy(&mi);
	buf_destroy(&b);
}

static void test_build_rejects(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	struct metainfo_file_in f = { .path = "ok", .size = 1 };
	static const char *const bad_paths[] = { "/abs", "a//b", "../x", "a/../b", "a/./b",
						 "a/", "", "a\\b", "x/\xc0\xaf" };
	for (size_t k = 0; k < sizeof bad_paths / sizeof bad_paths[0]; k++) {
		f.path = bad_paths[k];
		assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_PATH);
	}
	f.path = "ok";
	assert_int_equal(metainfo_build_info("..", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_NAME);
	assert_int_equal(metainfo_build_info("a/b", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_NAME);
	assert_int_equal(metainfo_build_info("n", 8192, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_PIECE_LENGTH);
	assert_int_equal(metainfo_build_info("n", 3 * 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_PIECE_LENGTH);
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 0, &b, NULL), -EINVAL);
	f.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_SIZE);
	assert_int_equal(b.len, 0);

	struct metainfo_file_in two[2] = { { .path = "x", .size = 1 }, { .path = "x", .size = 2 } };
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, two, 2, &b, NULL), METAINFO_E_DUPLICATE);
	two[1].path = "x/y";
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, two, 2, &b, NULL), METAINFO_E_DUPLICATE);
	two[0].path = "x/y/z";
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, two, 2, &b, NULL), METAINFO_E_DUPLICATE);
	/* Sizes that overflow together. */
	two[0] = (struct metainfo_file_in){ .path = "p", .size = (uint64_t)INT64_MAX };
	two[1] = (struct metainfo_file_in){ .path = "q", .size = 1 };
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, two, 2, &b, NULL), METAINFO_E_SIZE);

	char deep[2 * (METAINFO_MAX_DEPTH + 1)];
	for (size_t k = 0; k <= METAINFO_MAX_DEPTH; k++) {
		deep[2 * k] = 'd';
		deep[2 * k + 1] = '/';
	}
	deep[2 * METAINFO_MAX_DEPTH + 1] = '\0'; /* 33 components */
	f = (struct metainfo_file_in){ .path = deep, .size = 0 };
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), METAINFO_E_TOO_DEEP);
	deep[2 * METAINFO_MAX_DEPTH - 1] = '\0'; /* 32 components */
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 1, &b, NULL), 0);

	/* A bounded output buffer: refused, and left as it was. */
	struct buf small;
	buf_init(&small, 40);
	assert_int_equal(buf_append(&small, "keep", 4), 0);
	f = (struct metainfo_file_in){ .path = "a-long-file-name.bin", .size = 3 };
	assert_int_equal(metainfo_build_info("n", 16384, METAINFO_FORMAT_V2, &f, 1, &small, NULL), -EMSGSIZE);
	assert_int_equal(small.len, 4);
	buf_destroy(&small);
	buf_destroy(&b);
}

struct fixture {
	const char *path;
	size_t size;
};

/* Hash fixture files with merkle, build a .torrent, parse it back. */
static void test_torrent_roundtrip(void **state)
{
	(void)state;
	const uint64_t pl = 2 * B;
	static const struct fixture fx[] = {
		{ "one-byte", 1 },       { "dir/block", B },         { "dir/piece", 2 * B },
		{ "dir/sub/big", 5 * B + 17 }, { "empty", 0 },       { "twin-a", 3 * B },
		{ "twin-b", 3 * B },     { "\xc3\xa9t\xc3\xa9.txt", 100 },
	};
	enum { N = sizeof fx / sizeof fx[0] };
	struct sha256_ctx *ctx = sha256_new();
	assert_non_null(ctx);
	struct metainfo_file_in in[N];
	uint8_t *data[N], *layers[N];
	for (size_t k = 0; k < N; k++) {
		/* twin-a and twin-b have identical content (one shared layer entry). */
		data[k] = make_data(fx[k].size, strncmp(fx[k].path, "twin", 4) == 0 ? 99 : (uint32_t)k);
		uint64_t pieces = merkle_piece_count(fx[k].size, pl);
		layers[k] = malloc(pieces ? pieces * H : 1);
		in[k] = (struct metainfo_file_in){ .path = fx[k].path, .size = fx[k].size, .layer = layers[k] };
		if (fx[k].size)
			assert_int_equal(merkle_file_hash(ctx, data[k], fx[k].size, pl, layers[k], in[k].root), 0);
	}
	struct buf t, info;
	buf_init(&t, 1 << 20);
	buf_init(&info, 1 << 20);
	uint8_t ih[H], ih2[H];
	assert_int_equal(metainfo_build_torrent("share", pl, METAINFO_FORMAT_V2, in, N, "shoal test", 1700000000, &t, ih), 0);
	assert_int_equal(metainfo_build_info("share", pl, METAINFO_FORMAT_V2, in, N, &info, ih2), 0);
	assert_memory_equal(ih, ih2, H);
	/* The top level: created by, creation date, info, piece layers. */
	const char *head = "d10:created by10:shoal test13:creation datei1700000000e4:info";
	assert_memory_equal(t.data, head, strlen(head));
	assert_memory_equal(t.data + strlen(head), info.data, info.len);

	struct metainfo mi;
	assert_int_equal(metainfo_parse_torrent(&mi, t.data, t.data + t.len), 0);
	assert_memory_equal(mi.info_hash, ih, H);
	assert_int_equal(mi.info_len, info.len);
	assert_memory_equal(mi.info, info.data, info.len);
	assert_true(mi.all_layers);
	assert_int_equal(mi.file_count, N);
	static const char *const order[] = { "dir/block", "dir/piece", "dir/sub/big", "empty",
					     "one-byte", "twin-a", "twin-b", "\xc3\xa9t\xc3\xa9.txt" };
	uint32_t next_piece = 0;
	uint64_t total = 0;
	for (size_t k = 0; k < N; k++) {
		const struct metainfo_file *f = &mi.files[k];
		assert_string_equal(f->path, order[k]);
		size_t src = 0;
		while (strcmp(fx[src].path, f->path) != 0)
			src++;
		assert_int_equal(f->size, fx[src].size);
		assert_int_equal(f->first_piece, next_piece);
		assert_int_equal(f->piece_count, merkle_piece_count(fx[src].size, pl));
		next_piece += f->piece_count;
		total += f->size;
		if (f->size == 0) {
			assert_null(f->layer);
			continue;
		}
		assert_memory_equal(f->root, in[src].root, H);
		assert_non_null(f->layer);
		for (uint32_t p = 0; p < f->piece_count; p++)
			assert_int_equal(merkle_piece_verify(ctx, f->layer, f->size, pl, p, data[src] + p * pl,
							     (size_t)merkle_piece_size(f->size, pl, p)),
					 0);
	}
	assert_int_equal(mi.total_pieces, next_piece);
	assert_int_equal(mi.total_size, total);
	/* A pieces root names its file; twins share one, the first answers. */
	size_t at = 99;
	assert_ptr_equal(metainfo_file_by_root(&mi, in[3].root, &at), &mi.files[2]); /* dir/sub/big */
	assert_int_equal(at, 2);
	assert_ptr_equal(metainfo_file_by_root(&mi, in[6].root, &at), &mi.files[5]); /* twin-b: twin-a's */
	assert_int_equal(at, 5);
	assert_ptr_equal(metainfo_file_by_root(&mi, in[0].root, NULL), &mi.files[4]); /* one-byte */
	uint8_t nobody[H] = { 0 };
	at = 99;
	assert_null(metainfo_file_by_root(&mi, nobody, &at)); /* the empty file has no root */
	assert_int_equal(at, 99);
	assert_null(metainfo_file_by_root(NULL, in[3].root, NULL));
	metainfo_destroy(&mi);
	assert_null(mi.files);

	/* The bare info dict parses to the same hash, without layers for big files. */
	assert_int_equal(metainfo_parse_info(&mi, info.data, info.data + info.len), 0);
	assert_memory_equal(mi.info_hash, ih, H);
	assert_false(mi.all_layers);
	size_t big = 2; /* "dir/sub/big" */
	assert_null(mi.files[big].layer);
	size_t src = 3;
	size_t layer_len = (size_t)mi.files[big].piece_count * H;
	layers[src][5] ^= 1;
	assert_int_equal(metainfo_set_layer(&mi, big, layers[src], layer_len), METAINFO_E_LAYER_MISMATCH);
	layers[src][5] ^= 1;
	assert_int_equal(metainfo_set_layer(&mi, big, layers[src], layer_len - H), -EINVAL);
	assert_int_equal(metainfo_set_layer(&mi, 3, layers[src], layer_len), -EINVAL); /* empty file */
	assert_int_equal(metainfo_set_layer(&mi, N, layers[src], layer_len), -EINVAL);
	assert_int_equal(metainfo_set_layer(&mi, big, layers[src], layer_len), 0);
	assert_non_null(mi.files[big].layer);
	assert_false(mi.all_layers); /* twins still unknown */
	assert_int_equal(metainfo_set_layer(&mi, 5, layers[5], 2 * H), 0);
	assert_int_equal(metainfo_set_layer(&mi, 6, layers[6], 2 * H), 0);
	assert_true(mi.all_layers);
	metainfo_destroy(&mi);

	/* Building refuses a missing or wrong layer. */
	in[3].layer = NULL;
	assert_int_equal(metainfo_build_torrent("share", pl, METAINFO_FORMAT_V2, in, N, NULL, 0, &t, NULL), METAINFO_E_LAYER);
	in[3].layer = layers[3];
	layers[3][0] ^= 1;
	size_t before = t.len;
	assert_int_equal(metainfo_build_torrent("share", pl, METAINFO_FORMAT_V2, in, N, NULL, 0, &t, NULL),
			 METAINFO_E_LAYER_MISMATCH);
	assert_int_equal(t.len, before);
	layers[3][0] ^= 1;

	for (size_t k = 0; k < N; k++) {
		free(data[k]);
		free(layers[k]);
	}
	buf_destroy(&t);
	buf_destroy(&info);
	sha256_free(ctx);
}

/* A tampered, truncated or mis-keyed layer in a .torrent is refused. */
static void test_torrent_bad_layers(void **state)
{
	(void)state;
	const uint64_t pl = B;
	size_t n = 3 * B + 1;
	uint8_t *d = make_data(n, 7), layer[4 * H];
	struct sha256_ctx *ctx = sha256_new();
	struct metainfo_file_in f = { .path = "f", .size = n, .layer = layer };
	assert_int_equal(merkle_file_hash(ctx, d, n, pl, layer, f.root), 0);
	struct buf t;
	buf_init(&t, 1 << 16);
	assert_int_equal(metainfo_build_torrent("f", pl, METAINFO_FORMAT_V2, &f, 1, NULL, 0, &t, NULL), 0);
	struct metainfo mi;
	assert_int_equal(metainfo_parse_torrent(&mi, t.data, t.data + t.len), 0);
	assert_true(mi.all_layers);
	metainfo_destroy(&mi);

	/* Flip one byte in the layer value (the last 4*32 bytes before "ee"). */
	uint8_t *copy = malloc(t.len);
	memcpy(copy, t.data, t.len);
	copy[t.len - 2 - 10] ^= 0x40;
	assert_int_equal(metainfo_parse_torrent(&mi, copy, copy + t.len), METAINFO_E_LAYER_MISMATCH);
	assert_null(mi.files);
	free(copy);

	/* Hand-written torrents around one info dict. */
	struct buf info;
	buf_init(&info, 1 << 16);
	assert_int_equal(metainfo_build_info("f", pl, METAINFO_FORMAT_V2, &f, 1, &info, NULL), 0);
	struct buf x;
	buf_init(&x, 1 << 16);
	/* The layer one hash short. */
	assert_int_equal(buf_printf(&x, "d4:info"), 0);
	assert_int_equal(buf_append(&x, info.data, info.len), 0);
	assert_int_equal(buf_printf(&x, "12:piece layersd32:"), 0);
	assert_int_equal(buf_append(&x, f.root, H), 0);
	assert_int_equal(buf_printf(&x, "96:"), 0);
	assert_int_equal(buf_append(&x, layer, 3 * H), 0);
	assert_int_equal(buf_printf(&x, "ee"), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, x.data, x.data + x.len), METAINFO_E_LAYER);
	/* A key that is not a hash. */
	buf_reset(&x);
	assert_int_equal(buf_printf(&x, "d4:info"), 0);
	assert_int_equal(buf_append(&x, info.data, info.len), 0);
	assert_int_equal(buf_printf(&x, "12:piece layersd3:abc0:ee"), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, x.data, x.data + x.len), METAINFO_E_LAYER);
	/* Not a dict. */
	buf_reset(&x);
	assert_int_equal(buf_printf(&x, "d4:info"), 0);
	assert_int_equal(buf_append(&x, info.data, info.len), 0);
	assert_int_equal(buf_printf(&x, "12:piece layersi1ee"), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, x.data, x.data + x.len), METAINFO_E_LAYER);
	/* A layer for a root that is not in the torrent is ignored. */
	buf_reset(&x);
	assert_int_equal(buf_printf(&x, "d4:info"), 0);
	assert_int_equal(buf_append(&x, info.data, info.len), 0);
	assert_int_equal(buf_printf(&x, "12:piece layersd32:" R32 "0:ee"), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, x.data, x.data + x.len), 0);
	assert_false(mi.all_layers);
	metainfo_destroy(&mi);
	/* No piece layers at all: fine, layers unknown. */
	buf_reset(&x);
	assert_int_equal(buf_printf(&x, "d4:info"), 0);
	assert_int_equal(buf_append(&x, info.data, info.len), 0);
	assert_int_equal(buf_printf(&x, "e"), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, x.data, x.data + x.len), 0);
	assert_false(mi.all_layers);
	metainfo_destroy(&mi);
	/* Torrent-level errors. */
	static const char *const bad[] = { "le", "de", "d4:infoi1ee", "d4:infolee", "d4:info" };
	static const int want[] = { METAINFO_E_NO_INFO, METAINFO_E_NO_INFO, METAINFO_E_NO_INFO,
				    METAINFO_E_NO_INFO, METAINFO_E_BENCODE };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(metainfo_parse_torrent(&mi, (const uint8_t *)bad[k],
							(const uint8_t *)bad[k] + strlen(bad[k])),
				 want[k]);
	buf_destroy(&x);
	buf_destroy(&info);
	buf_destroy(&t);
	sha256_free(ctx);
	free(d);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	struct metainfo mi;
	/* A valid baseline. */
	assert_int_equal(parse_info_str(&mi, INFO("d1:a" LEAF(5) "1:bd1:c" EMPTY_LEAF "ee")), 0);
	assert_int_equal(mi.file_count, 2);
	assert_string_equal(mi.files[1].path, "b/c");
	metainfo_destroy(&mi);

	expect_info_err("", METAINFO_E_BENCODE);
	expect_info_err("i1e", METAINFO_E_NO_INFO);
	expect_info_err("d1:bi1e1:ai1ee", METAINFO_E_BENCODE); /* unsorted */
	expect_info_err(INFO("d1:a" LEAF(5) "e") "x", METAINFO_E_BENCODE); /* trailing */
	/* meta version */
	expect_info_err("d9:file treed1:a" LEAF(5) "e4:name1:x12:piece lengthi16384ee",
			METAINFO_E_VERSION);
	expect_info_err("d9:file treed1:a" LEAF(5) "e12:meta versioni1e4:name1:x12:piece lengthi16384ee",
			METAINFO_E_VERSION);
	expect_info_err("d9:file treed1:a" LEAF(5) "e12:meta version1:24:name1:x12:piece lengthi16384ee",
			METAINFO_E_VERSION);
	/* piece length */
	static const char *const bad_pl[] = { "i0e", "i-16384e", "i8192e", "i49152e", "i1e",
					      "i536870912e", "5:16384" };
	for (size_t k = 0; k < sizeof bad_pl / sizeof bad_pl[0]; k++) {
		char s[512];
		snprintf(s, sizeof s, "d9:file treed1:a" LEAF(5) "e12:meta versioni2e4:name1:x12:piece length%se",
			 bad_pl[k]);
		expect_info_err(s, METAINFO_E_PIECE_LENGTH);
	}
	/* name */
	static const char *const bad_name[] = { "0:", "1:.", "2:..", "3:a/b", "3:a\\b", "2:\xc0\xaf", "i1e" };
	for (size_t k = 0; k < sizeof bad_name / sizeof bad_name[0]; k++) {
		char s[512];
		snprintf(s, sizeof s, "d9:file treed1:a" LEAF(5) "e12:meta versioni2e4:name%s12:piece lengthi16384ee",
			 bad_name[k]);
		expect_info_err(s, METAINFO_E_NAME);
	}
	expect_info_err("d9:file treed1:a" LEAF(5) "e12:meta versioni2e12:piece lengthi16384ee",
			METAINFO_E_NAME);
	/* file tree shape */
	expect_info_err("d12:meta versioni2e4:name1:x12:piece lengthi16384ee", METAINFO_E_FILE_TREE);
	expect_info_err(INFO("le"), METAINFO_E_FILE_TREE);
	expect_info_err(INFO("de"), METAINFO_E_FILE_TREE);
	expect_info_err(INFO("d0:d6:lengthi1e11:pieces root32:" R32 "ee"), METAINFO_E_FILE_TREE);
	expect_info_err(INFO("d1:ai1ee"), METAINFO_E_FILE_TREE);
	expect_info_err(INFO("d1:adee"), METAINFO_E_FILE_TREE); /* empty folder */
	expect_info_err(INFO("d1:ad0:d6:lengthi0ee1:bd0:d6:lengthi0eeeee"), METAINFO_E_FILE_TREE);
	expect_info_err(INFO("d1:ad0:i1eee"), METAINFO_E_FILE_TREE);
	/* unsafe path components */
	expect_info_err(INFO("d2:.." EMPTY_LEAF "e"), METAINFO_E_PATH);
	expect_info_err(INFO("d1:." EMPTY_LEAF "e"), METAINFO_E_PATH);
	expect_info_err(INFO("d1:ad2:.." EMPTY_LEAF "ee"), METAINFO_E_PATH);
	expect_info_err(INFO("d3:a/b" EMPTY_LEAF "e"), METAINFO_E_PATH);
	expect_info_err(INFO("d4:/etc" EMPTY_LEAF "e"), METAINFO_E_PATH);
	expect_info_err(INFO("d3:a\\b" EMPTY_LEAF "e"), METAINFO_E_PATH);
	expect_info_err(INFO("d2:\xed\xa0" EMPTY_LEAF "e"), METAINFO_E_PATH);
	{
		/* NUL inside a name (the literal helpers stop at NUL, so build it). */
		static const char s[] = INFO("d3:a\0b" EMPTY_LEAF "e");
		assert_int_equal(metainfo_parse_info(&mi, (const uint8_t *)s, (const uint8_t *)s + sizeof s - 1),
				 METAINFO_E_PATH);
	}
	/* sizes and roots */
	expect_info_err(INFO("d1:ad0:d6:lengthi-1eeee"), METAINFO_E_SIZE);
	expect_info_err(INFO("d1:ad0:d6:length1:5eee"), METAINFO_E_SIZE);
	expect_info_err(INFO("d1:ad0:d11:pieces root32:" R32 "eee"), METAINFO_E_SIZE);
	expect_info_err(INFO("d1:ad0:d6:lengthi5eeee"), METAINFO_E_PIECES_ROOT);
	expect_info_err(INFO("d1:ad0:d6:lengthi5e11:pieces root31:RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRReee"),
			METAINFO_E_PIECES_ROOT);
	expect_info_err(INFO("d1:ad0:d6:lengthi5e11:pieces rooti1eeee"), METAINFO_E_PIECES_ROOT);
	expect_info_err(INFO("d1:ad0:d6:lengthi0e11:pieces root32:" R32 "eee"), METAINFO_E_PIECES_ROOT);
	expect_info_err(INFO("d1:a" LEAF(9223372036854775807) "1:b" LEAF(1) "e"), METAINFO_E_SIZE);
	/* 2^31 pieces of 16 KiB: over the 31-bit piece index */
	expect_info_err(INFO("d1:a" LEAF(35184372088832) "1:b" LEAF(16384) "e"), METAINFO_E_SIZE);
	expect_info_err(INFO("d1:a" LEAF(9223372036854775808) "e"), METAINFO_E_BENCODE);
}

static void test_parse_depth_and_count(void **state)
{
	(void)state;
	struct metainfo mi;
	struct buf b;
	buf_init(&b, 8 << 20);
	/* METAINFO_MAX_DEPTH components are fine, one more is not. */
	for (unsigned depth = METAINFO_MAX_DEPTH; depth <= METAINFO_MAX_DEPTH + 1; depth++) {
		buf_reset(&b);
		assert_int_equal(buf_printf(&b, "d9:file tree"), 0);
		for (unsigned k = 0; k < depth; k++)
			assert_int_equal(buf_printf(&b, "d1:d"), 0);
		assert_int_equal(buf_printf(&b, EMPTY_LEAF), 0);
		for (unsigned k = 0; k < depth; k++)
			assert_int_equal(buf_printf(&b, "e"), 0);
		assert_int_equal(buf_printf(&b, "12:meta versioni2e4:name1:x12:piece lengthi16384ee"), 0);
		int rc = metainfo_parse_info(&mi, b.data, b.data + b.len);
		if (depth <= METAINFO_MAX_DEPTH) {
			assert_int_equal(rc, 0);
			assert_int_equal(strlen(mi.files[0].path), 2 * depth - 1);
			metainfo_destroy(&mi);
		} else {
			assert_int_equal(rc, METAINFO_E_TOO_DEEP);
		}
	}
	/* A bencode depth bomb inside the file tree. */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "d9:file tree"), 0);
	for (unsigned k = 0; k < 100; k++)
		assert_int_equal(buf_printf(&b, "d1:d"), 0);
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), METAINFO_E_TOO_DEEP);

	/* More files than METAINFO_MAX_FILES. */
	for (unsigned count = METAINFO_MAX_FILES; count <= METAINFO_MAX_FILES + 1; count++) {
		buf_reset(&b);
		assert_int_equal(buf_printf(&b, "d9:file treed"), 0);
		for (unsigned k = 0; k < count; k++)
			assert_int_equal(buf_printf(&b, "7:f%06u" EMPTY_LEAF, k), 0);
		assert_int_equal(buf_printf(&b, "e12:meta versioni2e4:name1:x12:piece lengthi16384ee"), 0);
		int rc = metainfo_parse_info(&mi, b.data, b.data + b.len);
		if (count <= METAINFO_MAX_FILES) {
			assert_int_equal(rc, 0);
			assert_int_equal(mi.file_count, count);
			metainfo_destroy(&mi);
		} else {
			assert_int_equal(rc, METAINFO_E_TOO_MANY_FILES);
		}
	}
	/* Over the size ceiling before anything is parsed. */
	uint8_t *huge = calloc(1, (size_t)METAINFO_MAX_INFO_SIZE + 1);
	assert_non_null(huge);
	assert_int_equal(metainfo_parse_info(&mi, huge, huge + METAINFO_MAX_INFO_SIZE + 1),
			 METAINFO_E_TOO_BIG);
	free(huge);
	buf_destroy(&b);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = METAINFO_E_BENCODE; e <= METAINFO_E_DUPLICATE; e++) {
		const char *m = metainfo_strerror(e);
		assert_non_null(m);
		assert_string_not_equal(m, "unknown error");
	}
	for (int e = METAINFO_E_V1_PIECES; e <= METAINFO_E_HYBRID_MISMATCH; e++)
		assert_string_not_equal(metainfo_strerror(e), "unknown error");
	assert_string_equal(metainfo_strerror(12345), "unknown error");
}


/* v1: the stream of files in file tree order, no pads; pieces span files. */
static void test_v1_build_parse(void **state)
{
	(void)state;
	/* a.txt 5 | b.bin 40000 | empty 0 | sub/c 30000: 70005 bytes, 5 pieces
	 * of 16 KiB; piece 0 starts in a.txt, 1 and 2 in b.bin, 3 and 4 in sub/c. */
	uint8_t pa[20], pb[40], pc[40];
	memset(pa, 'a', 20);
	memset(pb, 'b', 40);
	memset(pc, 'c', 40);
	struct metainfo_file_in files[4] = {
		{ .path = "sub/c", .size = 30000, .v1_pieces = pc },
		{ .path = "b.bin", .size = 40000, .v1_pieces = pb },
		{ .path = "a.txt", .size = 5, .v1_pieces = pa },
		{ .path = "empty", .size = 0 },
	};
	const char *head = "d5:filesl"
			   "d6:lengthi5e4:pathl5:a.txtee"
			   "d6:lengthi40000e4:pathl5:b.binee"
			   "d6:lengthi0e4:pathl5:emptyee"
			   "d6:lengthi30000e4:pathl3:sub1:cee"
			   "e4:name1:d12:piece lengthi16384e6:pieces100:";
	struct buf b;
	buf_init(&b, 1 << 16);
	uint8_t key[H], want_v1[20];
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_V1, files, 4, &b, key), 0);
	size_t hl = strlen(head);
	assert_int_equal(b.len, hl + 101);
	assert_memory_equal(b.data, head, hl);
	assert_memory_equal(b.data + hl, pa, 20);
	assert_memory_equal(b.data + hl + 20, pb, 40);
	assert_memory_equal(b.data + hl + 60, pc, 40);
	assert_int_equal(sha1_digest(b.data, b.len, want_v1), 0);
	assert_memory_equal(key, want_v1, 20);
	static const uint8_t zero[12];
	assert_memory_equal(key + 20, zero, 12);

	struct metainfo mi;
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), 0);
	assert_true(mi.has_v1);
	assert_false(mi.has_v2);
	assert_memory_equal(mi.info_hash_v1, want_v1, 20);
	assert_memory_equal(mi.info_hash, key, H);
	assert_int_equal(mi.file_count, 4);
	assert_int_equal(mi.total_size, 70005);
	assert_int_equal(mi.v1_total, 70005);
	assert_int_equal(mi.total_pieces, 5);
	assert_true(mi.all_layers);
	assert_memory_equal(mi.v1_pieces + 20, pb, 20);
	/* Files in list order, with their offsets and the pieces they touch. */
	assert_string_equal(mi.files[0].path, "a.txt");
	assert_int_equal(mi.files[0].offset, 0);
	assert_int_equal(mi.files[0].first_piece, 0);
	assert_int_equal(mi.files[0].piece_count, 1);
	assert_string_equal(mi.files[1].path, "b.bin");
	assert_int_equal(mi.files[1].offset, 5);
	assert_int_equal(mi.files[1].first_piece, 0);
	assert_int_equal(mi.files[1].piece_count, 3);
	assert_int_equal(mi.files[2].size, 0);
	assert_int_equal(mi.files[2].piece_count, 0);
	assert_int_equal(mi.files[3].offset, 40005);
	assert_int_equal(mi.files[3].first_piece, 2);
	assert_int_equal(mi.files[3].piece_count, 3);
	assert_int_equal(metainfo_v1_piece_size(&mi, 0), 16384);
	assert_int_equal(metainfo_v1_piece_size(&mi, 4), 70005 - 4 * 16384);
	assert_int_equal(metainfo_v1_piece_size(&mi, 5), 0);
	metainfo_destroy(&mi);

	/* One file: "length", the name is the file. */
	b.len = 0;
	struct metainfo_file_in one = { .path = "f", .size = 20000, .v1_pieces = pb };
	assert_int_equal(metainfo_build_info("f", 16384, METAINFO_FORMAT_V1, &one, 1, &b, NULL), 0);
	const char *want1 = "d6:lengthi20000e4:name1:f12:piece lengthi16384e6:pieces40:";
	assert_memory_equal(b.data, want1, strlen(want1));
	assert_int_equal(metainfo_parse_info(&mi, b.data, b.data + b.len), 0);
	assert_int_equal(mi.file_count, 1);
	assert_string_equal(mi.files[0].path, "f");
	assert_int_equal(mi.total_pieces, 2);
	metainfo_destroy(&mi);

	/* A .torrent of it has no piece layers; a v1 file without its hashes
	 * is a bad argument; a torrent of only empty files has no v1 form. */
	b.len = 0;
	assert_int_equal(metainfo_build_torrent("d", 16384, METAINFO_FORMAT_V1, files, 4, NULL, 0, &b, NULL), 0);
	assert_int_equal(metainfo_parse_torrent(&mi, b.data, b.data + b.len), 0);
	assert_int_equal(mi.total_pieces, 5);
	metainfo_destroy(&mi);
	files[1].v1_pieces = NULL;
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_V1, files, 4, &b, NULL), -EINVAL);
	struct metainfo_file_in none = { .path = "e", .size = 0 };
	assert_int_equal(metainfo_build_info("d", 16384, METAINFO_FORMAT_V1, &none, 1, &b, NULL),
			 METAINFO_E_SIZE);
	buf_destroy(&b);
}

#define P20 "PPPPPPPPPPPPPPPPPPPP"
/* v1 info dicts from a hostile peer or file. */
static void test_v1_rejects(void **state)
{
	(void)state;
	struct metainfo mi;
	/* Baseline: two files, one 16 KiB piece, and a BEP 47 pad file that is
	 * skipped (never a file of the swarm, its bytes count in the stream). */
	assert_int_equal(parse_info_str(&mi, "d5:filesl"
					     "d6:lengthi100e4:pathl1:aee"
					     "d4:attr1:p6:lengthi16284e4:pathl4:.pad5:16284ee"
					     "d6:lengthi5e4:pathl1:bee"
					     "e4:name1:d12:piece lengthi16384e6:pieces40:" P20 P20 "e"),
			 0);
	assert_int_equal(mi.file_count, 2);
	assert_int_equal(mi.files[1].offset, 16384);
	assert_int_equal(mi.files[1].first_piece, 1);
	assert_int_equal(mi.total_size, 105);
	assert_int_equal(mi.v1_total, 16389);
	metainfo_destroy(&mi);
	/* A pad at the end of the last file is accepted too. */
	assert_int_equal(parse_info_str(&mi, "d5:filesl"
					     "d6:lengthi100e4:pathl1:aee"
					     "d4:attr1:p6:lengthi16284e4:pathl4:.pad5:16284ee"
					     "e4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e"),
			 0);
	assert_int_equal(mi.file_count, 1);
	metainfo_destroy(&mi);
	/* Private (BEP 27). */
	assert_int_equal(parse_info_str(&mi, "d6:lengthi5e4:name1:f12:piece lengthi16384e"
					     "6:pieces20:" P20 "7:privatei1ee"),
			 0);
	assert_true(mi.private_flag);
	metainfo_destroy(&mi);

	/* Paths: "..", an absolute or empty component, a '/' inside one. */
	expect_info_err("d5:filesld6:lengthi5e4:pathl2:..1:aeee4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_PATH);
	expect_info_err("d5:filesld6:lengthi5e4:pathl0:1:aeee4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_PATH);
	expect_info_err("d5:filesld6:lengthi5e4:pathl4:/etc6:passwdeee4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_PATH);
	expect_info_err("d5:filesld6:lengthi5e4:pathleee4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_PATH);
	expect_info_err("d6:lengthi5e4:name2:..12:piece lengthi16384e6:pieces20:" P20 "e", METAINFO_E_NAME);
	/* Two files at one path, or a file where a folder is. */
	expect_info_err("d5:filesld6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:aeee"
			"4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_DUPLICATE);
	expect_info_err("d5:filesld6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:a1:beee"
			"4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_DUPLICATE);
	/* Piece length 0, 2^31, not a power of two. */
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi0e6:pieces20:" P20 "e", METAINFO_E_PIECE_LENGTH);
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi2147483648e6:pieces20:" P20 "e",
			METAINFO_E_PIECE_LENGTH);
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi20000e6:pieces20:" P20 "e", METAINFO_E_PIECE_LENGTH);
	/* Lengths: negative, a sum that overflows. */
	expect_info_err("d6:lengthi-5e4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e", METAINFO_E_SIZE);
	expect_info_err("d5:filesld6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi9223372036854775807e4:pathl1:beee"
			"4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_SIZE);
	/* pieces: missing, not a multiple of 20, too few or too many. */
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi16384ee", METAINFO_E_VERSION);
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi16384e6:pieces19:PPPPPPPPPPPPPPPPPPPe",
			METAINFO_E_V1_PIECES);
	expect_info_err("d6:lengthi20000e4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_V1_PIECES);
	expect_info_err("d6:lengthi5e4:name1:f12:piece lengthi16384e6:pieces40:" P20 P20 "e",
			METAINFO_E_V1_PIECES);
	/* Neither or both of files and length; files not a list of dicts. */
	expect_info_err("d4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e", METAINFO_E_V1_FILES);
	expect_info_err("d5:filesld6:lengthi5e4:pathl1:aeee6:lengthi5e4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_V1_FILES);
	expect_info_err("d5:filesli1ee4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e", METAINFO_E_V1_FILES);
	expect_info_err("d5:filesle4:name1:f12:piece lengthi16384e6:pieces20:" P20 "e", METAINFO_E_V1_FILES);
	/* Only a pad file: nothing of the swarm's. */
	expect_info_err("d5:filesld4:attr1:p6:lengthi5e4:pathl4:.pad1:5eee4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_V1_FILES);
	/* Only empty files: no pieces at all. */
	expect_info_err("d6:lengthi0e4:name1:f12:piece lengthi16384e6:pieces0:e", METAINFO_E_V1_PIECES);
}

/* A hybrid whose v1 half disagrees with its v2 half is a bad torrent. */
static void test_hybrid_mismatch(void **state)
{
	(void)state;
	/* The v2 half: a (5 bytes) and b (5 bytes), two pieces. */
#define TREE "9:file treed1:a" LEAF(5) "1:b" LEAF(5) "e"
#define TAIL "12:meta versioni2e4:name1:d12:piece lengthi16384e6:pieces40:" P20 P20 "e"
	struct metainfo mi;
	assert_int_equal(parse_info_str(&mi, "d" TREE "5:filesl"
					     "d6:lengthi5e4:pathl1:aee"
					     "d4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379ee"
					     "d6:lengthi5e4:pathl1:bee"
					     "e" TAIL),
			 0);
	assert_true(mi.has_v1 && mi.has_v2);
	assert_int_equal(mi.v1_total, 16389);
	metainfo_destroy(&mi);
	/* No pad: b would start inside a's piece. */
	expect_info_err("d" TREE "5:filesld6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:beee" TAIL,
			METAINFO_E_HYBRID_MISMATCH);
	expect_info_err("d" TREE "5:filesld6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:beee"
			"12:meta versioni2e4:name1:d12:piece lengthi16384e6:pieces20:" P20 "e",
			METAINFO_E_HYBRID_MISMATCH);
	/* Another size, another name, another order, a file missing. */
	expect_info_err("d" TREE "5:filesld6:lengthi6e4:pathl1:aeed4:attr1:p6:lengthi16378e4:pathl4:.pad5:16378ee"
			"d6:lengthi5e4:pathl1:beee" TAIL,
			METAINFO_E_HYBRID_MISMATCH);
	expect_info_err("d" TREE "5:filesld6:lengthi5e4:pathl1:ceed4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379ee"
			"d6:lengthi5e4:pathl1:beee" TAIL,
			METAINFO_E_HYBRID_MISMATCH);
	expect_info_err("d" TREE "5:filesld6:lengthi5e4:pathl1:beed4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379ee"
			"d6:lengthi5e4:pathl1:aeee" TAIL,
			METAINFO_E_HYBRID_MISMATCH);
	expect_info_err("d" TREE "5:filesld6:lengthi5e4:pathl1:aeed4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379eee" TAIL,
			METAINFO_E_HYBRID_MISMATCH);
	/* "length" for a torrent of two files. */
	expect_info_err("d" TREE "6:lengthi10e" TAIL, METAINFO_E_HYBRID_MISMATCH);
#undef TREE
#undef TAIL
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_piece_length_rule),
		cmocka_unit_test(test_component_ok),
		cmocka_unit_test(test_build_info_exact),
		cmocka_unit_test(test_build_order),
		cmocka_unit_test(test_build_rejects),
		cmocka_unit_test(test_torrent_roundtrip),
		cmocka_unit_test(test_torrent_bad_layers),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_depth_and_count),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_build_hybrid_exact),
		cmocka_unit_test(test_build_hybrid_single),
		cmocka_unit_test(test_v1_pad),
		cmocka_unit_test(test_v1_build_parse),
		cmocka_unit_test(test_v1_rejects),
		cmocka_unit_test(test_hybrid_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
