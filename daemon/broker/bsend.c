/* bsend.c - sending one Broker file transfer, a step at a time (the
 * states are drawn in broker_i.h).
 *
 * Each step's outcome is saved before the next is taken, so a crash at
 * any point resumes where it was. The one step that cannot simply be
 * repeated is initialize: Broker has no idempotency key, so the item is
 * marked "unsure" (saved) before the POST, and an item found unsure
 * (its answer was lost, or we crashed while asking) is first looked
 * for on the platform: a search of the resource's transfers sent by us
 * around the time we asked, matched by fileName and our own
 * sendersFileTransferReference (a random one per item). Only when none
 * matches, and the ask is old enough that it cannot still be on its way
 * (settle_ms), is it initialized again. An upload refused with 409 after a
 * crash means the bytes had arrived: the transfer's status decides. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "api_broker.h"
#include "broker_i.h"
#include "config.h"
#include "log.h"
#include "receipt.h"
#include "sha256.h"
#include "xalloc.h"

/* the search window around the time initialize was asked */
#define FIND_SLACK_MS (5 * 60 * 1000)
/* how soon a transfer in UploadProcessing is looked at again: a scan of
 * a small file takes about a second, so the first look comes soon and
 * later ones back off (250 ms, doubling, to FOLLOW_MAX_MS) */
#define FOLLOW_MS 250
#define FOLLOW_MAX_MS 30000

/* How long after an initialize whose answer was lost a search that finds
 * nothing is trusted: the request may still have been on its way or in
 * the works there (twice the request timeout, and some). */
static int64_t settle_ms(struct broker *b)
{
	return 2LL * b->cfg->timeout * 1000 + 5000;
}

static char *file_path(struct broker *b, const struct queue_item *it)
{
	return xasprintf("%s/broker/%s/outbox/%s/%s", b->cfg->state_dir, it->f[BF_RESOURCE],
			 it->f[BF_RECIPIENT], it->f[BF_NAME]);
}

static char *mount_dir(struct broker *b, const struct queue_item *it, const char *area)
{
	return xasprintf("%s/broker/%s/%s", b->mountpoint, it->f[BF_RESOURCE], area);
}

static void save(struct broker *b, struct queue_item *it)
{
	int r = queue_save(b->q, it);

	if (r < 0)
		log_errno(r, "broker: cannot save \"%s\"", it->key);
}

/* The end of an item: its bytes and why in failed/<recipient>/. */
static void fail(struct broker *b, struct queue_item *it, const char *why, long status)
{
	struct broker_facts f;
	struct receipt_bytes bytes = { NULL, NULL, 0 };
	char *doc, *dir = NULL, *mdir = mount_dir(b, it, "failed");
	char *from = br_outbox_path(b, it, "");
	char *disk = file_path(b, it);
	int r;

	br_facts_of(it, &f);
	f.error = why;
	f.http_status = status;
	doc = broker_receipt_doc(&f, NULL);
	if (access(disk, F_OK) == 0)
		bytes.move_from = from;
	r = receipt_dir(mdir, it->f[BF_RECIPIENT], &dir);
	if (r == 0)
		br_meta_end(b, it, dir); /* before the letter: a watcher of it finds both */
	if (r == 0)
		r = receipt_dead_letter(dir, it->f[BF_NAME], &bytes, doc, false, NULL);
	if (r < 0) {
		queue_retry(b->q, it, "cannot write the dead letter", -1);
		save(b, it);
	} else {
		it->state = BR_FAILED;
		it->done_at = queue_now_ms(b->q);
		queue_set(&it->last_error, why);
		save(b, it);
		log_error("broker: \"%s\" failed: %s", it->key, why);
	}
	free(doc);
	free(dir);
	free(mdir);
	free(from);
	free(disk);
}

/* Published: the receipt in sent/<recipient>/, the file and its sidecar
 * gone from outbox/, and the transfer watched from now on (bwatch.c). */
static void sent(struct broker *b, struct queue_item *it, const char *overview)
{
	char *from = br_outbox_path(b, it, "");
	int r;

	br_meta_end(b, it, NULL); /* the journal holds what it said */
	r = br_watch_begin(b, it, overview);
	if (r == 0 && unlink(from) < 0 && errno != ENOENT)
		r = -errno;
	if (r < 0) {
		queue_retry(b->q, it, "cannot write the receipt", -1);
		save(b, it);
	} else {
		queue_set(&it->last_error, NULL);
		save(b, it);
		log_info("broker: \"%s\" published as %s", it->key, it->f[BF_ID]);
	}
	free(from);
}

/* A step that failed in a way that may pass: later, or given up. */
static void later(struct broker *b, struct queue_item *it, const struct app_answer *ans)
{
	if (queue_given_up(b->q, it, (int64_t)b->cfg->broker_give_up * 1000)) {
		char *why = xasprintf("given up after %d s (broker_give_up): %s",
				      b->cfg->broker_give_up, ans->summary);

		fail(b, it, why, ans->status);
		free(why);
		return;
	}
	queue_retry(b->q, it, ans->summary, ans->retry_after_ms);
	save(b, it);
	log_warn("broker: \"%s\": %s; again later", it->key, ans->summary);
}

static void random_reference(char out[48])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		abort();
	snprintf(out, 48, "altinnfs-");
	for (int i = 0; i < 16; i++)
		snprintf(out + 9 + 2 * i, 3, "%02x", r[i]);
}

/* received: the MD5 and size of the bytes, a reference of our own, and
 * what the sidecar adds (-EINVAL with err when it is refused) */
static int prepare(struct broker *b, struct queue_item *it, char *err, size_t errlen)
{
	char md5[33], size[32], ref[48];
	char *path = file_path(b, it);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t n = 0;
	int r;

	free(path);
	if (fd < 0)
		return -errno;
	r = md5_fd(fd, md5, &n);
	close(fd);
	if (r < 0)
		return r;
	snprintf(size, sizeof(size), "%llu", (unsigned long long)n);
	random_reference(ref);
	queue_set(&it->f[BF_MD5], md5);
	queue_set(&it->f[BF_SIZE], size);
	queue_set(&it->f[BF_REFERENCE], ref);
	return br_meta_load(b, it, err, errlen);
}

/* The folder's recipient, then the sidecar's: NULL-ended, pointing into
 * *ret_copy (malloc'd). */
static const char **recipients_of(const struct queue_item *it, char **ret_copy)
{
	char *copy = xstrdup(it->f[BF_RECIPIENTS] ? it->f[BF_RECIPIENTS] : ""), *save = NULL;
	const char **v = xcalloc(strlen(copy) / 2 + 2, sizeof(*v));
	size_t n = 0;

	v[n++] = it->f[BF_RECIPIENT];
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		v[n++] = t;
	*ret_copy = copy;
	return v;
}

struct taken_ctx {
	struct broker *b;
	int64_t self;
};

static int any(void *ctx, struct queue_item *it)
{
	(void)it;
	*(bool *)ctx = true;
	return 1;
}

/* Does another item hold transfer id already? (A reference the user
 * gave twice must not settle two items with one transfer.) */
static bool id_taken(void *ctx, const char *id)
{
	struct taken_ctx *t = ctx;
	struct queue_query qq = { .skip_id = t->self, .limit = 1 };
	bool found = false;

	qq.match[BF_ID] = id;
	queue_list(t->b->q, &qq, any, &found);
	return found;
}

/* An initialize whose answer was lost: the transfer, looked for. */
static int find_lost(struct broker *b, struct queue_item *it, int64_t at, int64_t now,
		     char **ret_id, struct app_answer *ans)
{
	struct taken_ctx t = { b, it->id };
	struct broker_match want = { .file_name = it->f[BF_NAME], .reference = it->f[BF_REFERENCE],
				     .checksum = it->f[BF_MD5], .recipient = it->f[BF_RECIPIENT],
				     .taken = id_taken, .ctx = &t };

	return broker_find(b->a, it->f[BF_RESOURCE], at - FIND_SLACK_MS, now + FIND_SLACK_MS,
			   &want, ret_id, ans);
}

static void step_initialize(struct broker *b, struct queue_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *rcopy = NULL;
	const char **recipients = recipients_of(it, &rcopy);
	char *sender = NULL, *id = NULL, asked[32];
	int64_t now = queue_now_ms(b->q);
	int r;

	if (it->f[BF_UNSURE]) { /* asked before, answer unknown: look first */
		int64_t at = it->f[BF_ASKED_AT] ? strtoll(it->f[BF_ASKED_AT], NULL, 10) : now;

		r = find_lost(b, it, at, now, &id, &ans);
		if (r == 0) {
			log_info("broker: \"%s\" was initialized as %s (found)", it->key, id);
			goto have_id;
		}
		if (r == -ENOENT && now - at < settle_ms(b)) {
			/* a request that timed out here may still be under way
			 * there: look again before asking again */
			app_answer_clear(&ans);
			snprintf(ans.summary, sizeof(ans.summary),
				 "initialize: the answer was lost and the transfer is not "
				 "found yet; looking again");
			r = -EAGAIN;
		}
		if (r != -ENOENT) {
			if (r != -ECANCELED)
				later(b, it, &ans);
			goto out;
		}
	}
	r = broker_sender(b->a, &sender);
	if (r < 0) {
		snprintf(ans.summary, sizeof(ans.summary),
			 "initialize: the token names no organisation number (%s)", strerror(-r));
		ans.status = 0;
		later(b, it, &ans);
		goto out;
	}
	snprintf(asked, sizeof(asked), "%lld", (long long)now);
	queue_set(&it->f[BF_UNSURE], "1");
	queue_set(&it->f[BF_ASKED_AT], asked);
	save(b, it); /* before the POST: a crash from here on looks first */
	r = broker_initialize(b->a,
			      &(struct broker_init){ .resource = it->f[BF_RESOURCE],
						     .file_name = it->f[BF_NAME],
						     .reference = it->f[BF_REFERENCE],
						     .sender = sender, .recipients = recipients,
						     .checksum = it->f[BF_MD5],
						     .property_list = it->f[BF_PROPS] },
			      &id, &ans);
	if (r < 0) {
		if (ans.outcome == APP_REFUSED) {
			fail(b, it, ans.summary, ans.status);
		} else if (r != -ECANCELED) {
			if (ans.outcome == APP_LATER) /* not done: no need to look */
				queue_set(&it->f[BF_UNSURE], NULL);
			later(b, it, &ans);
		}
		goto out;
	}
have_id:
	queue_set(&it->f[BF_ID], id);
	queue_set(&it->f[BF_UNSURE], NULL);
	it->state = BR_UPLOADING;
	it->tries = 0;
	it->due_at = 0;
	save(b, it);
out:
	app_answer_clear(&ans);
	free(sender);
	free(id);
	free(recipients);
	free(rcopy);
}

static void step_upload(struct broker *b, struct queue_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *path = file_path(b, it);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t size = strtoull(it->f[BF_SIZE] ? it->f[BF_SIZE] : "0", NULL, 10);
	int r;

	free(path);
	if (fd < 0) {
		char *why = xasprintf("the file is gone from outbox/ (%s)", strerror(errno));

		fail(b, it, why, 0);
		free(why);
		return;
	}
	if (size > 0 && size >= b->cfg->broker_tus_threshold) { /* large: btus.c */
		enum br_tus_end end = br_step_tus(b, it, fd, size, &ans);

		close(fd);
		if (end == BR_TUS_FAIL)
			fail(b, it, ans.summary, ans.status);
		else if (end == BR_TUS_LATER)
			later(b, it, &ans);
		app_answer_clear(&ans);
		return;
	}
	r = broker_upload(b->a, it->f[BF_ID], fd, size, &ans);
	close(fd);
	if (r == -ECANCELED) {
		app_answer_clear(&ans);
		return;
	}
	if (r == 0 || ans.outcome == APP_UNKNOWN || ans.status == 409) {
		/* uploaded, maybe uploaded, or uploaded before a crash: the
		 * transfer's status decides */
		it->state = BR_FOLLOWING;
		it->tries = 0;
		it->due_at = 0;
		save(b, it);
	} else if (ans.outcome == APP_REFUSED) {
		fail(b, it, ans.summary, ans.status);
	} else {
		later(b, it, &ans);
	}
	app_answer_clear(&ans);
}

static void step_follow(struct broker *b, struct queue_item *it)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *doc = NULL, *status = NULL, *text = NULL;
	int r = broker_overview(b->a, it->f[BF_ID], &doc, &status, &text, &ans);

	if (r < 0) {
		if (r != -ECANCELED)
			later(b, it, &ans);
		goto out;
	}
	queue_set(&it->f[BF_STATUS], status);
	if (!status) {
		snprintf(ans.summary, sizeof(ans.summary), "overview: no fileTransferStatus");
		later(b, it, &ans);
	} else if (strcmp(status, "Published") == 0 ||
		   strcmp(status, "AllConfirmedDownloaded") == 0) {
		sent(b, it, doc);
	} else if (strcmp(status, "Failed") == 0 || strcmp(status, "Cancelled") == 0 ||
		   strcmp(status, "Purged") == 0) {
		char *why = xasprintf("%s: %s", status, text ? text : "");

		fail(b, it, why, 0);
		free(why);
	} else if (strcmp(status, "Initialized") == 0 || strcmp(status, "UploadStarted") == 0) {
		it->state = BR_UPLOADING; /* the bytes never arrived whole */
		it->due_at = 0;
		save(b, it);
	} else { /* UploadProcessing: the virus scan */
		int64_t wait = FOLLOW_MS << (it->tries < 7 ? it->tries : 7);

		it->tries++;
		it->due_at = queue_now_ms(b->q) + (wait < FOLLOW_MAX_MS ? wait : FOLLOW_MAX_MS);
		save(b, it);
	}
out:
	app_answer_clear(&ans);
	free(doc);
	free(status);
	free(text);
}

int br_work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct broker *b = ctx;
	struct queue_item it;
	char err[300] = "";
	int r;

	br_watch_drain(b);
	r = queue_next_due(b->q, BR_DUE, NULL, NULL, &it, ret_wait_ms);
	if (r != 1)
		return r;
	if (worker_stopping(&b->worker)) {
		queue_item_clear(&it);
		return 1;
	}
	pthread_mutex_lock(&b->lock);
	if (it.state == BR_RECEIVED) {
		/* from here on the user's changes to the file are EBUSY */
		r = prepare(b, &it, err, sizeof(err));
		if (r == 0) {
			it.state = BR_INITIALIZING;
			save(b, &it);
		}
	}
	pthread_mutex_unlock(&b->lock);
	if (it.state == BR_RECEIVED) {
		if (r == -ENOENT)
			queue_delete(b->q, it.id); /* removed before it was sent */
		else if (!*err)
			log_errno(r, "broker: cannot read \"%s\"", it.key);
		if (r == -EINVAL && *err) {
			char *why = xasprintf("%s.meta.json: %s", it.f[BF_NAME], err);

			fail(b, &it, why, 0);
			free(why);
		} else if (r != -ENOENT) {
			char *why = xasprintf("cannot read the file: %s", strerror(-r));

			fail(b, &it, why, 0);
			free(why);
		}
		queue_item_clear(&it);
		return 1;
	}
	switch (it.state) {
	case BR_INITIALIZING:
		step_initialize(b, &it);
		break;
	case BR_UPLOADING:
		step_upload(b, &it);
		break;
	case BR_FOLLOWING:
		step_follow(b, &it);
		break;
	case BR_WATCHING:
		br_watch_step(b, &it);
		break;
	default:
		break;
	}
	queue_item_clear(&it);
	return 1;
}
