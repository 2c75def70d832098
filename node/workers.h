/* workers.h: a small thread pool that keeps hashing and disk I/O off the event loop. */
#ifndef SHOAL_NODE_WORKERS_H
#define SHOAL_NODE_WORKERS_H

#include <stddef.h>

struct event_base;
struct workers;

/* Runs on a worker thread. */
typedef void (*work_fn)(void *arg);
/* Runs afterwards on the event loop thread, in completion order. */
typedef void (*work_done_fn)(void *arg);

/* Start `n` threads (n >= 1) whose completions are delivered on `base`.
 * Workers never call libevent: they wake the loop through an eventfd, so
 * libevent's own locking is not needed.  Returns NULL on failure. */
struct workers *workers_new(struct event_base *base, int n);

/* Stop: waits for jobs already running and joins the threads, then calls
 * `done` for every job still owed a completion - including queued jobs
 * whose `work` never ran, so owners must mark their jobs cancelled before
 * (or give them a result that means "not done").  Submitting from inside
 * those calls fails with -ESHUTDOWN.  NULL is a no-op.  Loop thread only. */
void workers_free(struct workers *w);

/* Queue `work` to run on a worker; `done` (may be NULL) then runs on the
 * loop.  Returns 0 or -ENOMEM / -ESHUTDOWN. */
int workers_submit(struct workers *w, work_fn work, work_done_fn done, void *arg)
	__attribute__((warn_unused_result));

/* From inside a work function: a buffer of at least `len` bytes, aligned
 * to WORKERS_SCRATCH_ALIGN, that belongs to the calling worker thread and
 * stays valid until the work function returns (the next call on the same
 * thread may move it).  Kept between jobs, so a job that needs a large
 * buffer every time finds it warm; freed when the thread ends.  At most
 * WORKERS_SCRATCH_MAX bytes; NULL when larger, off a worker thread, or out
 * of memory. */
#define WORKERS_SCRATCH_ALIGN 4096u
#define WORKERS_SCRATCH_MAX (4u << 20)
void *workers_scratch(size_t len);

/* Jobs queued or running right now. */
size_t workers_pending(struct workers *w);

#endif
