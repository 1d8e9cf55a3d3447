/* worker.c - a durable queue's worker thread (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

/* When nothing is known to be due, look again this often anyway. */
#define WORKER_IDLE_MS 60000
/* After a failure to look at the queue (the journal), wait this long. */
#define WORKER_ERROR_MS 5000

void worker_init(struct worker *w, const char *name, worker_run_fn run_one, void *ctx)
{
	pthread_condattr_t attr;

	w->name = name;
	w->run_one = run_one;
	w->ctx = ctx;
	w->wakes = 0;
	w->stopping = false;
	w->threads = NULL;
	w->n_threads = 0;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
}

static void wait_ms(struct worker *w, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

static void *loop(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		unsigned long seen = w->wakes;
		int64_t wait = -1;
		int r;

		pthread_mutex_unlock(&w->lock);
		r = w->run_one(w->ctx, &wait);
		pthread_mutex_lock(&w->lock);
		if (r == 1 || w->wakes != seen || w->stopping)
			continue;
		wait_ms(w, r < 0 ? WORKER_ERROR_MS : wait < 0 ? WORKER_IDLE_MS : wait);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_start_pool(struct worker *w, unsigned n)
{
	w->threads = xrealloc(w->threads, (w->n_threads + n) * sizeof(*w->threads));
	for (unsigned i = 0; i < n; i++) {
		int r = pthread_create(&w->threads[w->n_threads], NULL, loop, w);

		if (r)
			return log_errno(-r, "cannot start the %s worker", w->name);
		w->n_threads++;
	}
	return 0;
}

int worker_start(struct worker *w)
{
	return worker_start_pool(w, 1);
}

void worker_wake(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->wakes++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

bool worker_stopping(struct worker *w)
{
	bool stopping;

	pthread_mutex_lock(&w->lock);
	stopping = w->stopping;
	pthread_mutex_unlock(&w->lock);
	return stopping;
}

void worker_destroy(struct worker *w)
{
	worker_stop(w);
	for (unsigned i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	w->threads = NULL;
	w->n_threads = 0;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
