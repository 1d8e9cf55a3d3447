/* broker_i.h - what broker.c (the family, its folders and journal) and
 * bsend.c (sending one transfer, step by step) share; private to
 * daemon/broker/.
 *
 * A transfer's journal item, in core's durable queue
 * (state_dir/broker.db), keyed "<resourceId>/<recipient>/<name>":
 *
 *   close(2) in outbox/ --> received --MD5, <name>.meta.json read and checked,
 *      "initializing" saved--> POST filetransfer    (a bad meta: failed, nothing asked)
 *      initializing --id--> uploading --200--> following --Published--> watching (receipt)
 *        |  lost answer: search by resource, time,             |   \--Failed--> failed
 *        |  name, reference and checksum before another POST   |   Initialized after a
 *        +--refused--> failed (dead letter)                    +-- crash: upload again
 *   watching --Purged, Failed, Cancelled, 404, receipt removed--> sent
 *     the receipt rewritten whenever a status changed: an event about the
 *     transfer makes it due at once, else every broker_reconcile seconds
 *     (bwatch.c); a failed read waits (Retry-After) and never gives up
 *   Each step that fails in a way that may pass is retried with backoff
 *   (queue_retry, Retry-After) until broker_give_up, then failed.
 *
 * uploading, for a file of broker_tus_threshold bytes or more, is TUS
 * (btus.c), with the field "tus" saying where the upload stands:
 *   none  no upload made yet: "1" is saved, then POST creates it;
 *   "n"   the n-th upload was made (or asked for): HEAD gives the
 *         platform's offset, PATCHes go on from there;
 *   "-n"  HEAD found no upload (never made, or expired): following
 *         decides; a transfer still Initialized or UploadStarted makes
 *         upload n+1 from offset 0, up to ALT_BROKER_TUS_STARTS. */
#ifndef ALTINNFS_BROKER_I_H
#define ALTINNFS_BROKER_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue.h"
#include "worker.h"

struct altinn;
struct config;
struct journal;

enum br_state { BR_RECEIVED, BR_INITIALIZING, BR_UPLOADING, BR_FOLLOWING, BR_SENT, BR_FAILED,
		BR_WATCHING, BR_N_STATES };
/* BF_STATUS: the transfer's status; once watching, the overview's
 * signature (broker_overview_signature: the transfer's and each
 * recipient's status). BF_RECIPIENTS: the recipients besides the
 * folder's, space-separated, and BF_PROPS the propertyList (compact
 * JSON), both from the sidecar; BF_REFERENCE the sidecar's reference or
 * our own. */
enum br_field { BF_RESOURCE, BF_RECIPIENT, BF_NAME, BF_MD5, BF_SIZE, BF_REFERENCE, BF_ID,
		BF_UNSURE, BF_ASKED_AT, BF_STATUS, BF_TUS, BF_RECIPIENTS, BF_PROPS, BF_N_FIELDS };

#define BR_LIVE (QUEUE_STATE(BR_RECEIVED) | QUEUE_STATE(BR_INITIALIZING) | \
		 QUEUE_STATE(BR_UPLOADING) | QUEUE_STATE(BR_FOLLOWING))
#define BR_IN_FLIGHT (BR_LIVE & ~QUEUE_STATE(BR_RECEIVED))
/* what the worker takes */
#define BR_DUE (BR_LIVE | QUEUE_STATE(BR_WATCHING))
/* published: counted as sent */
#define BR_PUBLISHED (QUEUE_STATE(BR_SENT) | QUEUE_STATE(BR_WATCHING))
/* the most event nudges held for the worker; beyond it the reconciling
 * read catches up */
#define BR_NUDGES_MAX 1024

struct broker {
	const struct config *cfg;
	struct altinn *a;
	char *mountpoint;
	char **resources; /* NULL-ended */
	struct journal *j;
	struct queue *q;
	pthread_mutex_t lock; /* a hook's look and change are one step */
	struct worker worker;
	struct brecv *rx; /* receiving: inbox/ (brecv.c) */
	pthread_mutex_t nudge_lock; /* what follows */
	char **nudged;   /* transfer ids an event named, for the worker */
	size_t n_nudged;
};

extern const char *const br_state_names[BR_N_STATES];

/* One due transfer (core/worker.h). */
int br_work_one(void *ctx, int64_t *ret_wait_ms);

/* btus.c: the upload step by TUS (see above); the fd is the spooled
 * file's, size its bytes. BR_TUS_DONE: the item is saved in its next
 * state, or left as it was (shutting down); BR_TUS_FAIL: it goes to
 * failed/ with ans's summary and status; BR_TUS_LATER: it is tried again
 * later (ans: why, Retry-After). */
struct app_answer;
enum br_tus_end { BR_TUS_DONE, BR_TUS_FAIL, BR_TUS_LATER };
enum br_tus_end br_step_tus(struct broker *b, struct queue_item *it, int fd, uint64_t size,
			    struct app_answer *ans);

/* bmeta.c: the path of an item's file in outbox/ through the mount
 * (suffix appended: "" or ".meta.json") */
char *br_outbox_path(struct broker *b, const struct queue_item *it, const char *suffix);

/* bmeta.c: a Norwegian organisation number (9 digits, mod-11)? */
bool br_org_number_ok(const char *s);
/* A sidecar's name (<name>.meta.json): never sent itself; its base
 * name (malloc'd), or NULL for a name that is not one. */
char *br_meta_base(const char *name);
/* received: the sidecar of the item's file, when there is one, read and
 * checked into BF_RECIPIENTS, BF_PROPS and BF_REFERENCE. 0 (also when
 * there is none), or -EINVAL with err saying which field and why, or
 * another -errno when it cannot be read. */
int br_meta_load(struct broker *b, struct queue_item *it, char *err, size_t errlen);
/* The sidecar, after the item ended: moved beside the dead letter in
 * failed_dir, or removed (failed_dir NULL). */
void br_meta_end(struct broker *b, const struct queue_item *it, const char *failed_dir);

/* bwatch.c: the facts of a receipt or dead letter */
struct broker_facts;
void br_facts_of(const struct queue_item *it, struct broker_facts *f);
/* Published: the receipt in sent/<recipient>/ from overview, the item
 * watching (or sent, when the overview is already final). 0, or -errno
 * (the receipt could not be written; nothing changed). Not saved. */
int br_watch_begin(struct broker *b, struct queue_item *it, const char *overview);
/* A watching item is due: its overview read, the receipt rewritten when
 * a status changed; saved. */
void br_watch_step(struct broker *b, struct queue_item *it);
/* An event named transfer id (brevents.c's thread): its item is made
 * due at once by the worker. */
void br_watch_nudge(void *ctx, const char *resource, const char *type, const char *id);
/* The worker's: the nudged items made due. */
void br_watch_drain(struct broker *b);

#endif
