/* bwatch.c - a sent transfer's receipt kept current after Published.
 *
 * Publication is not the end of a transfer: each recipient downloads
 * (DownloadStarted) and confirms (DownloadConfirmed), the transfer
 * becomes AllConfirmedDownloaded, and later Purged when it expires or
 * after the grace period. sent/<recipient>/<name>.json follows it: the
 * item stays in the journal, watching, and the receipt is written again
 * (whole, by rename: core/receipt.c) whenever the overview's statuses
 * change.
 *
 * Two ways make it look, both ending in the worker's one overview read
 * (GET filetransfer/{id}), so only the worker writes a receipt:
 *  - Broker's events: the sender gets downloadconfirmed,
 *    allconfirmeddownloaded, filepurged, fileneverconfirmeddownloaded
 *    about its transfers, polled by brevents.c for the inbox already. An
 *    event about a watched transfer makes its item due at once. The
 *    event alone cannot say which recipient confirmed (its subject is
 *    us), so the overview is read rather than the event applied.
 *  - the reconciling read, every broker_reconcile seconds: what an event
 *    lost, late, or turned off (no events scope) would miss. A read that
 *    fails waits (Retry-After when Broker gives one, else backoff) and is
 *    never given up: the receipt already says Published.
 * Watching ends at a final state (Purged, Failed, Cancelled), when the
 * transfer is gone (404), when the user removed the receipt, or after
 * WATCH_FOR_MS (Broker keeps a transfer at most 365 days). The item then
 * is sent; a restart goes on watching what was watching. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_broker.h"
#include "broker_i.h"
#include "config.h"
#include "log.h"
#include "receipt.h"
#include "xalloc.h"

/* a transfer lives at most 365 days (fileTransferTimeToLive), and some */
#define WATCH_FOR_MS (366LL * 86400 * 1000)

void br_facts_of(const struct queue_item *it, struct broker_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->resource = it->f[BF_RESOURCE];
	f->recipient = it->f[BF_RECIPIENT];
	f->name = it->f[BF_NAME];
	f->reference = it->f[BF_REFERENCE];
	f->transfer_id = it->f[BF_ID];
	f->checksum = it->f[BF_MD5];
	f->size = it->f[BF_SIZE] ? strtoull(it->f[BF_SIZE], NULL, 10) : 0;
	f->dropped_ms = it->created_at;
}

static char *receipt_folder(struct broker *b, const struct queue_item *it)
{
	return xasprintf("%s/broker/%s/sent", b->mountpoint, it->f[BF_RESOURCE]);
}

static int write_receipt(struct broker *b, const struct queue_item *it, const char *overview)
{
	struct broker_facts f;
	char *mdir = receipt_folder(b, it), *dir = NULL, *doc, *name;
	int r;

	br_facts_of(it, &f);
	doc = broker_receipt_doc(&f, overview);
	name = xasprintf("%s.json", it->f[BF_NAME]);
	r = receipt_dir(mdir, it->f[BF_RECIPIENT], &dir);
	if (r == 0)
		r = receipt_write(dir, name, doc, false, NULL);
	free(doc);
	free(name);
	free(dir);
	free(mdir);
	return r;
}

/* Nothing can change any more? */
static bool final(const char *signature)
{
	static const char *const ends[] = { "Purged", "Failed", "Cancelled" };
	size_t n = strcspn(signature ? signature : "", " ");

	for (size_t i = 0; signature && i < sizeof(ends) / sizeof(ends[0]); i++)
		if (n == strlen(ends[i]) && strncmp(signature, ends[i], n) == 0)
			return true;
	return false;
}

static void stop(struct broker *b, struct queue_item *it, const char *why)
{
	it->state = BR_SENT;
	it->done_at = queue_now_ms(b->q);
	it->due_at = 0;
	log_info("broker: \"%s\" no longer followed: %s", it->key, why);
}

static void next_look(struct broker *b, struct queue_item *it)
{
	it->tries = 0;
	it->due_at = queue_now_ms(b->q) + (int64_t)b->cfg->broker_reconcile * 1000;
	queue_set(&it->last_error, NULL);
}

static int first_id(void *ctx, struct queue_item *it)
{
	*(int64_t *)ctx = it->id;
	return 1;
}

/* An earlier transfer of the same name, still watched, has its receipt
 * replaced by this one's: it is no longer followed (it would write its
 * statuses over the new receipt). */
static void supersede(struct broker *b, const struct queue_item *it)
{
	struct queue_query qq = { .key = it->key, .states = QUEUE_STATE(BR_WATCHING),
				  .skip_id = it->id };
	struct queue_item old;
	int64_t id = 0;

	queue_list(b->q, &qq, first_id, &id);
	while (id && queue_get(b->q, id, &old) == 0) {
		stop(b, &old, "a newer transfer of the same name has the receipt");
		queue_save(b->q, &old);
		queue_item_clear(&old);
		id = 0;
		queue_list(b->q, &qq, first_id, &id);
	}
}

int br_watch_begin(struct broker *b, struct queue_item *it, const char *overview)
{
	char *sig = broker_overview_signature(overview);
	int r = write_receipt(b, it, overview);

	if (r == 0) {
		supersede(b, it);
		queue_set(&it->f[BF_STATUS], sig);
		it->state = BR_WATCHING;
		next_look(b, it);
		if (final(sig))
			stop(b, it, sig);
	}
	free(sig);
	return r;
}

static bool receipt_gone(struct broker *b, const struct queue_item *it)
{
	char *path = xasprintf("%s/broker/%s/sent/%s/%s.json", b->mountpoint,
			       it->f[BF_RESOURCE], it->f[BF_RECIPIENT], it->f[BF_NAME]);
	bool gone = access(path, F_OK) < 0 && errno == ENOENT;

	free(path);
	return gone;
}

void br_watch_step(struct broker *b, struct queue_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *doc = NULL, *status = NULL, *text = NULL, *sig;
	int r;

	if (receipt_gone(b, it)) {
		stop(b, it, "its receipt was removed");
		goto save;
	}
	r = broker_overview(b->a, it->f[BF_ID], &doc, &status, &text, &ans);
	if (r == -ECANCELED)
		goto out;
	if (r < 0) {
		if (ans.status == 404) {
			stop(b, it, "the transfer is gone (404)");
		} else {
			/* the receipt stands as it is; look again later: soon
			 * after an outage, at the usual pace after a refusal
			 * (401, 403: a token or right that an hour may mend) */
			queue_retry(b->q, it, ans.summary, ans.retry_after_ms);
			if (ans.outcome == APP_REFUSED)
				it->due_at = queue_now_ms(b->q) +
					     (int64_t)b->cfg->broker_reconcile * 1000;
			log_warn("broker: following \"%s\": %s; again later", it->key, ans.summary);
		}
		goto save;
	}
	sig = broker_overview_signature(doc);
	if (sig && (!it->f[BF_STATUS] || strcmp(sig, it->f[BF_STATUS]) != 0)) {
		if (write_receipt(b, it, doc) < 0) {
			queue_retry(b->q, it, "cannot write the receipt", -1);
			free(sig);
			goto save;
		}
		log_info("broker: \"%s\" is now %s", it->key, sig);
		queue_set(&it->f[BF_STATUS], sig);
	}
	next_look(b, it);
	if (final(sig))
		stop(b, it, sig);
	else if (queue_now_ms(b->q) - it->created_at > WATCH_FOR_MS)
		stop(b, it, "a year has passed");
	free(sig);
save:
	r = queue_save(b->q, it);
	if (r < 0)
		log_errno(r, "broker: cannot save \"%s\"", it->key);
out:
	app_answer_clear(&ans);
	free(doc);
	free(status);
	free(text);
}

void br_watch_nudge(void *ctx, const char *resource, const char *type, const char *id)
{
	struct broker *b = ctx;

	(void)resource;
	(void)type;
	pthread_mutex_lock(&b->nudge_lock);
	if (b->n_nudged < BR_NUDGES_MAX) {
		b->nudged = xrealloc(b->nudged, (b->n_nudged + 1) * sizeof(*b->nudged));
		b->nudged[b->n_nudged++] = xstrdup(id);
	}
	pthread_mutex_unlock(&b->nudge_lock);
	worker_wake(&b->worker);
}

void br_watch_drain(struct broker *b)
{
	char **ids;
	size_t n;

	pthread_mutex_lock(&b->nudge_lock);
	ids = b->nudged;
	n = b->n_nudged;
	b->nudged = NULL;
	b->n_nudged = 0;
	pthread_mutex_unlock(&b->nudge_lock);
	for (size_t i = 0; i < n; i++) {
		struct queue_query qq = { .states = QUEUE_STATE(BR_WATCHING) };
		struct queue_item it;
		int64_t found = 0;

		qq.match[BF_ID] = ids[i];
		queue_list(b->q, &qq, first_id, &found);
		if (found && queue_get(b->q, found, &it) == 0) {
			it.due_at = 0;
			queue_save(b->q, &it);
			queue_item_clear(&it);
		}
		free(ids[i]);
	}
	free(ids);
}
