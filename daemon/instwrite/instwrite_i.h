/* instwrite_i.h - the insides of instance writes, shared by:
 *   instwrite.c  the journal and the hooks the fs calls (FUSE threads)
 *   instsend.c   the worker: sending items, unknown outcomes, receipts
 *   db.c         helpers both use: the journal's queue, time, staging names
 * The journal is core's durable queue (core/queue.h); its calls are made
 * with lock held, so a look and a change are one step. It is under lock, the metadata cache by
 * meta_lock; neither is held across a request to the platform except
 * meta_lock while the metadata is fetched (once a minute). */
#ifndef ALTINNFS_INSTWRITE_I_H
#define ALTINNFS_INSTWRITE_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "instwrite.h"
#include "queue.h"
#include "worker.h"

/* ---- the module, as its folder and its face (instwrite.c) see it */

struct config;
struct instwrite;

/* Opens (creating) the journal and the staging folder; starts no thread. */
int instwrite_new(const struct config *cfg, struct altinn *a, const char *mountpoint,
		  struct instwrite **ret);
/* The callbacks of struct alt_dw_hooks, ctx the struct instwrite. */
void instwrite_hooks(struct instwrite *iw, struct alt_dw_hooks *ret);
/* Resumes what a restart left and starts the worker, once the mount
 * serves requests. */
int instwrite_start(struct instwrite *iw);
/* After each outcome, so listings show the platform's new view. */
void instwrite_set_invalidate(struct instwrite *iw,
			      void (*cb)(void *ctx, const char *org, const char *app,
					 const char *party, const char *guid),
			      void *ctx);
/* Asks the worker to stop, and waits for an invalidation under way (the
 * fs session is destroyed next); call before unmounting. */
void instwrite_stop(struct instwrite *iw);
void instwrite_free(struct instwrite *iw); /* joins it; NULL is fine */

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

/* db.c */
const char *iw_state_name(enum iw_state st);
/* false for a name that is not a state (a journal from a newer version) */
bool iw_state_parse(const char *name, enum iw_state *ret);
int64_t iw_now_ms(void);
/* The queue key of k's name, and of its folder (ending in "/"). */
char *iw_key(const struct alt_dw_key *k);
char *iw_folder_key(const struct alt_dw_key *k);
/* A row from a queue item (taking its strings), and an item from a row
 * (with copies), done_at set when the row's state is final. */
void iw_row_take(struct iw_row *row, struct queue_item *it);
void iw_item_of(struct queue_item *it, const struct iw_row *row, int64_t due_at,
		const char *error);
/* Opens the journal at path, importing an earlier version's table. */
int iw_journal_open(struct instwrite *iw, const char *path);
char *iw_stage_name(int64_t id); /* the staging file of row id */
void iw_stage_unlink(struct instwrite *iw, int64_t id);
/* Is row id's file still held open (see held_open)? Caller holds lock. */
bool iw_held_open(struct instwrite *iw, int64_t id);
/* Marks it held open (a flush while the kernel keeps the file) or not
 * (its release). Caller holds lock. */
void iw_set_held_open(struct instwrite *iw, int64_t id, bool open);

/* instsend.c */
/* works one due item (core/worker.h) */
int iw_work_one(void *ctx, int64_t *ret_wait_ms);
void iw_row_clear(struct iw_row *row);

#endif
