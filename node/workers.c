/* workers.c: fixed thread pool with completions handed back to the event loop. */
#include "config.h"

#include "node/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include <string.h>

struct job {
	work_fn work;
	work_done_fn done;
	void *arg;
	struct job *next;
};

struct workers {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *queue_head, *queue_tail; /* waiting to run */
	struct job *done_head, *done_tail;   /* finished, waiting for the loop */
	size_t pending;
	bool stopping;
	/* Workers wake the loop through an eventfd, written only when the done
	 * list goes from empty to non-empty.  No libevent call is made from a
	 * worker thread, so libevent needs no locking at all. */
	int efd;
	struct event *notify;
	pthread_t *threads;
	int n_threads;
};

/* The calling thread's scratch buffer (workers_scratch): only worker
 * threads have one, and only that thread touches it. */
static _Thread_local struct {
	bool worker;
	void *p;
	size_t len;
} scratch;

void *workers_scratch(size_t len)
{
	if (!scratch.worker || len > WORKERS_SCRATCH_MAX)
		return NULL;
	if (scratch.len < len) {
		size_t want = (len + WORKERS_SCRATCH_ALIGN - 1) / WORKERS_SCRATCH_ALIGN * WORKERS_SCRATCH_ALIGN;
		void *p = aligned_alloc(WORKERS_SCRATCH_ALIGN, want);
		if (p == NULL)
			return NULL;
		free(scratch.p);
		scratch.p = p;
		scratch.len = want;
	}
	return scratch.p;
}

static void *worker_main(void *arg)
{
	struct workers *w = arg;
	scratch.worker = true;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stopping && !w->queue_head)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->stopping)
			break;
		struct job *j = w->queue_head;
		w->queue_head = j->next;
		if (!w->queue_head)
			w->queue_tail = NULL;
		pthread_mutex_unlock(&w->lock);

		j->work(j->arg);

		pthread_mutex_lock(&w->lock);
		j->next = NULL;
		bool was_empty = w->done_head == NULL;
		if (w->done_tail)
			w->done_tail->next = j;
		else
			w->done_head = j;
		w->done_tail = j;
		if (was_empty) {
			uint64_t one = 1;
			if (write(w->efd, &one, sizeof one) != sizeof one)
				log_error("workers: cannot wake the loop");
		}
	}
	pthread_mutex_unlock(&w->lock);
	free(scratch.p);
	scratch.p = NULL;
	scratch.len = 0;
	return NULL;
}

/* On the loop: run the completions gathered so far. */
static void on_notify(evutil_socket_t fd, short events, void *arg)
{
	struct workers *w = arg;
	uint64_t n;
	if (read(w->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_error("workers: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->lock);
	struct job *j = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (j) {
		struct job *next = j->next;
		pthread_mutex_lock(&w->lock);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
		if (j->done)
			j->done(j->arg);
		free(j);
		j = next;
	}
}

struct workers *workers_new(struct event_base *base, int n)
{
	struct workers *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->efd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0)
		goto fail;
	w->notify = event_new(base, w->efd, EV_READ | EV_PERSIST, on_notify, w);
	if (!w->notify || event_add(w->notify, NULL) != 0)
		goto fail;
	w->threads = calloc((size_t)n, sizeof *w->threads);
	if (!w->notify || !w->threads)
		goto fail;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
			log_error("cannot start worker thread %d", i);
			goto fail;
		}
		w->n_threads++;
	}
	return w;
fail:
	workers_free(w);
	return NULL;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	/* Completions still owed, then jobs that never ran: every `done` is
	 * called exactly once, so owners can free what the job carried. */
	for (int pass = 0; pass < 2; pass++) {
		struct job *j = pass == 0 ? w->done_head : w->queue_head;
		while (j) {
			struct job *next = j->next;
			if (j->done)
				j->done(j->arg);
			free(j);
			j = next;
		}
	}
	w->done_head = w->queue_head = NULL;
	if (w->notify)
		event_free(w->notify);
	if (w->efd >= 0)
		close(w->efd);
	free(w->threads);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int workers_submit(struct workers *w, work_fn work, work_done_fn done, void *arg)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		free(j);
		return -ESHUTDOWN;
	}
	if (w->queue_tail)
		w->queue_tail->next = j;
	else
		w->queue_head = j;
	w->queue_tail = j;
	w->pending++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

size_t workers_pending(struct workers *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->pending;
	pthread_mutex_unlock(&w->lock);
	return n;
}
