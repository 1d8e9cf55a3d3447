/* local.h - areas of the tree kept on local disk under state_dir.
 *
 * events/, outbox/, sent/ and failed/ of each app are real files in
 * state_dir/apps/<org>/<app>/<area>/, served through the mount so that
 * inotify watchers see what happens in them. What may be created, and
 * what happens when a file is closed, renamed or removed, is decided by
 * the hooks of the module that owns the area (daemon/), wired up in main. */
#ifndef ALTINNFS_LOCAL_H
#define ALTINNFS_LOCAL_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

enum local_area { AREA_NONE, AREA_EVENTS, AREA_OUTBOX, AREA_SENT, AREA_FAILED, AREA_COUNT };

/* The folder name of an area ("events"), or NULL. */
const char *local_area_name(enum local_area area);

enum local_op {
	LOCAL_CREATE,  /* a new file */
	LOCAL_MKDIR,   /* a new folder */
	LOCAL_WRITE,   /* open for writing, truncate, set times or mode */
	LOCAL_RENAME,  /* rel is the new name; old_rel the old one */
	LOCAL_REMOVE,  /* unlink or rmdir */
};

/* One app's area, as the hooks see it. rel is relative to the area's
 * folder ("org-910000001/a.pdf"); self tells whether the caller is one of
 * the daemon's own threads (writing through its mount). */
struct local_call {
	const char *org;
	const char *app;
	enum local_area area;
	enum local_op op;
	const char *rel;
	const char *old_rel; /* LOCAL_RENAME */
	bool is_dir;
	bool self;
	int dirfd; /* the area's folder on disk, for the hook to look in */
};

struct local_hooks {
	void *ctx;
	/* 0 to allow, or the -errno the caller gets */
	int (*check)(void *ctx, const struct local_call *call);
	/* after the change is made (and, for a closed file, is durable):
	 * LOCAL_WRITE means "a file written to was closed" */
	void (*done)(void *ctx, const struct local_call *call);
	/* a user.altinn.* attribute of rel: 0 and a malloc'd value, or -ENODATA */
	int (*xattr)(void *ctx, const struct local_call *call, const char *name, char **ret);
};

#endif
