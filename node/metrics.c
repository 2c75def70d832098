/* metrics.c: the registry's updates and the Prometheus text format writer (node/metrics.h). */
#include "config.h"

#include "node/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"

const char *const metrics_bucket_le[METRICS_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};
const uint64_t metrics_bucket_ns[METRICS_BUCKETS] = {
	500000ull,     1000000ull,    2500000ull,    5000000ull,     10000000ull,
	25000000ull,   50000000ull,   100000000ull,  250000000ull,   500000000ull,
	1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};

const int metrics_api_codes[METRICS_API_CODES - 1] = {
	200, 201, 202, 204, 206, 304, 400, 401, 403, 404,
	405, 409, 410, 413, 415, 416, 422, 429, 500, 503,
};

void metrics_hist_observe(struct metrics_hist *h, uint64_t ns)
{
	size_t i = 0;
	while (i < METRICS_BUCKETS && ns > metrics_bucket_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

uint64_t metrics_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void metrics_api_reply(struct node_metrics *m, int status)
{
	size_t i = 0;
	while (i < METRICS_API_CODES - 1 && metrics_api_codes[i] != status)
		i++;
	m->api_requests[i]++; /* [METRICS_API_CODES - 1]: "other" */
}

/* ------------------------------------------------------------ the text */

static void put(struct metrics_writer *w, const char *s, size_t n)
{
	if (w->err == 0)
		w->err = buf_append(w->b, s, n);
}

static void puts_(struct metrics_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* `s` with a backslash before each backslash, and newlines as \n; label
 * values also escape the double quote. */
static void put_escaped(struct metrics_writer *w, const char *s, bool quote)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\'	     ? "\\\\"
				  : *s == '\n'	     ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;
		if (!esc)
			continue;
		put(w, run, (size_t)(s - run));
		puts_(w, esc);
		run = s + 1;
	}
	put(w, run, (size_t)(s - run));
}

void metrics_family(struct metrics_writer *w, const char *name, const char *type,
		    const char *help)
{
	puts_(w, "# HELP ");
	puts_(w, name);
	puts_(w, " ");
	put_escaped(w, help, false);
	puts_(w, "\n# TYPE ");
	puts_(w, name);
	puts_(w, " ");
	puts_(w, type);
	puts_(w, "\n");
}

/* {a="x",b="y"} plus, when `le` is not NULL, le="..." last; nothing when
 * there is no label at all. */
static void put_labels(struct metrics_writer *w, const struct metrics_labels *l, const char *le)
{
	size_t n = l ? l->n : 0;
	if (n > METRICS_MAX_LABELS) {
		if (w->err == 0)
			w->err = -EINVAL;
		return;
	}
	if (n == 0 && !le)
		return;
	puts_(w, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			puts_(w, ",");
		puts_(w, l->name[i]);
		puts_(w, "=\"");
		put_escaped(w, l->value[i], true);
		puts_(w, "\"");
	}
	if (le) {
		puts_(w, n ? ",le=\"" : "le=\"");
		puts_(w, le);
		puts_(w, "\"");
	}
	puts_(w, "}");
}

static void put_u64(struct metrics_writer *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof num, " %" PRIu64 "\n", v);
	put(w, num, (size_t)n);
}

void metrics_sample(struct metrics_writer *w, const char *name, const struct metrics_labels *labels,
		    uint64_t value)
{
	puts_(w, name);
	put_labels(w, labels, NULL);
	put_u64(w, value);
}

void metrics_histogram(struct metrics_writer *w, const char *name,
		       const struct metrics_labels *labels, const struct metrics_hist *h)
{
	char line[128];
	uint64_t cum = 0;
	snprintf(line, sizeof line, "%s_bucket", name);
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		puts_(w, line);
		put_labels(w, labels, i < METRICS_BUCKETS ? metrics_bucket_le[i] : "+Inf");
		put_u64(w, cum);
	}
	/* Seconds printed from integer nanoseconds: exact, no rounding. */
	uint64_t ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
	puts_(w, name);
	puts_(w, "_sum");
	put_labels(w, labels, NULL);
	int n = snprintf(line, sizeof line, " %" PRIu64 ".%09" PRIu64 "\n", (uint64_t)(ns / 1000000000u),
			 (uint64_t)(ns % 1000000000u));
	put(w, line, (size_t)n);
	puts_(w, name);
	puts_(w, "_count");
	put_labels(w, labels, NULL);
	put_u64(w, cum);
}
