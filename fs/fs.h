/* fs.h - the filesystem: FUSE low-level operations over the tree.
 *
 * fs_new() builds the state the operations share; fs_serve() mounts it
 * and serves until unmounted. Nothing here needs libfuse's headers: the
 * session is fs/'s business (mount.c). */
#ifndef ALTINNFS_FS_H
#define ALTINNFS_FS_H

#include <stdbool.h>

#include "local.h"

struct altinn;
struct config;
struct fs;

struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint);
/* Shows area (events/, outbox/, ...) in every app, run by hooks; before
 * fs_serve. */
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
 * confirms durably (daemon/inbox/inbox.c) answers through these. */
struct fs_inbox_hooks {
	void *ctx;
	/* confirmed here already (maybe not yet on the platform): hide it */
	bool (*hidden)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
	/* rm of an entry: record the confirmation durably; 0 or -errno */
	int (*confirm)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
};
/* Shows inbox/ in every app; before fs_serve. */
void fs_set_inbox(struct fs *fs, const struct fs_inbox_hooks *hooks);

/* Lets files in instances/.../data/<type>/ be written and removed,
 * through the module that journals them (daemon/instwrite/instwrite.c); before
 * fs_serve. */
void fs_set_data_writes(struct fs *fs, const struct alt_dw_hooks *hooks);

/* Forget what is cached of an app's listing, or of one instance, here
 * and in the kernel, so the next look asks the platform. Call from any
 * thread that is not serving a FUSE request (the kernel would wait for
 * us). party/guid NULL: the whole app. */
void fs_invalidate(struct fs *fs, const char *org, const char *app, const char *party,
		   const char *guid);
/* What the caller does around serving: start runs once the mount is up
 * (after the process has left the terminal, so it may start threads);
 * stop runs when serving has ended, before the unmount (see mount.c). */
struct fs_run {
	bool foreground; /* stay in the foreground (-f) */
	int (*start)(void *ctx);  /* 0 or -errno: then stop, unmount, return it */
	void (*stop)(void *ctx);
	void *ctx;
};
/* Mounts at mountpoint, serves until unmounted or SIGINT/SIGTERM/SIGHUP,
 * and unmounts. 0, or -errno (a failure to mount is printed to stderr). */
int fs_serve(struct fs *fs, const char *mountpoint, const struct fs_run *run);
void fs_free(struct fs *fs);
/* "3.14": the libfuse API fs/ is built against, for --version */
const char *fs_fuse_version(void);

#endif
