/* metrics.h: the daemon's counters and histograms for GET /metrics, and
 * the Prometheus text exposition format they are written in.
 *
 * The registry is one fixed struct (struct node_metrics, embedded in struct
 * node): no allocation per swarm, per peer or per scrape, and every label
 * takes its values from a small fixed set (a direction, a transport, a DHT
 * method, a status code), never a swarm's name or id.  Gauges (swarms by
 * state, peers connected, DHT nodes) are not kept here: node/api_metrics.c
 * reads them from counts the node keeps anyway, at scrape time, in O(1) of
 * the number of swarms.
 *
 * Threading contract.  The loop thread owns everything here, but for the
 * fields marked "worker threads too": the disk layer's jobs (node/diskio.c,
 * on node/workers.c's threads) add to disk_read_bytes, disk_written_bytes
 * and observe fdatasync, through the pointer diskio_set_metrics gave them.
 * Those fields are C11 atomics updated with relaxed order: each is a
 * counter on its own, no reader infers anything about other memory from
 * them, and a scrape may see a histogram's count one observation ahead of
 * its buckets (Prometheus tolerates that; it never goes backwards).  The
 * node outlives every job (workers_free drains them before the node is
 * torn down), so the pointer stays valid.  The plain fields are touched by
 * the loop only. */
#ifndef SHOAL_NODE_METRICS_H
#define SHOAL_NODE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Histogram bucket upper bounds, in seconds (text, as printed in le="")
 * and in nanoseconds (what is compared).  From half a millisecond, a
 * commit of a page cache write, to ten seconds, an fdatasync on a disk
 * that is struggling. */
#define METRICS_BUCKETS 14
extern const char *const metrics_bucket_le[METRICS_BUCKETS];
extern const uint64_t metrics_bucket_ns[METRICS_BUCKETS];

struct metrics_hist {
	/* observations per bucket, not cumulative; [METRICS_BUCKETS] is past
	 * the last bound (+Inf) */
	_Atomic uint64_t bucket[METRICS_BUCKETS + 1];
	_Atomic uint64_t sum_ns;
};

/* Record one duration of `ns` nanoseconds (any thread). */
void metrics_hist_observe(struct metrics_hist *h, uint64_t ns);
/* Monotonic nanoseconds, for timing what is observed. */
uint64_t metrics_now_ns(void);

enum metrics_dir { METRICS_DOWN, METRICS_UP, METRICS_DIRS };
enum metrics_tracker_proto { METRICS_TRACKER_HTTP, METRICS_TRACKER_HTTPS, METRICS_TRACKER_UDP,
			     METRICS_TRACKER_PROTOS };
enum metrics_tracker_result { METRICS_TRACKER_OK, METRICS_TRACKER_ERROR, METRICS_TRACKER_TIMEOUT,
			      METRICS_TRACKER_RESULTS };

/* The status codes the API answers with, each a label value of
 * shoal_api_requests_total; anything else counts as code="other". */
#define METRICS_API_CODES 21
extern const int metrics_api_codes[METRICS_API_CODES - 1];

struct node_metrics {
	/* Loop thread only. */
	uint64_t payload_bytes[METRICS_DIRS]; /* PIECE data asked for and sent */
	uint64_t protocol_shown[METRICS_DIRS]; /* the last protocol bytes a scrape printed,
						* so the counter never goes back (api_metrics.c) */
	uint64_t hash_failures;         /* pieces that failed their hash check */
	uint64_t bans;                  /* peers banned for bad data */
	uint64_t tracker_announces[METRICS_TRACKER_PROTOS][METRICS_TRACKER_RESULTS];
	uint64_t api_requests[METRICS_API_CODES];
	unsigned peers[2][2];           /* connections in a swarm: [encrypted][outgoing] */
	struct metrics_hist sqlite_commit; /* store_exec("COMMIT;") (node/store.c) */
	/* Worker threads too (see the contract above). */
	_Atomic uint64_t disk_read_bytes, disk_written_bytes;
	struct metrics_hist fdatasync;  /* node/diskio.c's syncs of downloaded data */
};

/* Count one reply of the API with HTTP status `status`. */
void metrics_api_reply(struct node_metrics *m, int status);

/* --- the text exposition format (version 0.0.4), pure, unit-tested --- */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* A scrape's text never grows past this (it is a few KiB). */
#define METRICS_MAX_TEXT (256 * 1024)
/* Labels of one sample, at most. */
#define METRICS_MAX_LABELS 4

/* A label set: `n` pairs of name and value.  Names are ours (constants);
 * values are escaped (backslash, double quote, newline) when written. */
struct metrics_labels {
	size_t n;
	const char *name[METRICS_MAX_LABELS];
	const char *value[METRICS_MAX_LABELS];
};

/* Everything written goes into `b`; the first failure (-EMSGSIZE past the
 * buffer's maximum, -ENOMEM, -EINVAL for a label set over the maximum) is
 * kept in `err` and every later write does nothing. */
struct metrics_writer {
	struct buf *b;
	int err;
};

/* "# HELP name help" and "# TYPE name type" (type: "counter", "gauge",
 * "histogram"); the help text is escaped (backslash, newline). */
void metrics_family(struct metrics_writer *w, const char *name, const char *type,
		    const char *help);
/* One sample line "name{labels} value"; `labels` may be NULL (none). */
void metrics_sample(struct metrics_writer *w, const char *name, const struct metrics_labels *labels,
		    uint64_t value);
/* The samples of one histogram: name_bucket{...,le="..."} cumulative up
 * to le="+Inf", then name_sum in seconds and name_count.  The +Inf bucket
 * and _count are the same number (the buckets' sum), so a scrape that
 * races an observation is still consistent. */
void metrics_histogram(struct metrics_writer *w, const char *name,
		       const struct metrics_labels *labels, const struct metrics_hist *h);

#endif
