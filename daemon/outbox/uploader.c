/* uploader.c - the threads that deliver the outbox, and when they retry.
 *
 * outbox_uploaders threads (default 4) run beside the FUSE threads. Each
 * takes the item that has waited longest among those due, owns it until
 * it must wait again, and puts it back. A step that failed in a way that
 * may pass (5xx, 429, no answer, the disk) is tried again after
 * exponential backoff with jitter - 1 s, 2 s, 4 s ... up to
 * outbox_retry_max - or after the platform's Retry-After when that is
 * longer. Only when an item has been failing like that for longer than
 * outbox_give_up does it end in failed/, with the last error.
 *
 * The threads are a pool of core/worker.c: each asks uploader_one for
 * an item, and sleeps on the monotonic clock until the next is due or
 * the outbox wakes it. The items are the outbox's list in memory (their
 * journal is the spool); in_flight gives each to one thread at a time. */
#include "uploader.h"
#include "deliver.h"
#include "item.h"
#include "outcome.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "retry.h"
#include "xalloc.h"

/* The longest an idle uploader sleeps before it looks again. */
#define OB_IDLE_MS 60000

static bool due_state(enum spool_state st)
{
	return st >= SPOOL_RECEIVED && st <= SPOOL_FAILING;
}

/* The due item that waited longest; else how long until one is due.
 * Caller holds ob->lock. */
static struct ob_item *pick(struct outbox *ob, int64_t now, int64_t *ret_wait)
{
	struct ob_item *best = NULL;
	int64_t wait = OB_IDLE_MS;

	for (struct ob_item *it = ob->items; it; it = it->next) {
		int64_t at = it->s.next_at > it->blocked_until ? it->s.next_at : it->blocked_until;

		if (it->in_flight || it->held_open || !due_state(it->s.state))
			continue;
		if (at > now) {
			wait = at - now < wait ? at - now : wait;
			continue;
		}
		if (!best || it->s.next_at < best->s.next_at)
			best = it;
	}
	*ret_wait = wait;
	return best;
}

static const char *failing_step(enum spool_state st)
{
	return st <= SPOOL_CREATING ? "create_instance" : st == SPOOL_CREATED ? "upload"
	       : st < SPOOL_SUBMITTED ? "process_next" : "finish";
}

/* A step must be tried again later: count it, or give up. */
static void retry_later(struct outbox *ob, struct ob_item *it, int r, struct app_answer *ans)
{
	int64_t now = outbox_now_ms(), delay;
	bool waiting = r == -EAGAIN; /* not a failure: a pause the step asked for */

	if (!waiting && due_state(it->s.state) && it->s.state < SPOOL_SUBMITTED &&
	    now - it->s.received_at > (int64_t)ob->cfg->outbox_give_up * 1000) {
		char *why = xasprintf("gave up after %u attempts over %lld s: %s", it->s.attempts + 1,
				      (long long)((now - it->s.received_at) / 1000), ans->summary);

		if (outcome_refuse(ob, it, failing_step(it->s.state), ans, why) == 0)
			outcome_finish(ob, it);
		free(why);
		return;
	}
	delay = waiting ? ans->retry_after_ms
			: retry_backoff_ms(it->s.attempts + 1, (int64_t)ob->cfg->outbox_retry_max * 1000,
					   ans->retry_after_ms);
	pthread_mutex_lock(&ob->lock);
	if (!waiting) {
		it->s.attempts++;
		free(it->s.last_error);
		it->s.last_error = xstrdup(ans->summary);
	}
	it->s.next_at = now + delay;
	pthread_mutex_unlock(&ob->lock);
	if (!waiting)
		log_warn("outbox: \"%s/%s\": %s; attempt %u, next in %lld ms",
			 ob->apps[it->app].id, it->s.rel, ans->summary, it->s.attempts,
			 (long long)delay);
	outbox_save(ob, it, false);
}

static void run(struct outbox *ob, struct ob_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	int r = 0;

	if (it->s.state < SPOOL_SUBMITTED)
		r = deliver_item(ob, it, &ans);
	if (r == 0 && (it->s.state == SPOOL_SUBMITTED || it->s.state == SPOOL_FAILING)) {
		r = outcome_finish(ob, it);
		if (r < 0) {
			app_answer_clear(&ans);
			ans.outcome = APP_LATER;
			snprintf(ans.summary, sizeof(ans.summary), "cannot write the outcome: %s",
				 strerror(-r));
		}
	}
	if (r < 0) {
		bool stopping;

		pthread_mutex_lock(&ob->lock);
		stopping = ob->stopping;
		pthread_mutex_unlock(&ob->lock);
		if (!stopping) /* at shutdown the journal says where to go on */
			retry_later(ob, it, r, &ans);
	}
	app_answer_clear(&ans);
}

/* One due item, worked to its next wait or its end (core/worker.h). */
static int uploader_one(void *ctx, int64_t *ret_wait_ms)
{
	struct outbox *ob = ctx;
	struct ob_item *it = NULL;
	int64_t wait = -1;

	pthread_mutex_lock(&ob->lock);
	if (!ob->stopping)
		it = pick(ob, outbox_now_ms(), &wait);
	if (!it) {
		pthread_mutex_unlock(&ob->lock);
		*ret_wait_ms = wait;
		return 0;
	}
	it->in_flight = true;
	pthread_mutex_unlock(&ob->lock);
	run(ob, it);
	pthread_mutex_lock(&ob->lock);
	it->in_flight = false;
	if (it->s.state == SPOOL_DONE || it->s.state == SPOOL_FAILED) {
		for (struct ob_item **p = &ob->items; *p; p = &(*p)->next)
			if (*p == it) {
				*p = it->next;
				break;
			}
		outbox_item_free(it);
	}
	pthread_mutex_unlock(&ob->lock);
	return 1;
}

void uploader_init(struct outbox *ob)
{
	worker_init(&ob->uploaders, "outbox", uploader_one, ob);
}

int uploader_start(struct outbox *ob)
{
	return worker_start_pool(&ob->uploaders, (unsigned)ob->cfg->outbox_uploaders);
}

void uploader_wake(struct outbox *ob)
{
	worker_wake(&ob->uploaders);
}

void uploader_stop(struct outbox *ob)
{
	worker_stop(&ob->uploaders);
}

void uploader_join(struct outbox *ob)
{
	worker_destroy(&ob->uploaders);
}
