/* altinn.h - the platform, as fs/ sees it: plain structs and calls.
 *
 * This is the one header fs/ includes from daemon/. Nothing here mentions
 * HTTP, curl or JSON: every call returns 0 or a negative errno, mapped from
 * the platform's answer by one table (docs/errors.md):
 *   404 -> -ENOENT, 401/403 -> -EACCES, 409 -> -EBUSY, 413 -> -EFBIG,
 *   400 -> -EINVAL, 5xx/429 after retries -> -EIO, connection failure -> -EIO,
 *   no whole answer within the configured timeout -> -ETIMEDOUT.
 * Output parameters (ret_*) are untouched on failure.
 *
 * Thread safety: every function may be called from any thread at once. */
#ifndef ALTINNFS_ALTINN_H
#define ALTINNFS_ALTINN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

struct config;
struct altinn; /* the client: settings, connections, token, health */

struct alt_data_type {
	char *id;
	char **allowed_content_types; /* NULL-terminated; empty = any */
	int64_t max_size_mb;          /* <= 0: no limit */
	int max_count;                /* <= 0: unbounded */
	int min_count;
	char *task_id;    /* NULL when absent */
	bool has_app_logic; /* structured form data, not an attachment */
};

struct alt_app {
	char *id; /* "org/app" */
	char *org;
	char *app;
	char *doc; /* the metadata document, pretty-printed JSON + "\n" */
	size_t doc_len;
	struct timespec created;
	struct timespec last_changed;
	struct alt_data_type *types;
	size_t n_types;
};

struct alt_data_element {
	char *id; /* data guid */
	char *data_type;
	char *filename;     /* NULL when the platform has none */
	char *content_type; /* NULL when absent */
	uint64_t size;
	struct timespec created;
	struct timespec last_changed;
	bool locked;
};

/* Refcounted: the listing cache and open files may share one. Immutable
 * after creation, so readers need no lock. */
struct alt_instance {
	int refcount; /* atomic */
	char *id;       /* "<partyId>/<instanceGuid>" as the platform sent it */
	char *party_id; /* digits */
	char *guid;     /* lowercase instance guid */
	char *doc;      /* the instance document, pretty-printed JSON + "\n" */
	size_t doc_len;
	struct timespec created;
	struct timespec last_changed;
	bool is_complete;       /* process.ended present */
	struct timespec ended;  /* process.ended, zero when not ended */
	struct alt_data_element *data;
	size_t n_data;
};

struct alt_instance *alt_instance_ref(struct alt_instance *inst);
void alt_instance_unref(struct alt_instance *inst); /* NULL is fine */
void alt_app_free(struct alt_app *app);             /* NULL is fine */

/* An instance query (Storage GET /instances). Fields left NULL/-1 are not sent. */
struct alt_query {
	const char *org;
	const char *app;
	const char *party_id;             /* instanceOwner.partyId */
	int is_complete;                  /* process.isComplete: -1 unset, 0, 1 */
	const char *exclude_confirmed_by; /* org short name */
	const char *last_changed_gt;      /* ISO-8601, sent as lastChanged=gt:... */
	bool ascending;                   /* order=asc:lastChanged (default desc) */
};

/* Called once per instance, in platform order; the callback owns one
 * reference. A non-zero return stops the listing and is returned. */
typedef int (*alt_instance_cb)(struct alt_instance *inst, void *ctx);

int altinn_new(const struct config *cfg, struct altinn **ret);
/* Ends every request under way (-ECANCELED) and fails new ones: called
 * at shutdown so background threads can be joined at once. */
void altinn_stop(struct altinn *a);
void altinn_free(struct altinn *a);

/* Storage GET /applications/{org}/{app} */
int altinn_get_app(struct altinn *a, const char *org, const char *app, struct alt_app **ret);

/* Every page of the query, following `next` links (one request per page
 * of cfg->page_size instances). Returns 0 when all pages were delivered. */
int altinn_list_instances(struct altinn *a, const struct alt_query *q, alt_instance_cb cb, void *ctx);

/* Storage GET /instances/{partyId}/{instanceGuid} */
int altinn_get_instance(struct altinn *a, const char *party_id, const char *guid,
			struct alt_instance **ret);

/* Reading one data element's bytes with HTTP range requests.
 * A reader belongs to one open file; reads may come from several threads
 * at once. Sequential reads are served from a read-ahead stream of bounded
 * range windows that grow while reading stays sequential, in a ring of
 * ALT_STREAM_WINDOW bytes; random reads become single range requests. */
struct alt_reader;
int altinn_reader_open(struct altinn *a, const char *party_id, const char *instance_guid,
		       const char *data_guid, uint64_t size, const struct timespec *last_changed,
		       struct alt_reader **ret);
/* Bytes of that element (at that lastChanged) held in the local cache:
 * the user.altinn.cached attribute. */
uint64_t altinn_cached_bytes(struct altinn *a, const char *data_guid,
			     const struct timespec *last_changed);
/* Reads up to len bytes at off into buf; returns the count (0 at or past
 * the end) or a negative errno. Short only at the end of the element.
 * Fails within cfg->timeout; after a failure, reads of this reader fail
 * the same way for cfg->timeout without a request (docs/errors.md). */
ssize_t altinn_reader_read(struct alt_reader *r, uint64_t off, size_t len, char *buf);

/* Bytes lent by the reader without a copy: one or two pieces of its
 * memory (its ring may wrap), or (is_fd) len bytes of the file fd at
 * fd_off (the local cache: the reply can splice them), valid until
 * altinn_reader_release(). */
struct alt_bytes {
	struct iovec iov[2];
	int n_iov;
	size_t len;               /* iov[0].iov_len + iov[1].iov_len, or of the fd */
	bool is_fd;
	int fd;
	uint64_t fd_off;
	struct alt_loan *loan;    /* private: what keeps the bytes */
};
/* Like altinn_reader_read, but lends the bytes in *ret. Give them back
 * with altinn_reader_release, also after a failure or 0 bytes, and before
 * altinn_reader_close. */
ssize_t altinn_reader_borrow(struct alt_reader *r, uint64_t off, size_t len,
			     struct alt_bytes *ret);
void altinn_reader_release(struct alt_bytes *b);
void altinn_reader_close(struct alt_reader *r); /* NULL is fine */

/* Health and token facts for status.json. */
/* The data element cache (docs/cache.md), for status.json. */
struct alt_cache_status {
	bool on;
	char dir[512];
	uint64_t max, used, entries, hits, misses, bytes_fetched;
};

struct alt_health {
	bool checked;          /* any request made yet */
	bool reachable;        /* the last request got an HTTP answer */
	char last_error[256];  /* "" when the last request succeeded */
	struct timespec checked_at;
	char token_source[32]; /* "token_file", "maskinporten", "none" */
	char token_subject[128];
	struct timespec token_expires_at; /* zero when unknown */
	uint64_t requests;     /* HTTP requests made since start */
	struct alt_cache_status cache;
};
void altinn_health(struct altinn *a, struct alt_health *ret);

/* status.json, rendered from what the daemon knows (no request is made).
 * Returns a malloc'd NUL-terminated document ending in "\n". */
struct alt_status_app {
	const char *id; /* org/app */
	bool metadata_loaded;
	uint64_t instances_listed;
	struct timespec listed_at;
	/* filled by the events module, when it runs */
	char event_cursor[64];        /* "" when none yet */
	struct timespec last_poll_at; /* zero when never */
	uint64_t pending_event_files;
};
struct alt_status_outbox {
	uint64_t pending;
	struct timespec oldest_pending_at; /* zero when none */
	uint64_t retries;
	uint64_t failed;
};
char *altinn_status_render(struct altinn *a, const char *mountpoint,
			   const struct alt_status_app *apps, size_t n_apps,
			   const struct alt_status_outbox *outbox);

/* ---- the service owner's actions on one instance ---- */

/* Performs one ctl command line (len bytes of text: "next [action]",
 * "complete" or "substatus <label> [description ...]") with the App API.
 * Returns 0, or -EBUSY (409), -EACCES (401/403), -EINVAL (400 or not a
 * command), -ENOENT (404), -EIO (5xx, network). */
int altinn_instance_command(struct altinn *a, const char *org, const char *app,
			    const char *party, const char *guid, const char *text, size_t len);
/* What reading ctl shows: the last command, when it ran, the HTTP status
 * and the platform's message (malloc'd). */
char *altinn_instance_report(struct altinn *a, const char *org, const char *app,
			     const char *party, const char *guid);
/* POST .../complete (confirming is idempotent). On failure msg (if not
 * NULL) gets the platform's message. */
int altinn_complete_instance(struct altinn *a, const char *org, const char *app,
			     const char *party, const char *guid, char *msg, size_t size);

/* ---- local areas: events/, outbox/, sent/, failed/ of each app ----
 * Real files under state_dir, served through the mount by fs/ so that
 * inotify watchers see what happens in them. What may happen there is
 * decided by the daemon module that owns the area, through these hooks. */

enum local_area { AREA_NONE, AREA_EVENTS, AREA_OUTBOX, AREA_SENT, AREA_FAILED, AREA_COUNT };

enum local_op {
	LOCAL_CREATE,  /* a new file */
	LOCAL_MKDIR,   /* a new folder */
	LOCAL_WRITE,   /* open for writing, truncate, set times or mode */
	LOCAL_RENAME,  /* rel is the new name; old_rel the old one */
	LOCAL_REMOVE,  /* unlink or rmdir */
	LOCAL_RELEASE, /* done only: the last close of a file handed over
			* open (see local_call.open); nothing changed */
};

/* One change in an app's area, as the hooks see it. rel is relative to the area's
 * folder ("org-910000001/a.pdf"); self tells whether the caller is one of
 * the daemon's own threads (writing through its mount). */
struct local_call {
	const char *org;
	const char *app;
	enum local_area area;
	enum local_op op;
	const char *rel;
	const char *old_rel; /* LOCAL_RENAME: the name it had */
	enum local_area old_area; /* LOCAL_RENAME: the area it came from;
				   * only our own threads move files
				   * between areas (outbox -> failed) */
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
};

/* ---- writes into existing instances: data/<type>/<name> ----
 * The fs asks the module that journals them (daemon/instwrite.c). */
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

#endif
