/* family.h - the one contract between fs/ and a folder family.
 *
 * A family (events, outbox, inbox, instance writes, ctl; Broker and
 * Correspondence next) lives in a folder of its own under daemon/ and
 * reaches the tree only through this header, which fs/ owns: the places
 * it serves in each app (local areas, the inbox, data folders that take
 * writes, each instance's ctl), its fields in status.json, and its life
 * (started once the mount is up, stopped before the unmount, freed after
 * it). fs/ never
 * calls a family by name, and a family never includes fs/'s insides:
 * this folder is the only one of fs/ on a family's include path.
 *
 * Adding a family is a folder with one function of type family_new_fn,
 * and one line in main.c's table of families. */
#ifndef ALTINNFS_FAMILY_H
#define ALTINNFS_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "altinn.h"

struct pushbus;

/* ---- local areas: folders of each app kept on local disk ----
 * A family names the folders it serves in every app (events/; outbox/,
 * sent/, failed/): real files under state_dir/apps/<org>/<app>/<name>/,
 * served through the mount by fs/ so that inotify watchers see what
 * happens in them. What may happen there is decided by the family that
 * owns the area, through its hooks; fs/ knows no area by name. */

enum local_op {
	LOCAL_CREATE,  /* a new file */
	LOCAL_MKDIR,   /* a new folder */
	LOCAL_WRITE,   /* open for writing, truncate, set times or mode */
	LOCAL_RENAME,  /* rel is the new name; old_rel the old one */
	LOCAL_REMOVE,  /* unlink or rmdir */
	LOCAL_RELEASE, /* done only: the last close of a file handed over
			* open (see local_call.open); nothing changed */
};

/* One change in an app's area, as the hooks see it. area is the area's
 * index in the family's own areas[]; rel is relative to the area's folder
 * ("org-910000001/a.pdf"); self tells whether the caller is one of the
 * daemon's own threads (writing through its mount). */
struct local_call {
	const char *org;   /* NULL in a rooted family's area (below) */
	const char *app;
	const char *scope; /* a rooted family's scope ("<resourceId>"), else NULL */
	int area;
	enum local_op op;
	const char *rel;
	const char *old_rel; /* LOCAL_RENAME: the name it had */
	int old_area; /* LOCAL_RENAME: the area it came from; only our own
		       * threads move files between areas, and only between
		       * areas of one family (outbox -> failed) */
	bool is_dir;
	bool self;
	int dirfd; /* the area's folder on disk, for the hook to look in */
	bool attrs_only; /* LOCAL_WRITE check of a chmod or touch: the bytes stay */
	int error; /* LOCAL_WRITE done: 0, or the errno a write or flush of
		    * the file failed with (its bytes may be incomplete) */
	bool open; /* LOCAL_WRITE done at a close(2) (a FUSE flush) while the
		    * kernel holds the file open: a dup or a child may still
		    * write, which checks LOCAL_WRITE again; LOCAL_RELEASE
		    * follows once it is closed for good */
	struct alt_reader **reader; /* fill: where a family that can serve
				     * the file as its bytes arrive puts a
				     * reader of them instead of filling
				     * the file (the open reads through it);
				     * NULL when the caller cannot take one */
};

struct local_hooks {
	void *ctx;
	/* 0 to allow, or the -errno the caller gets */
	int (*check)(void *ctx, const struct local_call *call);
	/* after the change is made (and, for a closed file, is durable):
	 * LOCAL_WRITE means "a file written to was closed": its fate is
	 * decided here, before close(2) returns */
	void (*done)(void *ctx, const struct local_call *call);
	/* a user.altinn.* attribute of rel: 0 and a malloc'd value, or -ENODATA */
	int (*xattr)(void *ctx, const struct local_call *call, const char *name, char **ret);
	/* an open for reading by a user (not self), before the file is
	 * opened: a file the family shows before it has its bytes (a Broker
	 * transfer in inbox/, whose download changes the platform's state)
	 * is filled here, in call->dirfd, by the time this returns, or, when
	 * call->reader is set, may be handed over as a reader of its bytes
	 * in *call->reader (read as they arrive, no wait for all of them).
	 * call->op is LOCAL_RELEASE (nothing is changed by the user). 0, or
	 * the -errno open(2) gets. NULL: files are read as they are. */
	int (*fill)(void *ctx, const struct local_call *call);
};

/* One area of a family: its folder's name in every app (or in each
 * scope of a rooted family, below), and its hooks (check or done set). */
struct fs_area {
	const char *name; /* "outbox" */
	struct local_hooks hooks;
};

#define FS_FAMILY_MAX_AREAS 5

/* ---- writes into existing instances: data/<type>/<name> ----
 * The fs asks the family that journals them (daemon/instwrite/). */
struct alt_dw_key {
	const char *org, *app, *party, *guid;
	const char *data_type; /* the folder's name */
	const char *name;      /* the file's name */
	const char *data_id;   /* the element shown under this name, or NULL */
	bool locked;           /* that element is locked */
};

struct alt_dw_hooks {
	void *ctx;
	/* begin and remove first refuse what the daemon knows the platform
	 * would: -ENOENT unknown type or instance, -EACCES read-only or form
	 * data type, -EBUSY locked element, other task, ended process or an
	 * item of this name being sent. */
	/* Starts a write: a staging file, opened read-write (with the
	 * element's bytes not copied: a write replaces the whole element),
	 * into *ret_fd; *ret_id names it for commit; *ret_max is the data
	 * type's maxSize in bytes (0: none), past which a write is -EFBIG. */
	int (*begin)(void *ctx, const struct alt_dw_key *k, int *ret_fd, int64_t *ret_id,
		     uint64_t *ret_max);
	/* The staging file was closed after writing, durably (error: the
	 * errno a write or flush failed with; the item is dropped). Called
	 * at close(2), before it returns; open: the kernel still holds the
	 * file (a dup, a child), so it is not sent before release. */
	void (*commit)(void *ctx, int64_t id, int error, bool open);
	/* A write through a committed item's file again (a dup, a child):
	 * back to writing, or -EBUSY once it is being sent or gone. */
	int (*reopen)(void *ctx, int64_t id);
	/* The item's file is closed for good: it may be sent. */
	void (*release)(void *ctx, int64_t id);
	/* rm: journal a DELETE of k->data_id (or drop a pending write). */
	int (*remove)(void *ctx, const struct alt_dw_key *k);
	/* A journaled item of this name: 0 and its size and time (a pending
	 * write), -ESRCH (a pending delete: hide the element), -ENOENT. */
	int (*pending)(void *ctx, const struct alt_dw_key *k, uint64_t *ret_size,
		       struct timespec *ret_mtime);
	/* Names with a pending write in one folder (at most 256): cb for each. */
	void (*list)(void *ctx, const struct alt_dw_key *k,
		     void (*cb)(void *cbctx, const char *name, uint64_t size, struct timespec mtime),
		     void *cbctx);
	/* user.altinn.state of a pending item, malloc'd, or -ENODATA */
	int (*state)(void *ctx, const struct alt_dw_key *k, char **ret);
	/* The staged bytes of a pending write, opened read-only. */
	int (*open_staged)(void *ctx, const struct alt_dw_key *k, int *ret_fd);
	/* Does the app's metadata have a data type of this id (its folder
	 * exists before it holds any element)? */
	bool (*type_known)(void *ctx, const char *org, const char *app, const char *type);
};

/* ---- the inbox: completed instances not yet confirmed ----
 * The family that confirms durably (daemon/inbox/) answers through these. */
struct fs_inbox_hooks {
	void *ctx;
	/* confirmed here already (maybe not yet on the platform): hide it */
	bool (*hidden)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
	/* rm of an entry: record the confirmation durably; 0 or -errno */
	int (*confirm)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid);
};

/* ---- ctl: each instance's console ----
 * The family that performs the service owner's commands (daemon/ctl/)
 * answers through these; without one, instances have no ctl file. */
struct fs_ctl_hooks {
	void *ctx;
	/* One write of len bytes: one command line. 0 or the -errno the
	 * write(2) gets. */
	int (*command)(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid, const char *text, size_t len);
	/* What reading ctl shows (malloc'd). */
	char *(*report)(void *ctx, const char *org, const char *app, const char *party,
			const char *guid);
};

/* ---- README.txt: the family's places, as the map a person finds first ----
 * Each place the family serves, what it is, and an example; fs/ prints
 * them after its own, family by family in the table's order. */
struct fs_readme_part {
	const char *place;   /* "apps/<org>/<app>/inbox/<partyId>-<instanceGuid>" */
	const char *about;   /* lines, each ending in '\n' */
	const char *example; /* one command line, "{app}" standing for the first
			      * mounted org/app; or NULL */
};

/* ---- a family, as fs/ knows it ---- */

/* What every family gets to build itself from. */
struct family_deps {
	const struct config *cfg;
	struct altinn *a;
	const char *mountpoint;
	/* Drops what is cached of an app (party/guid NULL) or an instance,
	 * here and in the kernel. Any thread that is not serving a FUSE
	 * request; not after the family's stop. */
	void (*invalidate)(void *ctx, const char *org, const char *app, const char *party,
			   const char *guid);
	void *invalidate_ctx;
	/* A platform's name made safe as one directory entry of at most max
	 * bytes, by the rules app data names follow (docs/tree.md), malloc'd:
	 * for a family that names files after what the platform says. */
	char *(*safe_name)(const char *name, size_t max);
	/* The webhook's pushed events, to the family that subscribed to
	 * their resource (core/pushbus.h); the events family serves the
	 * endpoint, others add routes. Outlives every family. */
	struct pushbus *push;
};

/* A family's places in the tree, its status and its life. Fields it does
 * not use stay zero. */
struct fs_family {
	const char *name; /* "outbox": for logs */
	void *ctx;        /* handed to every call below */
	/* local areas of each app it owns, ended by one without a name */
	struct fs_area areas[FS_FAMILY_MAX_AREAS];
	/* A rooted family: its areas live in a top-level folder of its own,
	 * MOUNT/<root>/<scope>/<area>/ for each scope (on disk
	 * state_dir/<root>/<scope>/<area>/), not in each app. root is a
	 * plain name ("broker"); scopes a NULL-ended list of plain names
	 * that outlives the family (the resources it serves). */
	const char *root;
	const char *const *scopes;
	/* <root>/<scope>/status.json of a rooted family: its state for that
	 * scope as a malloc'd JSON document (*ret_len bytes), rendered when
	 * read; NULL: the scope has none. Never makes a request. */
	char *(*scope_status)(void *ctx, const char *scope, size_t *ret_len);
	/* inbox/ of each app (when inbox.confirm is set) */
	struct fs_inbox_hooks inbox;
	/* the ctl file of each instance (when ctl.command is set) */
	struct fs_ctl_hooks ctl;
	/* data/<type>/ folders of instances take writes (data_writes.begin set) */
	struct alt_dw_hooks data_writes;
	/* README.txt: its places, ended by a part whose place is NULL */
	const struct fs_readme_part *readme;
	/* status.json: its fields of one app, and its global section */
	void (*status_app)(void *ctx, const char *org, const char *app, struct alt_status_app *st);
	void (*status)(void *ctx, struct alt_status_outbox *st);
	/* after the mount is up (threads may start now); 0 or -errno */
	int (*start)(void *ctx);
	/* before the unmount: stop asking, let waiting threads go */
	void (*stop)(void *ctx);
	/* after the unmount: join the threads, free everything */
	void (*free)(void *ctx);
};

/* Builds a family: 0 with *ret filled (ret->ctx NULL when it is turned
 * off by the configuration), or -errno, logged. */
typedef int (*family_new_fn)(const struct family_deps *deps, struct fs_family *ret);

#endif
