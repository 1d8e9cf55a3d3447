/* instwrite_i.h - the shared types of instance writes, for its files:
 *   instwrite.c  the journal and the hooks the fs calls (FUSE threads)
 *   instsend.h   the worker: sending items, unknown outcomes, receipts
 *   db.h         helpers both use: the journal's queue, time, staging names
 * Each file's functions are declared in its own header.
 * The journal is core's durable queue (core/queue.h); its calls are made
 * with lock held, so a look and a change are one step. It is under lock, the metadata cache by
 * meta_lock; neither is held across a request to the platform except
 * meta_lock while the metadata is fetched (once a minute). */
#ifndef ALTINNFS_INSTWRITE_I_H
#define ALTINNFS_INSTWRITE_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "family.h"
#include "queue.h"
#include "worker.h"

struct config;

#define IW_META_MAX_AGE_MS 60000
#define IW_MAX_BACKOFF_MS 300000
/* A POST's element is looked for among those created since its attempt,
 * less this much for clocks that disagree. */
#define IW_CLOCK_SLACK_MS 120000
/* The bytes of a refused write are copied into failed/ whole (through
 * the mount, in memory) up to this size; larger ones stay in the staging
 * folder and the dead letter says where. */
#define IW_MAX_DEAD_COPY (64u << 20)

struct iw_meta {
	char *org, *app;
	struct alt_app *meta;
	int64_t at;
	struct iw_meta *next;
};

struct instwrite {
	const struct config *cfg;
	struct altinn *a;
	char *mountpoint;
	char *stage_dir;
	int stage_fd;
	struct journal *j;     /* state_dir/instwrite.db */
	struct queue *q;       /* the items; used with lock held */
	pthread_mutex_t meta_lock;
	struct iw_meta *metas; /* protected by meta_lock */
	pthread_mutex_t lock;
	struct worker worker;  /* sends the items (core/worker.c) */
	void (*invalidate)(void *ctx, const char *org, const char *app, const char *party,
			   const char *guid);
	void *invalidate_ctx;
	/* the worker calls invalidate only with inval_lock held and
	 * inval_off false: after instwrite_stop the fs session may be gone */
	pthread_mutex_t inval_lock;
	bool inval_off;
	/* rows committed at a close(2) whose file the kernel still holds
	 * (a dup or a child may write again): not sent before their
	 * release. Protected by lock. */
	int64_t *held_open;
	size_t n_held_open, cap_held_open;
};

/* The states of an item, as the journal names them:
 *
 *   writing --close()--> pending --worker--> sending --2xx--> done
 *      |                    ^                 |    |
 *      | write failed,      +--- not done ----+    +--refused for good--> failed
 *      | or died open:        (APP_LATER)     |
 *      v dropped                              +-- maybe done (APP_UNKNOWN): stays
 *                                                 sending; a POST is looked up first
 * rm journals a delete straight as pending. */
enum iw_state { IW_WRITING, IW_PENDING, IW_SENDING, IW_DONE, IW_FAILED, IW_N_STATES };

/* An item's fields in the queue; its key is "org/app/party/guid/type/name". */
enum iw_field {
	IW_F_ORG, IW_F_APP, IW_F_PARTY, IW_F_GUID, IW_F_TYPE, IW_F_NAME, IW_F_OP, IW_F_DATA_ID,
	IW_F_SIZE, IW_N_FIELDS
};
extern const struct queue_def iw_queue_def;

/* One journal item, as the worker handles it. */
struct iw_row {
	int64_t id;
	char *org, *app, *party, *guid, *type, *name, *op, *data_id;
	char *stored_name; /* the platform's filename when not name; not journaled */
	enum iw_state state;
	uint64_t size;
	int64_t attempt_at, received_at;
	unsigned attempts;
};

struct alt_dw_key;

#endif
