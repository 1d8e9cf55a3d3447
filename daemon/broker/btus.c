/* btus.c - uploading a large Broker file by TUS, resumable (the field
 * "tus" is drawn in broker_i.h; the calls are platform/api_tus.h).
 *
 * A file of broker_tus_threshold bytes or more is not sent in one POST,
 * which a crash or a cut connection would make start over: its upload
 * is made once (POST with Upload-Length) and filled by PATCHes of
 * broker_tus_chunk bytes, each streamed from the spooled file (memory
 * does not grow with the file). The platform's offset is the truth: on
 * every new attempt (after a restart, a kill -9, a lost answer, a 409)
 * HEAD asks for it and the PATCHes go on from there, so what is sent
 * again is at most the chunk that was on its way. The journal keeps only
 * that an upload was made and how many times; no offset is saved per
 * chunk. An upload the platform no longer has (HEAD 404/410: it expired
 * after 24 h without a byte, or was never made) is settled by the
 * transfer's status: Failed (Broker fails a transfer stuck in
 * UploadStarted) goes to failed/, one still waiting gets a new upload
 * from offset 0, at most ALT_BROKER_TUS_STARTS times. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_tus.h"
#include "broker_i.h"
#include "caps.h"
#include "config.h"
#include "log.h"
#include "xalloc.h"

/* how soon a transfer whose bytes are all in is looked at */
#define SETTLE_MS 1000
/* PATCHes refused with 409 (offset moved) in a row before waiting */
#define MAX_MISMATCH 3

static void set_tus(struct queue_item *it, long n)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", n);
	queue_set(&it->f[BF_TUS], buf);
}

/* Every byte is in: the transfer's status says the rest. */
static void to_follow(struct broker *b, struct queue_item *it, int64_t after_ms)
{
	it->state = BR_FOLLOWING;
	it->tries = 0;
	it->due_at = after_ms ? queue_now_ms(b->q) + after_ms : 0;
	br_save(b, it);
}

/* HEAD found no upload: the transfer's status decides (broker_i.h). */
static void gone(struct broker *b, struct queue_item *it, long n)
{
	log_warn("broker: \"%s\": the platform has no TUS upload %ld (expired, or never made)",
		 it->key, n);
	set_tus(it, -n);
	to_follow(b, it, 0);
}

/* A new upload: "n" saved before the POST, so a lost answer is looked
 * up with HEAD rather than made again. 0, or -1 when the item is settled. */
static int create(struct broker *b, struct queue_item *it, long n, uint64_t size)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	int r;

	set_tus(it, n);
	br_save(b, it);
	r = broker_tus_create(b->a, it->f[BF_ID], size, &ans);
	if (r < 0) {
		if (ans.outcome == APP_REFUSED)
			br_fail(b, it, ans.summary, ans.status);
		else if (r != -ECANCELED)
			br_later(b, it, &ans);
	} else {
		log_info("broker: \"%s\": TUS upload %ld of %" PRIu64 " bytes made", it->key, n,
			 size);
	}
	app_answer_clear(&ans);
	return r < 0 ? -1 : 0;
}

/* The platform's offset: 0 with *off, or -1 when the item is settled. */
static int ask_offset(struct broker *b, struct queue_item *it, long n, uint64_t size,
		      uint64_t *off)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	int r = broker_tus_offset(b->a, it->f[BF_ID], off, &ans);

	if (r == -ENOENT) {
		gone(b, it, n);
	} else if (r < 0) {
		if (ans.outcome == APP_REFUSED)
			br_fail(b, it, ans.summary, ans.status);
		else if (r != -ECANCELED)
			br_later(b, it, &ans);
	} else if (*off > size) {
		snprintf(ans.summary, sizeof(ans.summary),
			 "TUS HEAD: the platform holds %" PRIu64 " bytes of %" PRIu64, *off, size);
		br_fail(b, it, ans.summary, 0);
		r = -EIO;
	}
	app_answer_clear(&ans);
	return r < 0 ? -1 : 0;
}

void br_step_tus(struct broker *b, struct queue_item *it, int fd, uint64_t size)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	long n = it->f[BF_TUS] ? strtol(it->f[BF_TUS], NULL, 10) : 0;
	uint64_t chunk = b->cfg->broker_tus_chunk, off = 0, sent_from = 0;
	int mismatch = 0;

	if (n <= 0) { /* none yet, or the last one is gone */
		if (-n >= ALT_BROKER_TUS_STARTS) {
			char *why = xasprintf("the TUS upload was lost by the platform %ld times "
					      "(expired)", -n);

			br_fail(b, it, why, 0);
			free(why);
			return;
		}
		if (create(b, it, 1 - n, size) < 0)
			return;
		n = 1 - n;
	} else if (ask_offset(b, it, n, size, &off) < 0) {
		return;
	} else if (off > 0) {
		log_info("broker: \"%s\": TUS upload resumes at %" PRIu64 " of %" PRIu64 " bytes",
			 it->key, off, size);
	}
	sent_from = off;
	while (off < size) {
		uint64_t len = size - off < chunk ? size - off : chunk, now_at = 0;
		int r;

		if (worker_stopping(&b->worker))
			goto out; /* HEAD goes on from here next time */
		r = broker_tus_patch(b->a, it->f[BF_ID], fd, off, len, &now_at, &ans);
		if (r == 0 && now_at > off && now_at <= size) {
			off = now_at;
			mismatch = 0;
			continue;
		}
		if (r == -ECANCELED)
			goto out;
		if (r == 0 || ans.status == 409) {
			/* an offset we did not expect: the platform's is the truth */
			if (++mismatch > MAX_MISMATCH) {
				br_later(b, it, &ans);
				goto out;
			}
			if (ask_offset(b, it, n, size, &off) < 0)
				goto out;
			continue;
		}
		if (ans.status == 404 || ans.status == 410) {
			gone(b, it, n);
		} else if (ans.outcome == APP_REFUSED) {
			br_fail(b, it, ans.summary, ans.status);
		} else {
			/* lost answer, 5xx, 429: HEAD settles it on the next try */
			br_later(b, it, &ans);
		}
		goto out;
	}
	log_info("broker: \"%s\": TUS upload complete (%" PRIu64 " bytes, %" PRIu64 " sent now)",
		 it->key, size, size - sent_from);
	/* a HEAD that finds every byte in leaves Broker time to move on */
	to_follow(b, it, sent_from == size ? SETTLE_MS : 0);
out:
	app_answer_clear(&ans);
}
