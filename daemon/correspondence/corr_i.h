/* corr_i.h - what corr.c (the family, its folders and journal) and
 * csend.c (sending one message) share; private to daemon/correspondence/.
 *
 * A message's journal item, in core's durable queue
 * (state_dir/correspondence.db), keyed "<resourceId>/<name>", with a
 * random seed from which each recipient's idempotentKey is derived:
 *
 *   rename into outbox/ --> received --read and checked--> sending
 *     --one initialize per recipient, each result saved--> following (receipt)
 *     --every correspondence Published, Failed or further--> sent
 *        |  refused locally --> failed (the folder and why)
 *        |  every recipient refused --> failed
 *   following: fast (seconds) until each is published, then a slow
 *   reconciling read of /details every correspondence_reconcile seconds
 *   until each is final or CORR_FOLLOW_FOR_MS has passed; meanwhile the
 *   events feed (cfollow.c) moves statuses as they happen.
 *   A lost answer or a crash: the same key again; 409 means it was made,
 *   and the list by idempotentKey names it. Each step that fails in a way
 *   that may pass is retried with backoff until CORR_GIVE_UP_MS. */
#ifndef ALTINNFS_CORR_I_H
#define ALTINNFS_CORR_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "worker.h"

struct altinn;
struct config;
struct journal;

enum cr_state { CR_RECEIVED, CR_SENDING, CR_SENT, CR_FAILED, CR_FOLLOWING, CR_CURSOR,
		CR_N_STATES };
/* CF_SLOW: set once every correspondence is past publication (the
 * reconciling read's slow pace from then on); a resource's events
 * cursor item (key CR_CURSOR_KEY "<resourceId>", state CR_CURSOR) keeps
 * the last event id taken in CF_CURSOR and the next file's number in
 * CF_EVSEQ. */
enum cr_field { CF_RESOURCE, CF_NAME, CF_SEED, CF_RESULTS, CF_ATTACHMENTS, CF_SLOW, CF_CURSOR,
		CF_EVSEQ, CF_N_FIELDS };
#define CR_CURSOR_KEY "/events/"

#define CR_LIVE (QUEUE_STATE(CR_RECEIVED) | QUEUE_STATE(CR_SENDING))
/* sent, its receipt written, each correspondence's publication followed */
#define CR_DONE (QUEUE_STATE(CR_SENT) | QUEUE_STATE(CR_FOLLOWING))

/* a message failing in ways that may pass (5xx, 429, no answer) goes to
 * failed/ after three days, as a Broker transfer does by default */
#define CORR_GIVE_UP_MS (3LL * 86400 * 1000)
/* a sent message's correspondences are read again for 30 days (a
 * dueDateTime, a confirmation, come later than publication) */
#define CORR_FOLLOW_FOR_MS (30LL * 86400 * 1000)

struct corr {
	const struct config *cfg;
	struct altinn *a;
	char *mountpoint;
	char **resources; /* NULL-ended */
	struct journal *j;
	struct queue *q;
	pthread_mutex_t lock; /* a hook's look and change are one step */
	struct worker worker;
	struct cpush *push;   /* NULL without push (webhook_url) or events */
};

extern const char *const cr_state_names[CR_N_STATES];

/* A 9-digit organisation number (mod-11) or an 11-digit person number
 * (both check digits)? */
bool corr_recipient_ok(const char *s);

/* A message as read from its folder. */
struct message {
	char *markdown, *meta, *recipients_text;
	size_t markdown_len, meta_len;
	char **recipients;  /* NULL-ended, each checked */
	char **attachments; /* the files in attachments/, sorted, NULL-ended */
	char *prepared;     /* the initialize body without recipient and key */
};

/* cend.c: the message's folder on disk, and a path in one of its
 * resource's areas through the mount (name may be NULL) */
char *cr_disk_dir(struct corr *c, const struct queue_item *it);
char *cr_mount_path(struct corr *c, const struct queue_item *it, const char *area,
		    const char *name);
/* cend.c: every recipient answered: the receipt in sent/, the folder
 * gone, then following; the receipt written again from the results */
void cr_sent(struct corr *c, struct queue_item *it);
void cr_rewrite_receipt(struct corr *c, const struct queue_item *it);
/* cfollow.c: following: each correspondence's status, fast until it is
 * published, then slowly until it is final */
void cr_follow(struct corr *c, struct queue_item *it);
/* cfollow.c: a resource's events cursor item is due: the feed's new
 * events become files in events/ and move the receipts' statuses */
void cr_events(struct corr *c, struct queue_item *it);
/* cfollow.c: each resource's cursor item, made where missing */
int cr_events_init(struct corr *c);
/* cfollow.c: what n events of resource say, applied to the receipts
 * they are about (statuses only upwards: applying one twice is nothing) */
struct corr_event;
void cr_apply_events(struct corr *c, const char *resource, const struct corr_event *evs,
		     size_t n);

/* cpush.c: Correspondence's events pushed by the webhook */
struct pushbus;
/* Subscribes to each resource's events and takes their pushes from bus
 * at once; NULL when push or the events are off. */
struct cpush *cpush_new(struct corr *c, struct pushbus *bus);
void cpush_stop(struct cpush *cp); /* pushes are answered 503 from now */
void cpush_free(struct cpush *cp); /* waits for pushes under way; NULL is fine */
/* The worker's: the oldest pushed event (*ret: corr_events_free(*ret,
 * 1)) and its resource (one of c->resources); false when none waits. */
bool cpush_take(struct cpush *cp, const char **ret_resource, struct corr_event **ret);
/* The worker's: makes sure resource's subscription exists; true once
 * the platform validated it (false also without push). */
bool cpush_keep(struct cpush *cp, const char *resource);
/* A resource's subscription for status.json (untouched without one). */
void cpush_status(struct cpush *cp, const char *resource, int64_t *ret_id,
		  bool *ret_validated);
/* cend.c: the item saved; the message ended in failed/ with why; a
 * step that may pass tried again later (or given up) */
void cr_save(struct corr *c, struct queue_item *it);
void cr_fail(struct corr *c, struct queue_item *it, const char *why);
struct app_answer;
void cr_later(struct corr *c, struct queue_item *it, const struct app_answer *ans);

/* cattach.c: attachments/ of the folder at dirfd listed and checked
 * into m->attachments (0, or -EINVAL with err naming the file). */
int cr_list_attachments(int at, struct message *m, char *err, size_t errlen);
/* Each attachment made, uploaded and Published, a step at a time, its
 * progress in the item's CF_ATTACHMENTS ("name TAB id TAB state" lines).
 * 0 with the ids (NULL-ended, malloc'd) when all are Published; -EAGAIN
 * when the item waits (saved, due later) or has failed (it.state says). */
int cr_attachments_ready(struct corr *c, struct queue_item *it, const struct message *m,
			 char ***ret_ids);

/* One due message (core/worker.h). */
int cr_work_one(void *ctx, int64_t *ret_wait_ms);

#endif
