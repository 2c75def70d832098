/* replay.c: runs every stored input of one fuzz surface through its harness.
 *
 * Each harness tests/fuzz/fuzz_<surface>.c defines the libFuzzer entry point
 * LLVMFuzzerTestOneInput.  `make check` links it with this driver (built with
 * -DFUZZ_SURFACE=\"<surface>\") and replays $SHOAL_SRCDIR/tests/fuzz/corpus/<surface>,
 * so every seed and every crash ever found stays a regression test.
 *
 * To fuzz for real, build the same harness with libFuzzer instead of this
 * driver, e.g. from the source tree (after ./configure for config.h):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I_build/x \
 *     tests/fuzz/fuzz_bencode.c common/bencode.c common/buf.c -o fuzz_bencode
 *   ./fuzz_bencode tests/fuzz/corpus/bencode
 * (add the transfer/ sources, common/sha256.c and -lcrypto for surfaces that need them).
 *
 * Usage: replay_<surface> [FILE...]  -- with arguments, replays just those files. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_SURFACE
#error "build with -DFUZZ_SURFACE=\"<surface>\""
#endif

/* A corpus file larger than this is a mistake, not an input. */
#define REPLAY_MAX_INPUT (16u << 20)
#define REPLAY_MAX_FILES 100000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole file into an exact-size heap block, so a sanitizer flags any
 * read past its end.  Returns 0 or a negative errno. */
static int read_file(const char *path, uint8_t **data_out, size_t *len_out)
{
	int rc = 0;
	uint8_t *data = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		rc = -errno;
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto done;
	}
	if ((uintmax_t)st.st_size > REPLAY_MAX_INPUT) {
		rc = -EFBIG;
		goto done;
	}
	size_t len = (size_t)st.st_size;
	data = malloc(len ? len : 1);
	if (!data) {
		rc = -ENOMEM;
		goto done;
	}
	if (len && fread(data, 1, len, f) != len) {
		rc = -EIO;
		goto done;
	}
	*data_out = data;
	*len_out = len;
	data = NULL;
done:
	free(data);
	fclose(f);
	return rc;
}

static int run_one(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = read_file(path, &data, &len);
	if (rc) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	/* Hand an empty input as a non-NULL pointer, as libFuzzer does. */
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int k = 1; k < argc; k++)
			if (run_one(argv[k]))
				return 1;
		printf("replay %s: ran %d inputs\n", FUZZ_SURFACE, argc - 1);
		return 0;
	}

	const char *src = getenv("SHOAL_SRCDIR");
	if (!src || !*src) {
		fprintf(stderr, "replay: SHOAL_SRCDIR is not set\n");
		return 1;
	}
	char dir[4096];
	int n = snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src, FUZZ_SURFACE);
	if (n < 0 || (size_t)n >= sizeof dir) {
		fprintf(stderr, "replay: corpus path too long\n");
		return 1;
	}
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return 1;
	}

	/* Collect and sort the names so runs are reproducible. */
	char **names = NULL;
	size_t count = 0, cap = 0;
	int status = 1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue; /* ".", "..", and hidden files such as .gitignore */
		if (count == REPLAY_MAX_FILES) {
			fprintf(stderr, "replay: more than %u files in %s\n", REPLAY_MAX_FILES, dir);
			goto done;
		}
		if (count == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			char **p = realloc(names, ncap * sizeof *p);
			if (!p)
				goto oom;
			names = p;
			cap = ncap;
		}
		names[count] = strdup(e->d_name);
		if (!names[count])
			goto oom;
		count++;
	}
	if (count == 0) {
		fprintf(stderr, "replay: %s is empty\n", dir);
		goto done;
	}
	qsort(names, count, sizeof *names, cmp_names);

	for (size_t k = 0; k < count; k++) {
		char path[4096 + 256];
		n = snprintf(path, sizeof path, "%s/%s", dir, names[k]);
		if (n < 0 || (size_t)n >= sizeof path) {
			fprintf(stderr, "replay: path too long: %s\n", names[k]);
			goto done;
		}
		if (run_one(path))
			goto done;
	}
	printf("replay %s: ran %zu inputs from %s\n", FUZZ_SURFACE, count, dir);
	status = 0;
	goto done;
oom:
	fprintf(stderr, "replay: out of memory\n");
done:
	for (size_t k = 0; k < count; k++)
		free(names[k]);
	free(names);
	closedir(d);
	return status;
}
