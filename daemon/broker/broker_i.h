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
 *   (queue_retry, Retry-After) until broker_give_up, then failed. */
#ifndef ALTINNFS_BROKER_I_H
#define ALTINNFS_BROKER_I_H

#include <pthread.h>
#include <stdbool.h>

#include "queue.h"
#include "worker.h"

struct altinn;
struct config;
struct journal;

enum br_state { BR_RECEIVED, BR_INITIALIZING, BR_UPLOADING, BR_FOLLOWING, BR_SENT, BR_FAILED,
		BR_N_STATES };
enum br_field { BF_RESOURCE, BF_RECIPIENT, BF_NAME, BF_MD5, BF_SIZE, BF_REFERENCE, BF_ID,
		BF_UNSURE, BF_ASKED_AT, BF_STATUS, BF_N_FIELDS };

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

#endif
