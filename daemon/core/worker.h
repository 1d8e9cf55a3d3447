/* worker.h - the one loop of a durable queue's worker threads.
 *
 * The instance-writes and inbox families each keep their queue in a
 * journal (core/queue.h), and the outbox its items in memory over its
 * spool; this is the loop that works them, in one thread or a pool of
 * several (the outbox's uploaders). Each thread asks the family to work
 * one due item, again at once while there was one, and otherwise sleeps
 * until the next is due, or until worker_wake() (a new item), or until
 * worker_stop(). Its waits are on CLOCK_MONOTONIC, so a change of the
 * wall clock neither stalls nor hurries it. A wake that comes while an
 * item is being worked is not lost (a count of wakes, not a flag, so no
 * thread of a pool eats another's). The family's own lock is never held
 * by the loop: run_one takes it as it needs, and must hand one item to
 * one thread at a time. */
#ifndef ALTINNFS_WORKER_H
#define ALTINNFS_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Works at most one due item of the family (without the loop's lock):
 * 1 when it did (ask again at once), 0 when none is due (*ret_wait_ms:
 * until the next one, -1 when none is known), or -errno (again in 5 s). */
typedef int (*worker_run_fn)(void *ctx, int64_t *ret_wait_ms);

struct worker {
	const char *name; /* for logs: "inbox" */
	worker_run_fn run_one;
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* with lock, on CLOCK_MONOTONIC */
	unsigned long wakes;  /* protected by lock: worker_wake calls so far */
	bool stopping;        /* protected by lock */
	pthread_t *threads;   /* the started ones */
	unsigned n_threads;
};

/* Sets w up; no thread yet. */
void worker_init(struct worker *w, const char *name, worker_run_fn run_one, void *ctx);
int worker_start(struct worker *w); /* one thread: 0 or -errno, logged */
/* n threads working the same queue; on failure those started run on
 * (worker_destroy joins them) and -errno is returned, logged. */
int worker_start_pool(struct worker *w, unsigned n);
/* There is new work: look now. Any thread; never blocks for long. */
void worker_wake(struct worker *w);
/* Asks the loop to end after the item under way; no waiting. */
void worker_stop(struct worker *w);
bool worker_stopping(struct worker *w);
/* Stops, joins the threads, frees what init made; a w never started is fine. */
void worker_destroy(struct worker *w);

#endif
