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
 * from offset 0, at most ALT_BROKER_TUS_STARTS times. What ends in
 * failed/ or waits is left to bsend.c (br_tus_end), so the two files do
 * not call each other. */
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

/* how soon a transfer whose bytes are all in is looked at */
#define SETTLE_MS 1000
/* PATCHes refused with 409 (offset moved) in a row before waiting */
#define MAX_MISMATCH 3

static void save(struct broker *b, struct queue_item *it)
{
	int r = queue_save(b->q, it);

	if (r < 0)
		log_errno(r, "broker: cannot save \"%s\"", it->key);
}

static void set_tus(struct queue_item *it, long n)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", n);
	queue_set(&it->f[BF_TUS], buf);
}

/* Every byte is in: the transfer's status says the rest. */
static enum br_tus_end to_follow(struct broker *b, struct queue_item *it, int64_t after_ms)
{
	it->state = BR_FOLLOWING;
	it->tries = 0;
	it->due_at = after_ms ? queue_now_ms(b->q) + after_ms : 0;
	save(b, it);
	return BR_TUS_DONE;
}

/* HEAD found no upload: the transfer's status decides (broker_i.h). */
static enum br_tus_end gone(struct broker *b, struct queue_item *it, long n)
{
	log_warn("broker: \"%s\": the platform has no TUS upload %ld (expired, or never made)",
		 it->key, n);
	set_tus(it, -n);
	return to_follow(b, it, 0);
}

/* A request that did not work: how the item ends this step. */
static enum br_tus_end not_done(int r, const struct app_answer *ans)
{
	if (r == -ECANCELED)
		return BR_TUS_DONE; /* shutting down: HEAD goes on next time */
	return ans->outcome == APP_REFUSED ? BR_TUS_FAIL : BR_TUS_LATER;
}

/* A new upload: "n" saved before the POST, so a lost answer is looked
 * up with HEAD rather than made again. */
static int create(struct broker *b, struct queue_item *it, long n, uint64_t size,
		  struct app_answer *ans)
{
	int r;

	set_tus(it, n);
	save(b, it);
	r = broker_tus_create(b->a, it->f[BF_ID], size, ans);
	if (r == 0)
		log_info("broker: \"%s\": TUS upload %ld of %" PRIu64 " bytes made", it->key, n,
			 size);
	return r;
}

/* The platform's offset (HEAD): 0 with *off, or -errno (-ENOENT: none). */
static int ask_offset(struct broker *b, struct queue_item *it, uint64_t size, uint64_t *off,
		      struct app_answer *ans)
{
	int r = broker_tus_offset(b->a, it->f[BF_ID], off, ans);

	if (r == 0 && *off > size) {
		ans->outcome = APP_REFUSED;
		snprintf(ans->summary, sizeof(ans->summary),
			 "TUS HEAD: the platform holds %" PRIu64 " bytes of %" PRIu64, *off, size);
		r = -EIO;
	}
	return r;
}

enum br_tus_end br_step_tus(struct broker *b, struct queue_item *it, int fd, uint64_t size,
			    struct app_answer *ans)
{
	long n = it->f[BF_TUS] ? strtol(it->f[BF_TUS], NULL, 10) : 0;
	uint64_t chunk = b->cfg->broker_tus_chunk, off = 0, sent_from;
	int mismatch = 0, r;

	if (n <= 0) { /* none yet, or the last one is gone */
		if (-n >= ALT_BROKER_TUS_STARTS) {
			snprintf(ans->summary, sizeof(ans->summary),
				 "the TUS upload was lost by the platform %ld times (expired)", -n);
			ans->status = 0;
			return BR_TUS_FAIL;
		}
		n = 1 - n;
		r = create(b, it, n, size, ans);
		if (r < 0)
			return not_done(r, ans);
	} else {
		r = ask_offset(b, it, size, &off, ans);
		if (r == -ENOENT)
			return gone(b, it, n);
		if (r < 0)
			return not_done(r, ans);
		if (off > 0)
			log_info("broker: \"%s\": TUS upload resumes at %" PRIu64 " of %" PRIu64
				 " bytes", it->key, off, size);
	}
	sent_from = off;
	while (off < size) {
		uint64_t len = size - off < chunk ? size - off : chunk, now_at = 0;

		if (worker_stopping(&b->worker))
			return BR_TUS_DONE; /* HEAD goes on from here next time */
		r = broker_tus_patch(b->a, it->f[BF_ID], fd, off, len, &now_at, ans);
		if (r == 0 && now_at > off && now_at <= size) {
			off = now_at;
			mismatch = 0;
			continue;
		}
		if (r == -ECANCELED)
			return BR_TUS_DONE;
		if (r == 0 || ans->status == 409) {
			/* an offset we did not expect: the platform's is the truth */
			if (++mismatch > MAX_MISMATCH)
				return BR_TUS_LATER;
			r = ask_offset(b, it, size, &off, ans);
			if (r == -ENOENT)
				return gone(b, it, n);
			if (r < 0)
				return not_done(r, ans);
			continue;
		}
		if (ans->status == 404 || ans->status == 410)
			return gone(b, it, n);
		/* refused for good; or a lost answer, 5xx, 429: HEAD settles
		 * it on the next try */
		return ans->outcome == APP_REFUSED ? BR_TUS_FAIL : BR_TUS_LATER;
	}
	log_info("broker: \"%s\": TUS upload complete (%" PRIu64 " bytes, %" PRIu64 " sent now)",
		 it->key, size, size - sent_from);
	/* a HEAD that finds every byte in leaves Broker time to move on */
	return to_follow(b, it, sent_from == size ? SETTLE_MS : 0);
}
