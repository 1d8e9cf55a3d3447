/* gate.c - a counting gate with a bounded queue and a bounded wait.
 *
 * libfuse serves the mount with a fixed number of worker threads, and an
 * operation that waits on the platform holds one for up to `timeout`.
 * Without a bound, as many hung reads as there are workers stop the whole
 * mount, local files included (issue 17, finding 5). The gate bounds
 * both those that hold a slot and those waiting for one, so the workers
 * beyond slots + waiters are never taken by the platform. A waiter gives
 * up after wait_s seconds: a slot held by a hung request frees only when
 * that request's own deadline passes. */
#include "gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "xalloc.h"

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t freed; /* a slot was left */
	unsigned slots, waiters;
	int wait_s;
	unsigned busy;    /* protected by lock */
	unsigned waiting; /* protected by lock */
	uint64_t refused; /* protected by lock */
};

struct gate *gate_new(unsigned slots, unsigned waiters, int wait_s)
{
	struct gate *g = xcalloc(1, sizeof(*g));
	pthread_condattr_t ca;

	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->freed, &ca);
	pthread_condattr_destroy(&ca);
	g->slots = slots;
	g->waiters = waiters;
	g->wait_s = wait_s > 0 ? wait_s : 1;
	return g;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->freed);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int gate_enter(struct gate *g)
{
	struct timespec until;
	int r = 0;

	pthread_mutex_lock(&g->lock);
	if (g->busy >= g->slots) {
		if (g->waiting >= g->waiters) {
			r = -EAGAIN;
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += g->wait_s;
		g->waiting++;
		while (g->busy >= g->slots && r == 0)
			if (pthread_cond_timedwait(&g->freed, &g->lock, &until) == ETIMEDOUT)
				r = g->busy >= g->slots ? -EAGAIN : 0;
		g->waiting--;
	}
out:
	if (r == 0)
		g->busy++;
	else
		g->refused++;
	pthread_mutex_unlock(&g->lock);
	return r;
}

void gate_leave(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->busy--;
	pthread_cond_signal(&g->freed);
	pthread_mutex_unlock(&g->lock);
}

void gate_stats(struct gate *g, struct gate_stats *ret)
{
	pthread_mutex_lock(&g->lock);
	ret->busy = g->busy;
	ret->waiting = g->waiting;
	ret->refused = g->refused;
	pthread_mutex_unlock(&g->lock);
}
