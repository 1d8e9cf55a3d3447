/* fs.h - the filesystem: FUSE low-level operations over the tree.
 *
 * fs_new() builds the state the operations share; fs_serve() mounts it
 * and serves until unmounted. Nothing here needs libfuse's headers: the
 * session is fs/'s business (mount.c). */
#ifndef ALTINNFS_FS_H
#define ALTINNFS_FS_H

#include <stdbool.h>

#include "family.h"

struct altinn;
struct config;
struct fs;

struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint);
/* Shows a family's places in the tree and makes fs_serve run its life
 * (see family.h); before fs_serve. A family whose ctx is NULL (turned
 * off) is ignored. fs_free frees the families, in the order added. */
void fs_add_family(struct fs *fs, const struct fs_family *f);

/* Forget what is cached of an app's listing, or of one instance, here
 * and in the kernel, so the next look asks the platform. Call from any
 * thread that is not serving a FUSE request (the kernel would wait for
 * us). party/guid NULL: the whole app. */
void fs_invalidate(struct fs *fs, const char *org, const char *app, const char *party,
		   const char *guid);
/* What the caller does around serving, besides the families' own start
 * and stop: start runs once the mount is up (after the process has left
 * the terminal, so it may start threads), before the families start;
 * stop runs when serving has ended, before the families stop and the
 * unmount (see mount.c). */
struct fs_run {
	bool foreground; /* stay in the foreground (-f) */
	int (*start)(void *ctx);  /* 0 or -errno: then stop, unmount, return it; or NULL */
	void (*stop)(void *ctx);  /* or NULL */
	void *ctx;
};
/* Mounts at mountpoint, serves until unmounted or SIGINT/SIGTERM/SIGHUP,
 * and unmounts. 0, or -errno (a failure to mount is printed to stderr). */
int fs_serve(struct fs *fs, const char *mountpoint, const struct fs_run *run);
void fs_free(struct fs *fs);
/* What status.json shows, as figures (no request is made): each app's,
 * its families' fields filled in, and the outbox section (have_outbox
 * false when no family fills one). For the metrics and the service
 * manager's status line; any thread. Free with fs_status_snapshot_free. */
struct fs_status_snapshot {
	struct alt_status_app *apps;
	char **ids; /* apps[i].id points here */
	size_t n_apps;
	struct alt_status_outbox outbox;
	bool have_outbox;
};
void fs_status_snapshot(struct fs *fs, struct fs_status_snapshot *ret);
void fs_status_snapshot_free(struct fs_status_snapshot *s);
/* "3.14": the libfuse API fs/ is built against, for --version */
const char *fs_fuse_version(void);

#endif
