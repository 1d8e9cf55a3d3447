/* inbox.c - confirming received instances, durably (see inbox.h).
 *
 * The journal is core's durable queue (core/queue.h) in
 * state_dir/inbox.db: an item per confirmation, keyed
 * "org/app/party/guid", pending until the platform answers 2xx (or 404:
 * nothing left to confirm), failed when it refuses for good (403, 400,
 * 409: api_app.h's one classifier), retried with backoff (queue_retry)
 * otherwise, and given up after inbox_give_up. An item stays after
 * success for KEEP_DONE_MS so the entry stays hidden even if a listing
 * fetched just before the confirmation is still cached.
 *
 *   rm --> pending --2xx, 404--> done (kept a week, then forgotten)
 *           ^   |  \--refused for good--> failed --rm again--> pending
 *           +---+   \--failing past inbox_give_up--> forgotten (back in inbox/)
 *        later (backoff)
 *
 * A state_dir of an earlier version kept its own table, confirmations;
 * its rows move into the queue when the journal is opened. */
#include "inbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_app.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "queue.h"
#include "states.h"
#include "worker.h"
#include "xalloc.h"

#define KEEP_DONE_MS (7LL * 24 * 3600 * 1000)
#define MAX_BACKOFF_MS (300 * 1000)

enum ib_state { IB_PENDING, IB_DONE, IB_FAILED, IB_N_STATES };
enum ib_field { IB_ORG, IB_APP, IB_PARTY, IB_GUID, IB_N_FIELDS };

static const char *const state_names[IB_N_STATES] = { "pending", "done", "failed" };
static const char *const field_names[IB_N_FIELDS] = { "org", "app", "party", "guid" };
static const struct queue_def queue_def = {
	.name = "inbox", .states = state_names, .n_states = IB_N_STATES,
	.fields = field_names, .n_fields = IB_N_FIELDS, .max_backoff_ms = MAX_BACKOFF_MS,
};

struct inbox {
	struct altinn *a;
	int give_up_s;        /* inbox_give_up: failing longer is given up */
	struct journal *j;
	struct queue *q;
	pthread_mutex_t lock; /* a confirmation's look and change are one step */
	struct worker worker; /* sends the confirmations (core/worker.c) */
	bool pruned;          /* the worker's own */
};

static int work_one(void *ctx, int64_t *ret_wait_ms);

static char *key_of(const char *org, const char *app, const char *party, const char *guid)
{
	return xasprintf("%s/%s/%s/%s", org, app, party, guid);
}

/* ---- an earlier version's table, moved into the queue once */

static const char *const old_cols[] = { "org", "app", "party", "guid", "state", "attempts",
					"last_error", "requested_at", "next_try_at", "done_at" };

static int import_row(void *ctx, const char *const *v)
{
	struct inbox *ib = ctx;
	struct queue_item it = { .state = IB_PENDING };
	int st, r;

	if (!v[0] || !v[1] || !v[2] || !v[3])
		return 0;
	it.key = key_of(v[0], v[1], v[2], v[3]);
	for (int i = 0; i < IB_N_FIELDS; i++)
		queue_set(&it.f[i], v[i]);
	if (state_parse(state_names, IB_N_STATES, v[4], &st))
		it.state = st;
	it.tries = v[5] ? (unsigned)atoi(v[5]) : 0;
	queue_set(&it.last_error, v[6]);
	/* the old table kept seconds */
	it.created_at = v[7] ? atoll(v[7]) * 1000 : 0;
	it.due_at = v[8] ? atoll(v[8]) * 1000 : 0;
	it.done_at = v[9] ? atoll(v[9]) * 1000 : 0;
	r = queue_add(ib->q, &it);
	queue_item_clear(&it);
	return r;
}

static int upgrade(struct inbox *ib)
{
	int r;

	if (!journal_has_table(ib->j, "confirmations"))
		return 0;
	r = journal_begin(ib->j, true);
	if (r == 0)
		r = journal_end(ib->j, journal_import(ib->j, "confirmations", old_cols,
						      (int)(sizeof(old_cols) / sizeof(old_cols[0])),
						      import_row, ib));
	return r;
}

int inbox_new(const struct config *cfg, struct altinn *a, struct inbox **ret)
{
	struct inbox *ib = xcalloc(1, sizeof(*ib));
	char *path = xasprintf("%s/inbox.db", cfg->state_dir);
	int r = 0;

	ib->a = a;
	ib->give_up_s = cfg->inbox_give_up;
	pthread_mutex_init(&ib->lock, NULL);
	worker_init(&ib->worker, "inbox", work_one, ib);
	r = journal_new("inbox", path, false, &ib->j);
	free(path);
	if (r == 0)
		r = queue_open(ib->j, &queue_def, &ib->q);
	if (r == 0)
		r = upgrade(ib);
	if (r < 0) {
		inbox_free(ib);
		return r;
	}
	*ret = ib;
	return 0;
}

bool inbox_hidden(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid)
{
	struct inbox *ib = ctx;
	char *key = key_of(org, app, party, guid);
	struct queue_item it;
	bool found;

	found = queue_find(ib->q, key, QUEUE_ALL_STATES, &it) == 0;
	if (found)
		queue_item_clear(&it);
	free(key);
	return found;
}

int inbox_confirm(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid)
{
	struct inbox *ib = ctx;
	struct queue_item it = { .state = IB_PENDING };
	const char *f[IB_N_FIELDS] = { org, app, party, guid };
	char *key = key_of(org, app, party, guid);
	int r;

	pthread_mutex_lock(&ib->lock);
	/* a second rm of the same instance changes nothing: confirming twice
	 * is harmless, and a failed one is tried again */
	r = queue_find(ib->q, key, QUEUE_ALL_STATES, &it);
	if (r == -ENOENT) {
		it = (struct queue_item){ .state = IB_PENDING, .key = key };
		key = NULL;
		for (int i = 0; i < IB_N_FIELDS; i++)
			queue_set(&it.f[i], f[i]);
		r = queue_add(ib->q, &it); /* synchronous=FULL: durable once it returns */
	} else if (r == 0 && it.state == IB_FAILED) {
		it.state = IB_PENDING;
		it.due_at = 0;
		it.created_at = queue_now_ms(ib->q);
		r = queue_save(ib->q, &it);
	}
	queue_item_clear(&it);
	free(key);
	if (r == 0) {
		log_info("inbox: confirming \"%s/%s\" %s/%s", org, app, party, guid);
		worker_wake(&ib->worker);
	} else {
		log_errno(r, "inbox: cannot record a confirmation");
	}
	pthread_mutex_unlock(&ib->lock);
	return r;
}

void inbox_counts(struct inbox *ib, unsigned long *ret_pending, unsigned long *ret_failed)
{
	uint64_t n;

	*ret_pending = *ret_failed = 0;
	if (queue_count(ib->q, &(struct queue_query){ .states = QUEUE_STATE(IB_PENDING) }, &n) == 0)
		*ret_pending = (unsigned long)n;
	if (queue_count(ib->q, &(struct queue_query){ .states = QUEUE_STATE(IB_FAILED) }, &n) == 0)
		*ret_failed = (unsigned long)n;
}

/* The outcome of one confirmation, by the one classifier of answers
 * (api_app.h): done (also 404: nothing left to confirm), given up after
 * inbox_give_up (forgotten: the entry is back in inbox/), refused for
 * good, or again later with backoff. Called with ib->lock held. */
static void record(struct inbox *ib, struct queue_item *it, int r, const struct app_answer *ans)
{
	bool gone = r < 0 && ans->status == 404;
	bool done = r == 0 || gone;
	bool given_up = !done && queue_given_up(ib->q, it, (int64_t)ib->give_up_s * 1000);
	bool permanent = !done && ans->outcome == APP_REFUSED;
	const char *org = it->f[IB_ORG], *app = it->f[IB_APP], *party = it->f[IB_PARTY],
		   *guid = it->f[IB_GUID];
	int64_t wait = 0;
	int w;

	if (given_up) { /* forgotten: the entry is back in inbox/ for another rm */
		w = queue_delete(ib->q, it->id);
	} else if (done || permanent) {
		it->state = done ? IB_DONE : IB_FAILED;
		it->done_at = queue_now_ms(ib->q);
		it->tries++;
		queue_set(&it->last_error, r == 0 ? NULL : ans->summary);
		w = queue_save(ib->q, it);
	} else {
		wait = queue_retry(ib->q, it, ans->summary, ans->retry_after_ms);
		w = queue_save(ib->q, it);
	}
	if (w < 0)
		log_errno(w, "inbox: cannot record a confirmation's outcome");
	if (r == 0)
		log_info("inbox: confirmed \"%s/%s\" %s/%s", org, app, party, guid);
	else if (gone)
		log_warn("inbox: \"%s/%s\" %s/%s is gone from the platform: nothing to confirm",
			 org, app, party, guid);
	else if (given_up)
		log_error("inbox: confirming \"%s/%s\" %s/%s given up after %d s "
			  "(inbox_give_up), the entry is back in inbox/: %s", org, app, party,
			  guid, ib->give_up_s, ans->summary);
	else if (permanent)
		log_error("inbox: the platform refused to confirm \"%s/%s\" %s/%s: %s", org, app,
			  party, guid, ans->summary);
	else
		log_warn("inbox: confirming \"%s/%s\" %s/%s failed (%s); again in %lld s", org,
			 app, party, guid, ans->summary, (long long)((wait + 999) / 1000));
}

static void prune(struct inbox *ib)
{
	struct queue_query qq = { .states = QUEUE_STATE(IB_DONE),
				  .done_before = queue_now_ms(ib->q) - KEEP_DONE_MS };

	queue_delete_where(ib->q, &qq);
}

/* One due confirmation (core/worker.h). */
static int work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct inbox *ib = ctx;
	struct app_answer ans = { .retry_after_ms = -1 };
	struct queue_item it;
	char *id;
	int r;

	if (!ib->pruned) {
		prune(ib);
		ib->pruned = true;
	}
	r = queue_next_due(ib->q, QUEUE_STATE(IB_PENDING), NULL, NULL, &it, ret_wait_ms);
	if (r != 1)
		return r;
	if (worker_stopping(&ib->worker)) {
		queue_item_clear(&it);
		return 1;
	}
	id = xasprintf("%s/%s", it.f[IB_PARTY], it.f[IB_GUID]);
	r = app_complete_instance(ib->a, it.f[IB_ORG], it.f[IB_APP], id, &ans);
	if (r != -ECANCELED) {
		pthread_mutex_lock(&ib->lock);
		record(ib, &it, r, &ans);
		pthread_mutex_unlock(&ib->lock);
	}
	app_answer_clear(&ans);
	queue_item_clear(&it);
	free(id);
	return 1;
}

int inbox_start(struct inbox *ib)
{
	return worker_start(&ib->worker);
}

void inbox_stop(struct inbox *ib)
{
	if (ib)
		worker_stop(&ib->worker);
}

void inbox_free(struct inbox *ib)
{
	if (!ib)
		return;
	worker_destroy(&ib->worker);
	queue_close(ib->q);
	journal_free(ib->j);
	pthread_mutex_destroy(&ib->lock);
	free(ib);
}

/* ---- the family, as fs/ and main.c see it (family.h) */

static int family_start(void *ctx)
{
	return inbox_start(ctx);
}

static void family_stop(void *ctx)
{
	inbox_stop(ctx);
}

static void family_free(void *ctx)
{
	inbox_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "apps/<org>/<app>/inbox/<partyId>-<instanceGuid>",
	  "a link to each completed instance not yet confirmed, oldest first; rm\n"
	  "confirms it (durably, with retries)\n",
	  "ls -l apps/{app}/inbox/" },
	{ NULL, NULL, NULL },
};

int inbox_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct inbox *ib;
	int r = inbox_new(deps->cfg, deps->a, &ib);

	if (r < 0)
		return log_errno(r, "cannot open the inbox state in \"%s\"", deps->cfg->state_dir);
	*ret = (struct fs_family){ .name = "inbox", .ctx = ib,
				   .inbox = { ib, inbox_hidden, inbox_confirm }, .readme = readme,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	return 0;
}
