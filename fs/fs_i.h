/* fs_i.h - the filesystem's shared state, private to fs/.
 *
 * One struct fs per mount, built by fs_new and handed to every operation
 * as the session's userdata. Its own header, so that the files which
 * need its fields (the tree, the local areas, the pending writes) need
 * not include each other for it. */
#ifndef ALTINNFS_FS_I_H
#define ALTINNFS_FS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "family.h"

struct altinn;
struct config;
struct view;
struct node_table;
struct handle;
struct fuse_session;
struct fuse_lowlevel_ops;
struct gate;

/* One local area of one family, as fs/ keeps it. */
struct local_area_slot {
	const char *name;         /* its folder's name in every app */
	struct local_hooks hooks;
	int index;                /* in its family's areas[]: local_call.area */
	size_t family;            /* index in fs->families */
	bool rooted;              /* in each scope of its family's root, not in apps */
};

/* One scope of a rooted family: MOUNT/<root>/<name>/. */
struct fs_scope {
	const char *root;
	const char *name;
	size_t family; /* index in fs->families */
	int *fds;      /* [n_areas]: its areas' folders, -1 for another family's */
};

/* State shared by every operation; immutable after fs_new except where
 * the module it points into says otherwise. */
struct fs {
	struct altinn *a;
	const struct config *cfg;
	struct view *view;
	struct layout_cache *layouts; /* recent instances' data folders */
	struct node_table *nodes;
	char *mountpoint;
	struct timespec started;
	uid_t uid;
	gid_t gid;
	pthread_t warm_thread;
	bool warm_started;
	atomic_bool read_ahead_tuned; /* fs_tune_read_ahead_once has run */
	/* local.c: a rename (disk and nodes) is one step to an open: an
	 * open never finds a node's name already meaning the new file */
	pthread_rwlock_t rename_lock;
	/* local areas: every family's, in the order added; set before
	 * fs_start, then read-only. A node's key.area is 1 + an index here
	 * (0: none). */
	struct local_area_slot *areas;
	size_t n_areas;
	int *area_fds; /* [app index * n_areas + index], -1 when not open */
	struct fs_scope *scopes; /* rooted families' scopes; set before fs_start */
	size_t n_scopes;
	struct fs_family *families;          /* set before fs_start */
	size_t n_families;
	struct fs_inbox_hooks inbox_hooks;   /* set before fs_start */
	bool inbox_enabled;
	struct fs_ctl_hooks ctl_hooks;       /* set before fs_start */
	bool ctl_enabled;
	struct alt_dw_hooks dw_hooks;        /* set before fs_start */
	bool dw_enabled;
	struct fuse_session *se;             /* set before fs_start */
	pthread_mutex_t handles_lock;
	struct handle *handles; /* open files and folders; protected by handles_lock */
	struct gate *gate; /* the platform's share of the FUSE workers (ops_gate.c) */
};

/* fs.c: the families' life, in the order added (mount.c) */
int fs_families_start(struct fs *fs);
void fs_families_stop(struct fs *fs);
/* fs.c: the session, for kernel notifications (mount.c sets it) */
void fs_set_session(struct fs *fs, struct fuse_session *se);
/* Opens the local areas and starts the background work (after
 * fuse_daemonize: threads do not survive its fork). 0 or -errno. */
int fs_start(struct fs *fs);
/* readahead.c: widens the kernel's read-ahead on our mount, once (ops.c calls
 * it at each open; only the first does anything) */
void fs_tune_read_ahead_once(struct fs *fs);
/* ops.c: the table handed to fuse_session_new with fs as userdata */
const struct fuse_lowlevel_ops *fs_ops(void);

#endif
