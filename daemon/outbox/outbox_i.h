/* outbox_i.h - the outbox's insides, shared by its files only:
 *   outbox.c    the module: the list of items, the area hooks, start and stop
 *   item.c      one item: its names, its journal row, its state
 *   uploader.c  the threads: which item next, backoff, retries, give-up
 *   deliver.c   one item's steps on the platform, and unknown outcomes
 *   outcome.c   receipts in sent/, dead letters in failed/ (via the mount)
 *
 * An item is owned by one uploader at a time (in_flight). While it is,
 * that thread reads the item's fields without the lock and changes them
 * only with ob->lock held, so the hooks (FUSE threads), which read under
 * the lock, always see whole values; hooks never change an item in
 * flight (they answer EBUSY instead). */
#ifndef ALTINNFS_OUTBOX_I_H
#define ALTINNFS_OUTBOX_I_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "altinn.h"
#include "api_app.h"
#include "outbox.h"
#include "spool.h"

/* ---- the module, as its folder and its face (outbox.c) see it */

/* The areas it serves in every app, as local_call.area names them: the
 * index of each in its fs_family's areas[] (outbox_family). */
enum outbox_area { AREA_OUTBOX, AREA_SENT, AREA_FAILED, OUTBOX_N_AREAS };

struct config;
struct outbox;

struct outbox_deps {
	const struct config *cfg;
	struct altinn *a;
	const char *mountpoint;
};

/* Opens the spool under cfg->state_dir; starts no thread. */
int outbox_new(const struct outbox_deps *deps, struct outbox **ret);
/* The hooks of one of its areas; false when the outbox is off. */
bool outbox_hooks(struct outbox *ob, enum outbox_area area, struct local_hooks *ret);
/* Starts the uploaders and resumes what a restart left, once the mount
 * serves requests. */
int outbox_start(struct outbox *ob);
void outbox_status(struct outbox *ob, struct alt_status_outbox *st);
/* Asks every thread to stop (no waiting); then unmount; then free. */
void outbox_stop(struct outbox *ob);
void outbox_free(struct outbox *ob); /* joins the threads; NULL is fine */

/* How long an empty file waits before it is picked up (and refused):
 * some programs create and close a file, then open it again to write. */
#define OB_EMPTY_SETTLE_MS 1000

struct ob_item {
	struct spool_item s;   /* the journal row; see the rule above */
	size_t app;            /* index into cfg->apps */
	bool in_flight;        /* an uploader has it */
	bool answered;         /* the unknown attempt got an HTTP answer: no need
				* to wait for the platform to finish it */
	int64_t blocked_until; /* a user's rename or remove of it is under way */
	bool held_open;        /* handed over at a close(2) while the kernel still
				* holds the file (a dup or a child may write
				* again): not picked up before its release */
	bool detached;         /* its bytes have left outbox/: the name is free
				* for a new drop while the outcome is finished */
	struct ob_item *next;
};

/* Per app: its areas' folders on disk and its metadata. */
struct ob_app {
	const char *org, *app;   /* from cfg */
	char *id;                /* "org/app" */
	int dir_fd[3];           /* outbox, sent, failed under state_dir */
	char *mount_dir[3];      /* the same folders through the mount */
	char *forced_type;       /* outbox_data_type's choice, or NULL */
	struct alt_app *meta;    /* protected by meta_lock; NULL until fetched */
	int64_t meta_at;         /* protected by meta_lock */
};
enum { OB_OUTBOX, OB_SENT, OB_FAILED };

#define OB_CREATE_LOCKS 64

struct outbox {
	const struct config *cfg;
	struct altinn *a;
	struct spool *spool;
	struct ob_app *apps;
	size_t n_apps;
	pthread_mutex_t meta_lock;

	pthread_mutex_t lock;
	pthread_cond_t cond;   /* work to do, or stopping */
	struct ob_item *items; /* protected by lock: every unfinished item */
	bool stopping;         /* protected by lock */
	uint64_t failed;       /* protected by lock: items that ended in failed/ */

	/* Creating an instance, or looking for one a lost answer made, is
	 * one owner's at a time (striped by owner): else one item's look-up
	 * finds the instance another item's create has just made, before
	 * that item has recorded it, and both use it. */
	pthread_mutex_t create_locks[OB_CREATE_LOCKS];

	pthread_t *threads;
	size_t n_threads;
};

/* item.c */
int64_t outbox_now_ms(void);
void outbox_item_free(struct ob_item *it); /* NULL is fine */
/* "<owner>" of an item's rel, and its name below the owner folder */
char *outbox_item_owner(const struct ob_item *it);
const char *outbox_item_name(const struct ob_item *it);
/* Saves the item's row (and its elements); logs and returns -errno. */
int outbox_save(struct outbox *ob, struct ob_item *it, bool elements);
/* Sets the state (and, with fmt, last_error) under the lock, then saves. */
int outbox_set_state(struct outbox *ob, struct ob_item *it, enum spool_state st, bool elements);
void outbox_set_error(struct outbox *ob, struct ob_item *it, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* uploader.c */
int uploader_start(struct outbox *ob);
void uploader_join(struct outbox *ob);

/* deliver.c: runs an item until it needs to wait, succeeds or fails.
 * Returns 0 when the item reached SUBMITTED or FAILING (outcome next),
 * or the answer of the step that must be retried (in *ans). */
int deliver_item(struct outbox *ob, struct ob_item *it, struct app_answer *ans);
/* The metadata of an app, fetched when older than a minute; the caller
 * holds meta_lock while using it. */
int deliver_app_meta(struct outbox *ob, struct ob_app *oa);

/* outcome.c: the receipt or dead letter, and the item gone from outbox/.
 * Returns 0 when the item is DONE or FAILED. */
int outcome_finish(struct outbox *ob, struct ob_item *it);
/* Decides the dead letter of a refused item and sets FAILING. */
int outcome_refuse(struct outbox *ob, struct ob_item *it, const char *step,
		   const struct app_answer *ans, const char *reason);

#endif
