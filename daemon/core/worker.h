/* worker.h - the one loop of a durable queue's worker thread.
 *
 * The instance-writes and inbox families each keep their queue in a
 * journal (items with a due time and a count of tries, core/journal.c,
 * core/retry.c); this is the thread that works it. It asks the family
 * to work one due item, again at once while there was one, and otherwise
 * sleeps until the next is due, or until worker_wake() (a new item), or
 * until worker_stop(). Its waits are on CLOCK_MONOTONIC, so a change of
 * the wall clock neither stalls nor hurries it. A wake that comes while
 * an item is being worked is not lost. The family's own lock is never
 * held by the loop: run_one takes it as it needs. */
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
	bool kicked;          /* protected by lock: worker_wake since the last look */
	bool stopping;        /* protected by lock */
	bool started;
	pthread_t thread;
};

/* Sets w up; no thread yet. */
void worker_init(struct worker *w, const char *name, worker_run_fn run_one, void *ctx);
int worker_start(struct worker *w); /* 0 or -errno, logged */
/* There is new work: look now. Any thread; never blocks for long. */
void worker_wake(struct worker *w);
/* Asks the loop to end after the item under way; no waiting. */
void worker_stop(struct worker *w);
bool worker_stopping(struct worker *w);
/* Stops, joins the thread, frees what init made; a w never started is fine. */
void worker_destroy(struct worker *w);

#endif
