/* broker_i.h - what broker.c (the family, its folders and journal) and
 * bsend.c (sending one transfer, step by step) share; private to
 * daemon/broker/.
 *
 * A transfer's journal item, in core's durable queue
 * (state_dir/broker.db), keyed "<resourceId>/<recipient>/<name>":
 *
 *   close(2) in outbox/ --> received --MD5, "initializing" saved--> POST filetransfer
 *      initializing --id--> uploading --200--> following --Published--> sent (receipt)
 *        |  lost answer: search by resource, time and          |   \--Failed--> failed
 *        |  reference before another POST                      |   Initialized after a
 *        +--refused--> failed (dead letter)                    +-- crash: upload again
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
		BR_N_STATES };
enum br_field { BF_RESOURCE, BF_RECIPIENT, BF_NAME, BF_MD5, BF_SIZE, BF_REFERENCE, BF_ID,
		BF_UNSURE, BF_ASKED_AT, BF_STATUS, BF_TUS, BF_N_FIELDS };

#define BR_LIVE (QUEUE_STATE(BR_RECEIVED) | QUEUE_STATE(BR_INITIALIZING) | \
		 QUEUE_STATE(BR_UPLOADING) | QUEUE_STATE(BR_FOLLOWING))
#define BR_IN_FLIGHT (BR_LIVE & ~QUEUE_STATE(BR_RECEIVED))

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

#endif
