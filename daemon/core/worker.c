/* worker.c - a durable queue's worker thread (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <time.h>

#include "log.h"

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
	w->kicked = w->stopping = w->started = false;
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
		int64_t wait = -1;
		int r;

		w->kicked = false;
		pthread_mutex_unlock(&w->lock);
		r = w->run_one(w->ctx, &wait);
		pthread_mutex_lock(&w->lock);
		if (r == 1 || w->kicked || w->stopping)
			continue;
		wait_ms(w, r < 0 ? WORKER_ERROR_MS : wait < 0 ? WORKER_IDLE_MS : wait);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_start(struct worker *w)
{
	int r = pthread_create(&w->thread, NULL, loop, w);

	if (r)
		return log_errno(-r, "cannot start the %s worker", w->name);
	w->started = true;
	return 0;
}

void worker_wake(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicked = true;
	pthread_cond_signal(&w->cond);
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
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
