/* outbox_i.h - the outbox's shared types, for its files only: the
 * module, its items and its apps. Each file's functions are declared in
 * that file's own header, so who uses whom reads from the includes:
 *   outbox.c    the module: the list of items, the area hooks, start and stop
 *   item.h      one item: its names, its journal row, its state
 *   uploader.h  the threads: which item next, backoff, retries, give-up
 *   deliver.h   one item's steps on the platform, and unknown outcomes
 *   outcome.h   receipts in sent/, dead letters in failed/ (via the mount)
 *
 * An item is owned by one uploader at a time (in_flight). While it is,
 * that thread reads the item's fields without the lock and changes them
 * only with ob->lock held, so the hooks (FUSE threads), which read under
 * the lock, always see whole values; hooks never change an item in
 * flight (they answer EBUSY instead). */
#ifndef ALTINNFS_OUTBOX_I_H
#define ALTINNFS_OUTBOX_I_H

#include <pthread.h>
#include <stdint.h>

#include "altinn.h"
#include "api_app.h"
#include "family.h"
#include "spool.h"
#include "worker.h"

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
	struct ob_item *items; /* protected by lock: every unfinished item */
	bool stopping;         /* protected by lock */
	uint64_t failed;       /* protected by lock: items that ended in failed/ */

	/* Creating an instance, or looking for one a lost answer made, is
	 * one owner's at a time (striped by owner): else one item's look-up
	 * finds the instance another item's create has just made, before
	 * that item has recorded it, and both use it. */
	pthread_mutex_t create_locks[OB_CREATE_LOCKS];

	/* the uploaders: a pool of core/worker.c over items (uploader.c) */
	struct worker uploaders;
};

#endif
