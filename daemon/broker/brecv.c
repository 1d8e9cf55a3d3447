/* brecv.c - receiving: Broker transfers sent to us, as inbox/ folders.
 *
 * MOUNT/broker/<resourceId>/inbox/<fileTransferId>/ holds transfer.json
 * (the overview) and the file under its own name, for each transfer
 * Published to the token's organisation and not confirmed by it. A
 * download changes our recipient status on the platform, so showing an
 * entry downloads nothing: the file is made with the transfer's size and
 * no bytes (sparse), and its bytes are fetched when a user first opens it
 * for reading (the area's fill hook: brfill.c). Broker's events make new
 * entries appear sooner than the next search: polled (brevents.c), and
 * with push on, pushed by the webhook (brpush.c).
 *
 * Entries come from a reconciling search (brecv_search, twice a round:
 * our status Initialized, then DownloadStarted, so a transfer moving
 * between them while we look is seen by the second) every broker_poll
 * seconds, never more than 10 searches a minute (Broker's limit), and a
 * 429 waits out its Retry-After. An entry whose transfer is no longer in
 * a complete answer (fewer than 100 ids) was confirmed elsewhere,
 * expired or purged: it goes away.
 *
 * rm of the file (or of the folder) confirms: the confirmation is
 * journaled (state_dir/broker.db, queue "broker_in") before the rm
 * returns and sent by the worker with retries across restarts and
 * outages. Broker refuses a confirmation before a download has started,
 * so a file never read is first probed (one byte, Range: bytes=0-0),
 * which records DownloadStarted without fetching the file. Once Broker
 * has the confirmation the rest of the folder is removed.
 *
 *   shown --rm--> confirming --204--> tidy --5 s--> confirmed (folder removed)
 *     |                  \--404, not Published any more--> gone
 *     +--no longer listed--> gone (folder removed) */
#include "brecv_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_brecv.h"
#include "api_broker.h"
#include "config.h"
#include "mountio.h"
#include "log.h"
#include "retry.h"
#include "xalloc.h"

/* how long after Broker took a confirmation the rest of the folder is
 * removed: a user's rm -r of it is over by then, and does not find its
 * files gone under it */
#define TIDY_AFTER_MS 5000

static const char *const state_names[RX_N_STATES] = {
	"shown", "confirming", "confirmed", "gone", "cursor", "tidy",
};
static const char *const field_names[RF_N_FIELDS] = {
	"resource", "file_transfer_id", "name", "size", "checksum", "fetched", "probed", "sender",
};
static const struct queue_def queue_def = {
	.name = "broker_in", .states = state_names, .n_states = RX_N_STATES,
	.fields = field_names, .n_fields = RF_N_FIELDS, .max_backoff_ms = MAX_BACKOFF_MS,
};

/* ---- the search budget: SEARCHES_PER_MINUTE in any 60 s */

/* 0 when a search may be made now (and counts it), else the ms to wait */
static int64_t take_search(struct brecv *rx)
{
	int64_t now = retry_mono_ms();
	unsigned slot = rx->n_searches % SEARCHES_PER_MINUTE;

	if (rx->n_searches >= SEARCHES_PER_MINUTE && now - rx->searches[slot] < 60000)
		return 60000 - (now - rx->searches[slot]);
	rx->searches[slot] = now;
	rx->n_searches++;
	return 0;
}

static void set_error(struct brecv *rx, const char *e)
{
	pthread_mutex_lock(&rx->lock);
	free(rx->last_error);
	rx->last_error = e ? xstrdup(e) : NULL;
	pthread_mutex_unlock(&rx->lock);
}

/* An entry ends: journaled, then its folder removed. */
static void ended(struct brecv *rx, struct queue_item *it, int state, const char *why)
{
	it->state = state;
	it->done_at = queue_now_ms(rx->q);
	queue_set(&it->last_error, why);
	if (queue_save(rx->q, it) == 0)
		brecv_remove_entry(rx, it);
}

/* ---- a round of searches */

struct seen {
	char **ids;
	size_t n, cap;
};

static bool seen_has(const struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return true;
	return false;
}

/* Takes the ids of entries a complete answer no longer names (under the
 * journal's lock: nothing else is done here). */
static int vanished(void *ctx, struct queue_item *it)
{
	struct seen *s = ((struct seen **)ctx)[0], *gone = ((struct seen **)ctx)[1];

	if (it->f[RF_ID] && !seen_has(s, it->f[RF_ID]) && gone->n < gone->cap) {
		gone->ids[gone->n++] = it->key;
		it->key = NULL;
	}
	return 0;
}

/* Removes the entries of a complete answer that no longer names them:
 * confirmed elsewhere, expired or purged. */
static void vanish(struct brecv *rx, const char *resource, const struct seen *seen)
{
	char *prefix = xasprintf("%s/", resource);
	struct queue_query qq = { .key_prefix = prefix, .states = QUEUE_STATE(RX_SHOWN),
				  .limit = 1000 };
	struct seen gone = { .ids = xcalloc(1000, sizeof(char *)), .cap = 1000 };
	const struct seen *ctx[2] = { seen, &gone };

	queue_list(rx->q, &qq, vanished, ctx);
	for (size_t i = 0; i < gone.n; i++) {
		struct queue_item it;

		if (queue_find(rx->q, gone.ids[i], QUEUE_STATE(RX_SHOWN), &it) == 0) {
			log_info("broker: transfer %s is no longer Published to us: gone from "
				 "inbox/", it.f[RF_ID]);
			ended(rx, &it, RX_GONE, "no longer listed as Published to us");
			queue_item_clear(&it);
		}
		free(gone.ids[i]);
	}
	free(gone.ids);
	free(prefix);
}

/* Searches one resource; 0 when done, else the ms until it may go on. */
static int64_t poll_resource(struct brecv *rx, const char *resource)
{
	static const char *const statuses[] = { "Initialized", "DownloadStarted" };
	struct seen seen = { 0 };
	bool complete = true;
	int64_t wait = 0;

	for (size_t s = 0; s < 2 && wait == 0; s++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		char **ids = NULL;
		size_t n = 0;

		pthread_mutex_lock(&rx->lock);
		wait = take_search(rx);
		pthread_mutex_unlock(&rx->lock);
		if (wait)
			break;
		if (brecv_search(rx->a, resource, statuses[s], &ids, &ans) < 0) {
			set_error(rx, ans.summary);
			log_warn("broker: inbox of %s: %s", resource, ans.summary);
			wait = ans.status == 429 && ans.retry_after_ms > 0 ? ans.retry_after_ms
									   : rx->cfg->broker_poll * 1000L;
			app_answer_clear(&ans);
			break;
		}
		for (; ids[n]; n++) {
			long w = -1;

			if (seen.n == seen.cap) {
				seen.cap = seen.cap ? seen.cap * 2 : 64;
				seen.ids = xrealloc(seen.ids, seen.cap * sizeof(*seen.ids));
			}
			seen.ids[seen.n++] = xstrdup(ids[n]);
			if (!brecv_known(rx, resource, ids[n]) &&
			    brecv_show(rx, resource, ids[n], &w) < 0 && w > 0)
				wait = w;
		}
		complete = complete && n < 100;
		brecv_ids_free(ids);
		app_answer_clear(&ans);
	}
	if (wait == 0 && complete)
		vanish(rx, resource, &seen);
	for (size_t i = 0; i < seen.n; i++)
		free(seen.ids[i]);
	free(seen.ids);
	return wait;
}

static void poll_all(struct brecv *rx)
{
	int64_t wait = 0;

	if (!rx->me && broker_sender(rx->a, &rx->me) < 0) {
		set_error(rx, "the token names no organisation");
		rx->next_poll_ms = retry_mono_ms() + rx->cfg->broker_poll * 1000L;
		return;
	}
	for (size_t i = 0; rx->resources[i] && wait == 0 && !worker_stopping(&rx->worker); i++)
		wait = poll_resource(rx, rx->resources[i]);
	if (wait == 0) {
		/* what ended a month ago cannot come back from a search */
		queue_delete_where(rx->q, &(struct queue_query){
			.states = QUEUE_STATE(RX_CONFIRMED) | QUEUE_STATE(RX_GONE),
			.done_before = queue_now_ms(rx->q) - 30LL * 86400 * 1000 });
		set_error(rx, NULL);
		pthread_mutex_lock(&rx->lock);
		rx->last_poll_ms = retry_wall_ms();
		pthread_mutex_unlock(&rx->lock);
		wait = rx->cfg->broker_poll * 1000L;
	}
	rx->next_poll_ms = retry_mono_ms() + wait;
}

/* ---- confirming */


static void confirm_one(struct brecv *rx, struct queue_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	const char *id = it->f[RF_ID];
	int r = 0;

	if (!(it->f[RF_FETCHED] || it->f[RF_PROBED])) {
		/* never read: Broker wants a started download first */
		r = brecv_download(rx->a, id, -1, true, NULL, NULL, &ans);
		if (r == 0) {
			queue_set(&it->f[RF_PROBED], "1");
			queue_save(rx->q, it);
		}
	}
	if (r == 0) {
		app_answer_clear(&ans);
		ans = (struct app_answer){ .retry_after_ms = -1 };
		r = brecv_confirm(rx->a, id, &ans);
	}
	if (r == 0) {
		log_info("broker: transfer %s confirmed", id);
		it->state = RX_TIDY;
		it->due_at = queue_now_ms(rx->q) + TIDY_AFTER_MS;
		queue_set(&it->last_error, NULL);
		queue_save(rx->q, it);
	} else if (ans.status == 404 ||
		   (ans.status == 400 && ans.detail && strstr(ans.detail, "when it is published"))) {
		log_warn("broker: transfer %s cannot be confirmed: %s", id, ans.summary);
		ended(rx, it, RX_GONE, ans.summary);
	} else {
		if (ans.status == 400 && ans.detail && strstr(ans.detail, "downloaded"))
			queue_set(&it->f[RF_PROBED], NULL); /* probe again */
		log_warn("broker: confirming transfer %s: %s (again in %lld ms)", id, ans.summary,
			 (long long)queue_retry(rx->q, it, ans.summary, ans.retry_after_ms));
		queue_save(rx->q, it);
	}
	app_answer_clear(&ans);
}

/* A transfer a push named (brpush.c): shown unless known already. */
static bool push_one(struct brecv *rx)
{
	char *resource, *id;
	long w = -1;

	if (!brpush_take(rx->push, &resource, &id))
		return false;
	if ((rx->me || broker_sender(rx->a, &rx->me) == 0) && !brecv_known(rx, resource, id))
		brecv_show(rx, resource, id, &w); /* a 429: the poll and the search catch up */
	free(resource);
	free(id);
	return true;
}

static int run_one(void *ctx, int64_t *ret_wait_ms)
{
	struct brecv *rx = ctx;
	struct queue_item it;
	int64_t wait = -1, now;
	int r = queue_next_due(rx->q, QUEUE_STATE(RX_CONFIRMING) | QUEUE_STATE(RX_TIDY), NULL,
			       NULL, &it, &wait);

	if (r == 1) {
		if (it.state == RX_TIDY)
			ended(rx, &it, RX_CONFIRMED, NULL);
		else
			confirm_one(rx, &it);
		queue_item_clear(&it);
		return 1;
	}
	if (push_one(rx))
		return 1;
	now = retry_mono_ms();
	if (now >= rx->next_poll_ms) {
		poll_all(rx);
		return 1;
	}
	if (now >= rx->next_events_ms) {
		rx->next_events_ms = retry_mono_ms() + brevents_round(rx);
		return 1;
	}
	if (wait < 0 || wait > rx->next_poll_ms - now)
		wait = rx->next_poll_ms - now;
	if (wait > rx->next_events_ms - now)
		wait = rx->next_events_ms - now;
	*ret_wait_ms = wait;
	return 0;
}

/* ---- the area's hooks */

/* Journals the confirmation of the entry id (idempotent). */
static int journal_confirm(struct brecv *rx, const char *resource, const char *id)
{
	char *key = brecv_key(resource, id);
	struct queue_item it;
	int r = queue_find(rx->q, key, QUEUE_STATE(RX_SHOWN), &it);

	free(key);
	if (r == -ENOENT)
		return 0; /* confirming already, or not ours */
	if (r < 0)
		return r;
	it.state = RX_CONFIRMING;
	it.due_at = 0;
	it.tries = 0;
	r = queue_save(rx->q, &it);
	if (r == 0)
		log_info("broker: transfer %s removed from inbox/: confirming", id);
	queue_item_clear(&it);
	worker_wake(&rx->worker);
	return r;
}

int brecv_check(struct brecv *rx, const struct local_call *c)
{
	char id[256];
	int depth = brecv_split(c->rel, id, sizeof(id));

	if (c->op == LOCAL_RELEASE)
		return 0;
	if (c->op != LOCAL_REMOVE)
		return -EPERM; /* what Broker sent is read and removed, nothing else */
	if (depth == 2 && id[0] != '.')
		return journal_confirm(rx, c->scope, id);
	return 0;
}

void brecv_done(struct brecv *rx, const struct local_call *c)
{
	char id[256];

	if (c->op == LOCAL_REMOVE && brecv_split(c->rel, id, sizeof(id)) == 1 && id[0] != '.')
		journal_confirm(rx, c->scope, id);
}

/* ---- status.json */

static int count_live(void *ctx, struct queue_item *it)
{
	struct broker_status *st = ctx;

	if (it->state == RX_SHOWN)
		st->inbox++;
	else
		st->confirming++;
	return 0;
}

void brecv_status(struct brecv *rx, const char *resource, struct broker_status *st)
{
	char *prefix = xasprintf("%s/", resource);
	struct queue_item it;

	queue_list(rx->q, &(struct queue_query){ .key_prefix = prefix, .states = RX_LIVE },
		   count_live, st);
	queue_count(rx->q, &(struct queue_query){ .key_prefix = prefix,
						  .states = QUEUE_STATE(RX_CONFIRMED) |
							    QUEUE_STATE(RX_TIDY) },
		    &st->confirmed);
	pthread_mutex_lock(&rx->lock);
	st->searched_ms = rx->last_poll_ms;
	st->inbox_error = rx->last_error ? xstrdup(rx->last_error) : NULL;
	st->events_off = rx->events_off ? xstrdup(rx->events_off) : NULL;
	pthread_mutex_unlock(&rx->lock);
	st->push = rx->push != NULL;
	brpush_status(rx->push, resource, &st->push_subscription, &st->push_validated);
	free(prefix);
	prefix = xasprintf("~events/%s", resource);
	if (queue_find(rx->q, prefix, QUEUE_STATE(RX_CURSOR), &it) == 0) {
		st->events_cursor = it.f[RF_ID];
		it.f[RF_ID] = NULL;
		queue_item_clear(&it);
	}
	free(prefix);
}

/* ---- life */

int brecv_new(const struct family_deps *deps, struct journal *j, char **resources,
	      struct brecv **ret)
{
	struct brecv *rx = xcalloc(1, sizeof(*rx));
	int r = queue_open(j, &queue_def, &rx->q);

	if (r < 0) {
		free(rx);
		return r;
	}
	rx->cfg = deps->cfg;
	rx->a = deps->a;
	rx->mountpoint = xstrdup(deps->mountpoint);
	rx->resources = resources;
	rx->safe_name = deps->safe_name;
	pthread_mutex_init(&rx->fill_lock, NULL);
	pthread_mutex_init(&rx->lock, NULL);
	worker_init(&rx->worker, "broker-in", run_one, rx);
	rx->push = brpush_new(rx, deps->push);
	*ret = rx;
	return 0;
}

int brecv_start(struct brecv *rx)
{
	return worker_start(&rx->worker);
}

void brecv_stop(struct brecv *rx)
{
	if (!rx)
		return;
	brpush_stop(rx->push);
	worker_stop(&rx->worker);
}

void brecv_free(struct brecv *rx)
{
	if (!rx)
		return;
	brpush_free(rx->push); /* its pushes wake the worker */
	worker_destroy(&rx->worker);
	queue_close(rx->q);
	pthread_mutex_destroy(&rx->fill_lock);
	pthread_mutex_destroy(&rx->lock);
	free(rx->me);
	free(rx->last_error);
	free(rx->events_off);
	free(rx->mountpoint);
	free(rx);
}
