/* queue.h - the one durable queue every family's journal is made of.
 *
 * A queue is a named set of items in a journal (journal.h). Each item has
 * a key the family chooses ("org/app/party/guid"), a state from the
 * family's enum (kept by name, from the family's table: states.h), a
 * count of failed tries, the times it was made, is due, was last tried
 * and ended, the last error, and up to QUEUE_MAX_FIELDS text fields the
 * family names (kept as one JSON object, readable with the sqlite3
 * shell). A call returns once its change is on disk.
 *
 * The family draws its own states and transitions in its header (as
 * spool.h does); the queue moves an item only where the family says.
 * What the queue adds is the same for every family:
 *
 *   queue_add ----> [state s, due now] --queue_next_due--> worked by the family
 *                        ^                                      |
 *                        |   queue_retry: tries+1, due later    | failed, may work later
 *                        +--------------------------------------+
 *                                                               | queue_given_up: older than
 *                                                               v the family's give-up age
 *                                                             ended (a final state, done_at)
 *
 * Times are milliseconds on the journal's clock (journal_now_ms: wall
 * time at open plus monotonic time since): stored as wall time so they
 * hold across a restart, and measured on CLOCK_MONOTONIC within a run.
 * A due time further ahead than the queue's longest backoff (the wall
 * clock went back between two runs) counts as due at that longest
 * backoff, so no clock change strands an item.
 *
 * Every call may come from any thread; they are serialized by the
 * journal's lock, and a family may group several in journal_begin/end.
 * Functions return 0 or -errno (-ENOSPC for a full disk, -EIO otherwise,
 * logged). */
#ifndef ALTINNFS_QUEUE_H
#define ALTINNFS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;
struct queue;

#define QUEUE_MAX_FIELDS 16
/* The bit of state st in a mask of states. */
#define QUEUE_STATE(st) (1u << (st))
#define QUEUE_ALL_STATES (~0u)

struct queue_def {
	const char *name;                  /* the queue's name in its journal: "inbox" */
	const char *const *states;         /* by the family's enum, at most 32 */
	int n_states;
	const char *const *fields;         /* the payload's field names */
	int n_fields;
	int64_t max_backoff_ms;            /* the cap of queue_retry's wait */
};

struct queue_item {
	int64_t id;           /* 0 until added */
	char *key;
	int state;            /* the family's enum; -1 for a name not in its table */
	unsigned tries;       /* failed tries in a row */
	int64_t created_at;   /* received: give-up ages count from here */
	int64_t due_at;       /* not before: 0 is at once */
	int64_t attempt_at;   /* the last try began */
	int64_t done_at;      /* ended (a final state), or 0 */
	char *last_error;
	char *f[QUEUE_MAX_FIELDS]; /* by the def's field names; NULL for none */
};

/* Which items a list, count or delete is about; zeroed, it is all of them. */
struct queue_query {
	const char *key;        /* exactly this key */
	const char *key_prefix; /* keys that begin with this */
	unsigned states;        /* a mask of QUEUE_STATE bits; 0 is all */
	const char *match[QUEUE_MAX_FIELDS]; /* field i equals match[i] (when not NULL) */
	int64_t done_before;    /* done_at below this (and not 0) */
	int64_t skip_id;        /* not this item */
	size_t limit;           /* 0 is no limit */
	bool by_due;            /* ordered by due time, then id (else by id) */
	bool newest_first;      /* by id, descending */
};

/* def must outlive the queue. */
int queue_open(struct journal *j, const struct queue_def *def, struct queue **ret);
void queue_close(struct queue *q); /* NULL is fine */
int64_t queue_now_ms(const struct queue *q);

/* Adds it (created_at defaults to now) and sets it->id; an id already
 * set is kept (an upgrade carrying an earlier version's ids). */
int queue_add(struct queue *q, struct queue_item *it);
/* Ends the items of it->key in the states of waiting, then adds it: one
 * commit (a new drop replaces one that was still waiting). */
int queue_replace(struct queue *q, struct queue_item *it, unsigned waiting);
/* Writes every column of the saved item it->id. */
int queue_save(struct queue *q, const struct queue_item *it);
int queue_delete(struct queue *q, int64_t id);
/* -ENOENT when there is none. */
int queue_get(struct queue *q, int64_t id, struct queue_item *ret);
/* The newest item of key in one of states; -ENOENT when none. */
int queue_find(struct queue *q, const char *key, unsigned states, struct queue_item *ret);

/* Calls cb for each item of qq in order, under the journal's lock (cb
 * must not wait for anything slow); the item is cleared after cb, unless
 * cb takes its strings (setting them NULL). cb returns non-zero to stop. */
int queue_list(struct queue *q, const struct queue_query *qq,
	       int (*cb)(void *ctx, struct queue_item *it), void *ctx);
int queue_count(struct queue *q, const struct queue_query *qq, uint64_t *ret);
int queue_delete_where(struct queue *q, const struct queue_query *qq);

/* The first item in one of states that is due (by due time, then id),
 * passing over those skip says to (NULL: none): 1 with *ret filled, or 0
 * with *ret_wait_ms until the next one is due (-1 when none is). */
int queue_next_due(struct queue *q, unsigned states, bool (*skip)(void *ctx, int64_t id),
		   void *ctx, struct queue_item *ret, int64_t *ret_wait_ms);

/* A failed try: tries+1, due after core/retry.c's backoff (Retry-After,
 * in ms, when longer; -1 for none), last_error set. Not saved: the family
 * saves it with its own changes. Returns the wait in ms. */
int64_t queue_retry(struct queue *q, struct queue_item *it, const char *error,
		    long retry_after_ms);
/* Has it been failing longer than give_up_ms since it was made? */
bool queue_given_up(const struct queue *q, const struct queue_item *it, int64_t give_up_ms);

void queue_item_clear(struct queue_item *it); /* frees the strings; NULL is fine */
/* A copy of s into *field (freeing what was there); NULL clears it. */
void queue_set(char **field, const char *s);

#endif
