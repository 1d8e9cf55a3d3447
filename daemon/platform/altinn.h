/* altinn.h - the platform, as fs/ sees it: plain structs and calls.
 *
 * The platform client's face for fs/ (the families also use api_app.h and
 * api_events.h); its insides (altinn_i.h, http.h, auth.h) stay in
 * platform/, which docs/design.md's checked table holds. Nothing here
 * mentions HTTP, curl or JSON: every call returns 0 or a negative errno,
 * mapped from the platform's answer by one table (docs/errors.md):
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
	/* allowedContributors ("org:ttd", "orgno:...", "app:owned"),
	 * NULL-terminated; NULL or empty: anyone who may write the instance */
	char **allowed_contributors;
	char *action_required_to_write; /* NULL when absent */
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
	char *content_hash; /* contentHash as the platform gave it; NULL when absent */
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
	bool hard_deleted; /* status.isHardDeleted: gone for all but its owner */
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
	bool with_deleted; /* also hard-deleted ones (no status.isHardDeleted=false) */
};

/* Called once per instance, in platform order; the callback owns one
 * reference. A non-zero return stops the listing and is returned. */
typedef int (*alt_instance_cb)(struct alt_instance *inst, void *ctx);

/* Once in main before any thread starts (curl's global state, jansson's
 * hash seed), and once at exit. 0 or -errno. */
int altinn_global_init(void);
void altinn_global_cleanup(void);

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

/* One page of the query: the first when from is NULL, else the page that
 * from (a `next` link an earlier call returned) names, kept on the
 * configured platform. Delivers its instances to cb and sets *ret_next to
 * the next page's link (the caller frees it; it carries Storage's
 * continuationToken, so a walk can resume from it after a restart), or
 * NULL after the last page. One request; no loop or size check, which is
 * the caller's (it sees every link). */
int altinn_list_page(struct altinn *a, const struct alt_query *q, const char *from,
		     alt_instance_cb cb, void *ctx, char **ret_next);

/* altinn_list_page in steps, so a walk can ask for the next page while
 * it stores this one: fetch (one request, nothing parsed), peek at the
 * page's `next` link and `count` as its top level states them (NULL and
 * -1 when not found without a parse), deliver (altinn_page_deliver_raw
 * below), free. */
struct alt_page;
int altinn_page_fetch(struct altinn *a, const struct alt_query *q, const char *from,
		      struct alt_page **ret);
void altinn_page_peek(const struct alt_page *p, char **ret_next, long long *ret_count);
void altinn_page_free(struct alt_page *p); /* NULL is fine */
/* A page's instances as the index keeps them: the facts it keys on and
 * the instance's document as text that altinn_parse_instance takes (the
 * platform's own bytes when they could be checked without a parse, else
 * the document re-serialised). The instances a page parse keeps, in
 * order, and *ret_next as altinn_list_page gives them; the pointers live
 * until cb returns. */
struct alt_raw_instance {
	const char *party_id; /* digits */
	const char *guid;     /* lowercase */
	struct timespec created, last_changed;
	bool is_complete, hard_deleted;
	const char *doc;
	size_t doc_len;
};
typedef int (*alt_raw_cb)(const struct alt_raw_instance *ri, void *ctx);
int altinn_page_deliver_raw(struct altinn *a, struct alt_page *p, alt_raw_cb cb, void *ctx,
			    char **ret_next);

/* An instance document as kept (inst->doc) parsed again, as a query page's
 * or a GET's would be: one reference in *ret, or -EIO. */
int altinn_parse_instance(const char *doc, size_t len, struct alt_instance **ret);

/* Storage GET /instances/{partyId}/{instanceGuid} */
int altinn_get_instance(struct altinn *a, const char *party_id, const char *guid,
			struct alt_instance **ret);

/* Reading one data element's bytes with HTTP range requests.
 * A reader belongs to one open file; reads may come from several threads
 * at once. Sequential reads are served from a read-ahead stream of bounded
 * range windows that grow while reading stays sequential, in a ring of
 * ALT_STREAM_WINDOW bytes; random reads become single range requests. */
struct alt_reader;
/* content_hash: the element's contentHash, or NULL; a sha256 (hex or
 * base64) is checked against the bytes before the cache serves them. */
int altinn_reader_open(struct altinn *a, const char *party_id, const char *instance_guid,
		       const char *data_guid, uint64_t size, const struct timespec *last_changed,
		       const char *content_hash, struct alt_reader **ret);
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
	char token_scope[512];  /* its scopes, space-separated; "" when unknown */
	uint64_t requests;     /* HTTP requests made since start */
	struct alt_cache_status cache;
};
void altinn_health(struct altinn *a, struct alt_health *ret);

/* status.json, rendered from what the daemon knows (no request is made).
 * Returns a malloc'd NUL-terminated document ending in "\n". */
/* An app's instance index (daemon/index/, docs/index.md), for status.json. */
struct alt_status_index {
	bool on;
	const char *state;     /* "idle", "walking", "complete", "failed" */
	bool partial;          /* instances/ lists only what is indexed so far */
	uint64_t instances;    /* rows held */
	uint64_t pages;        /* pages of the walk so far */
	uint64_t refreshes;    /* incremental refreshes made */
	uint64_t refresh_pages; /* their pages (requests) */
	struct timespec started_at;   /* the walk's start; zero before */
	struct timespec completed_at; /* its end; zero while it runs */
	struct timespec estimated_completion; /* zero when unknown or done */
	struct timespec refreshed_at; /* the last refresh; zero before */
	struct timespec newest;       /* the newest lastChanged seen */
	const char *since;     /* index_since, or NULL */
	char last_error[160];  /* "" when the last walk or refresh went well */
};

struct alt_status_app {
	const char *id; /* org/app */
	bool metadata_loaded;
	uint64_t instances_listed;
	struct timespec listed_at;
	/* filled by the events module, when it runs */
	char event_cursor[64];        /* "" when none yet */
	struct timespec last_poll_at; /* zero when never */
	uint64_t pending_event_files;
	bool push;                 /* webhook push is configured */
	int64_t push_subscription; /* its subscription id, 0 before one is known */
	bool push_validated;       /* the platform validated it: it pushes */
	struct alt_status_index index;
};
struct alt_status_outbox {
	uint64_t pending;
	struct timespec oldest_pending_at; /* zero when none */
	uint64_t retries;
	uint64_t failed;
	/* every journal's give-up age in seconds (0: not shown); filled by
	 * altinn_status_render from the configuration */
	int give_up_s;
	int instance_writes_give_up_s;
	int inbox_give_up_s;
};
char *altinn_status_render(struct altinn *a, const char *mountpoint,
			   const struct alt_status_app *apps, size_t n_apps,
			   const struct alt_status_outbox *outbox);

/* ---- the service owner's actions on one instance ---- */

enum alt_action_verb {
	ALT_ACTION_NEXT,      /* PUT process/next, arg: an action or NULL */
	ALT_ACTION_COMPLETE,  /* POST complete */
	ALT_ACTION_SUBSTATUS, /* PUT substatus, arg: the label */
};

struct alt_action {
	const char *org, *app, *party, *guid;
	enum alt_action_verb verb;
	const char *arg;
	const char *description; /* SUBSTATUS: or NULL */
};

struct alt_action_reply {
	long status;       /* HTTP status; 0 when no answer came */
	char what[512];    /* NEXT done: the process's new state, one line */
	char message[512]; /* refused or failed: the platform's problem text */
};

/* Performs one action with the App API (one request; process/next is
 * never repeated). Returns 0, or -EBUSY (409), -EACCES (401/403),
 * -EINVAL (400, or an argument the platform cannot be given), -ENOENT
 * (404), -EIO (5xx), -ETIMEDOUT or -ECANCELED (no answer in time), with
 * what the platform said in *ret. */
int altinn_instance_action(struct altinn *a, const struct alt_action *act,
			   struct alt_action_reply *ret);

#endif
