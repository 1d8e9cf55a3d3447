/* corr_i.h - what corr.c (the family, its folders and journal) and
 * csend.c (sending one message) share; private to daemon/correspondence/.
 *
 * A message's journal item, in core's durable queue
 * (state_dir/correspondence.db), keyed "<resourceId>/<name>", with a
 * random seed from which each recipient's idempotentKey is derived:
 *
 *   rename into outbox/ --> received --read and checked--> sending
 *     --one initialize per recipient, each result saved--> sent (receipt)
 *        |  refused locally --> failed (the folder and why)
 *        |  every recipient refused --> failed
 *   A lost answer or a crash: the same key again; 409 means it was made,
 *   and the list by idempotentKey names it. Each step that fails in a way
 *   that may pass is retried with backoff until CORR_GIVE_UP_MS. */
#ifndef ALTINNFS_CORR_I_H
#define ALTINNFS_CORR_I_H

#include <pthread.h>
#include <stdbool.h>

#include "queue.h"
#include "worker.h"

struct altinn;
struct config;
struct journal;

enum cr_state { CR_RECEIVED, CR_SENDING, CR_SENT, CR_FAILED, CR_N_STATES };
enum cr_field { CF_RESOURCE, CF_NAME, CF_SEED, CF_RESULTS, CF_N_FIELDS };

#define CR_LIVE (QUEUE_STATE(CR_RECEIVED) | QUEUE_STATE(CR_SENDING))

/* a message failing in ways that may pass (5xx, 429, no answer) goes to
 * failed/ after three days, as a Broker transfer does by default */
#define CORR_GIVE_UP_MS (3LL * 86400 * 1000)

struct corr {
	const struct config *cfg;
	struct altinn *a;
	char *mountpoint;
	char **resources; /* NULL-ended */
	struct journal *j;
	struct queue *q;
	pthread_mutex_t lock; /* a hook's look and change are one step */
	struct worker worker;
};

extern const char *const cr_state_names[CR_N_STATES];

/* A 9-digit organisation number (mod-11) or an 11-digit person number
 * (both check digits)? */
bool corr_recipient_ok(const char *s);

/* One due message (core/worker.h). */
int cr_work_one(void *ctx, int64_t *ret_wait_ms);

#endif
