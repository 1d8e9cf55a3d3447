/* fs.h - the filesystem: FUSE low-level operations over the tree.
 *
 * fs_new() builds the state the operations share; fs_ops() is the table
 * handed to fuse_session_new() with that state as userdata. */
#ifndef ALTINNFS_FS_H
#define ALTINNFS_FS_H

#include <fuse_lowlevel.h>

#include "local.h"

struct altinn;
struct config;
struct fs;

struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint);
/* Shows area (events/, outbox/, ...) in every app, run by hooks; before
 * fs_start. */
void fs_set_area(struct fs *fs, enum local_area area, const struct local_hooks *hooks);
/* Where status.json gets what fs/ does not know itself. */
struct fs_status_hooks {
	void *ctx;
	/* adds the events fields of one app */
	void (*app)(void *ctx, const char *org, const char *app, struct alt_status_app *st);
	void (*outbox)(void *ctx, struct alt_status_outbox *st);
};
void fs_set_status_hooks(struct fs *fs, const struct fs_status_hooks *hooks);

/* The inbox: completed instances not yet confirmed. The module that
 * confirms durably (daemon/inbox.c) answers through these. */
struct fs_inbox_hooks {
	void *ctx;
	/* confirmed here already (maybe not yet on the platform): hide it */
	bool (*hidden)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
	/* rm of an entry: record the confirmation durably; 0 or -errno */
	int (*confirm)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
};
/* Shows inbox/ in every app; before fs_start. */
void fs_set_inbox(struct fs *fs, const struct fs_inbox_hooks *hooks);

/* Lets files in instances/.../data/<type>/ be written and removed,
 * through the module that journals them (daemon/instwrite.c); before
 * fs_start. */
void fs_set_data_writes(struct fs *fs, const struct alt_dw_hooks *hooks);

/* Forget what is cached of an app's listing, or of one instance, here
 * and in the kernel, so the next look asks the platform. Call from any
 * thread that is not serving a FUSE request (the kernel would wait for
 * us). party/guid NULL: the whole app. */
void fs_invalidate(struct fs *fs, const char *org, const char *app, const char *party,
		   const char *guid);
/* The session, for kernel notifications; set by main after creating it. */
void fs_set_session(struct fs *fs, struct fuse_session *se);

/* Opens the local areas and starts the background work (after
 * fuse_daemonize: threads do not survive its fork). 0 or -errno. */
int fs_start(struct fs *fs);
void fs_free(struct fs *fs);
const struct fuse_lowlevel_ops *fs_ops(void);

#endif
