/* tree.h - what is at each place of the tree (private to fs/).
 *
 * Resolves a name in a folder to its kind, keys and attributes, and lists
 * a folder, from the cached views. The FUSE glue in ops.c turns these
 * answers into replies; nothing here knows about requests. */
#ifndef ALTINNFS_TREE_H
#define ALTINNFS_TREE_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"
#include "local.h"
#include "node.h"

struct altinn;
struct config;
struct view;

/* State shared by every operation; immutable after fs_new except where
 * the module it points into says otherwise. */
struct fs {
	struct altinn *a;
	const struct config *cfg;
	struct view *view;
	struct node_table *nodes;
	char *mountpoint;
	struct timespec started;
	uid_t uid;
	gid_t gid;
	pthread_t warm_thread;
	bool warm_started;
	/* local areas: set before fs_start, then read-only */
	struct local_hooks hooks[AREA_COUNT];
	bool area_enabled[AREA_COUNT];
	int *area_fds; /* [app index * AREA_COUNT + area], -1 when off */
	struct fs_status_hooks status_hooks; /* set before fs_start */
	struct fs_inbox_hooks inbox_hooks;   /* set before fs_start */
	bool inbox_enabled;
	struct alt_dw_hooks dw_hooks;        /* set before fs_start */
	bool dw_enabled;
	struct fuse_session *se;             /* set before fs_start */
	pthread_mutex_t handles_lock;
	struct handle *handles; /* open files and folders; protected by handles_lock */
};

/* One folder entry: name, kind, keys (owned copies) and attributes. */
struct entry {
	char *name;
	enum node_kind kind;
	struct view_app *app;
	char *org, *party, *guid, *data_type, *data_guid;
	int area;
	bool pending; /* NODE_DATA_FILE: a write not yet on the platform */
	struct stat st;
};

void entry_clear(struct entry *e);
void entries_free(struct entry *e, size_t n);
/* e's keys as a node_key (pointers into e) */
struct node_key entry_key(const struct entry *e);

/* The entry called name in folder dir; -ENOENT, -ENOTDIR or a platform
 * error otherwise. */
int tree_lookup(struct fs *fs, struct node *dir, const char *name, struct entry *ret);
/* Every entry of folder dir, in a stable order. */
int tree_list(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n);
/* Attributes of n itself (st_ino not set). */
int tree_getattr(struct fs *fs, struct node *n, struct stat *ret);

#endif
