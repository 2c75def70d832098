/* test_metrics.c: the Prometheus text writer (node/metrics.c): HELP/TYPE
 * lines, escaping of help and label values, histograms' cumulative buckets,
 * +Inf, _sum in seconds and _count, the buffer's ceiling, status codes. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "node/metrics.h"

/* The writer's text so far, NUL-terminated in a static copy. */
static const char *text(struct buf *b)
{
	static char copy[METRICS_MAX_TEXT + 1];
	assert_true(b->len <= METRICS_MAX_TEXT);
	if (b->len)
		memcpy(copy, b->data, b->len);
	copy[b->len] = '\0';
	return copy;
}

static void test_family_and_samples(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	struct metrics_writer w = { .b = &b };
	metrics_family(&w, "shoal_x_total", "counter", "Back\\slash and\nnewline.");
	metrics_sample(&w, "shoal_x_total", NULL, 0);
	struct metrics_labels l = { 2, { "direction", "v" }, { "upload", "a\"b\\c\nd" } };
	metrics_sample(&w, "shoal_x_total", &l, UINT64_MAX);
	assert_int_equal(w.err, 0);
	assert_string_equal(text(&b), "# HELP shoal_x_total Back\\\\slash and\\nnewline.\n"
				      "# TYPE shoal_x_total counter\n"
				      "shoal_x_total 0\n"
				      "shoal_x_total{direction=\"upload\",v=\"a\\\"b\\\\c\\nd\"} "
				      "18446744073709551615\n");
	/* Too many labels is the writer's error, and nothing more is written. */
	struct metrics_labels many = { METRICS_MAX_LABELS + 1, { 0 }, { 0 } };
	size_t len = b.len;
	metrics_sample(&w, "shoal_y", &many, 1);
	assert_int_equal(w.err, -EINVAL);
	metrics_sample(&w, "shoal_z", NULL, 1);
	assert_true(b.len <= len + strlen("shoal_y"));
	assert_null(strstr(text(&b), "shoal_z"));
	buf_destroy(&b);
}

static void test_histogram(void **state)
{
	(void)state;
	struct metrics_hist h;
	memset(&h, 0, sizeof h);
	metrics_hist_observe(&h, 100000);        /* 0.1 ms: the first bucket */
	metrics_hist_observe(&h, 500000);        /* exactly 0.0005: still the first (le) */
	metrics_hist_observe(&h, 3000000);       /* 3 ms: le 0.005 */
	metrics_hist_observe(&h, 20000000000ull); /* 20 s: only +Inf */
	struct buf b;
	buf_init(&b, 8192);
	struct metrics_writer w = { .b = &b };
	struct metrics_labels l = { 1, { "kind" }, { "x" } };
	metrics_histogram(&w, "shoal_t_seconds", &l, &h);
	assert_int_equal(w.err, 0);
	const char *t = text(&b);
	assert_non_null(strstr(t, "shoal_t_seconds_bucket{kind=\"x\",le=\"0.0005\"} 2\n"));
	assert_non_null(strstr(t, "shoal_t_seconds_bucket{kind=\"x\",le=\"0.0025\"} 2\n"));
	assert_non_null(strstr(t, "shoal_t_seconds_bucket{kind=\"x\",le=\"0.005\"} 3\n"));
	assert_non_null(strstr(t, "shoal_t_seconds_bucket{kind=\"x\",le=\"10\"} 3\n"));
	assert_non_null(strstr(t, "shoal_t_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n"));
	/* 0.0001 + 0.0005 + 0.003 + 20 s, exactly */
	assert_non_null(strstr(t, "shoal_t_seconds_sum{kind=\"x\"} 20.003600000\n"));
	assert_non_null(strstr(t, "shoal_t_seconds_count{kind=\"x\"} 4\n"));
	/* Buckets in ascending order, +Inf last, then _sum and _count. */
	assert_true(strstr(t, "le=\"0.0005\"") < strstr(t, "le=\"0.001\""));
	assert_true(strstr(t, "le=\"10\"") < strstr(t, "le=\"+Inf\""));
	assert_true(strstr(t, "le=\"+Inf\"") < strstr(t, "_sum"));
	assert_true(strstr(t, "_sum") < strstr(t, "_count"));
	/* Without labels, le alone. */
	buf_reset(&b);
	metrics_histogram(&w, "shoal_u_seconds", NULL, &h);
	assert_non_null(strstr(text(&b), "shoal_u_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(text(&b), "shoal_u_seconds_count 4\n"));
	buf_destroy(&b);
	/* The bounds rise, and agree with their text. */
	for (size_t i = 1; i < METRICS_BUCKETS; i++)
		assert_true(metrics_bucket_ns[i] > metrics_bucket_ns[i - 1]);
	assert_string_equal(metrics_bucket_le[METRICS_BUCKETS - 1], "10");
	assert_int_equal(metrics_bucket_ns[METRICS_BUCKETS - 1], 10000000000ull);
}

static void test_ceiling(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	struct metrics_writer w = { .b = &b };
	for (int i = 0; i < 10; i++)
		metrics_sample(&w, "shoal_long_metric_name_total", NULL, 12345);
	assert_int_equal(w.err, -EMSGSIZE);
	assert_true(b.len <= 64);
	buf_destroy(&b);
}

static void test_api_codes(void **state)
{
	(void)state;
	struct node_metrics m;
	memset(&m, 0, sizeof m);
	metrics_api_reply(&m, 200);
	metrics_api_reply(&m, 200);
	metrics_api_reply(&m, 401);
	metrics_api_reply(&m, 418); /* not in the table: "other" */
	assert_int_equal(metrics_api_codes[0], 200);
	assert_int_equal(m.api_requests[0], 2);
	size_t i401 = 0;
	while (metrics_api_codes[i401] != 401)
		i401++;
	assert_int_equal(m.api_requests[i401], 1);
	assert_int_equal(m.api_requests[METRICS_API_CODES - 1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_ceiling),
		cmocka_unit_test(test_api_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
