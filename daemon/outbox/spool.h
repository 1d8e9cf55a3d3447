/* spool.h - the outbox's journal: one row per dropped item, durably.
 *
 * The bytes of an item are the file (or folder) itself in the outbox
 * area, made durable by fs/ before close() returns. What happened to it
 * on the platform lives here, in SQLite (WAL, synchronous=FULL): a state
 * per item and per data element, with each remote id and the time of
 * each attempt whose outcome a crash could leave unknown. A save returns
 * only once it is on disk, so "the id is recorded before the next step"
 * holds across kill -9 and power loss. See docs/outbox.md.
 *
 * All functions may be called from any thread; calls are serialized on
 * one connection. They return 0 or a negative errno (-ENOSPC when the
 * disk is full, -EIO otherwise) and log what went wrong. */
#ifndef ALTINNFS_SPOOL_H
#define ALTINNFS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum spool_state {
	SPOOL_WRITING,    /* open for writing: not a submission yet */
	SPOOL_HELD,       /* incomplete or of unknown origin: waits for the user */
	SPOOL_RECEIVED,   /* complete; nothing sent yet */
	SPOOL_CREATING,   /* POST instances sent; outcome unknown until answered */
	SPOOL_CREATED,    /* the instance id is recorded; uploading elements */
	SPOOL_UPLOADED,   /* every element's id is recorded */
	SPOOL_SUBMITTING, /* PUT process/next sent; outcome unknown until answered */
	SPOOL_SUBMITTED,  /* the platform has it all; the receipt is being written */
	SPOOL_FAILING,    /* refused; the dead letter is being written */
	SPOOL_DONE,       /* receipt in sent/, item gone from outbox/ */
	SPOOL_FAILED,     /* bytes and error in failed/ */
	SPOOL_N_STATES
};

enum spool_el_state { SPOOL_EL_PENDING, SPOOL_EL_SENDING, SPOOL_EL_UPLOADED };

/* One file of an item: a data element to be. */
struct spool_element {
	char *path;         /* below the item folder; "" for a file item */
	char *filename;     /* as sent in Content-Disposition */
	char *content_type;
	char *data_type;
	uint64_t size;
	char sha256[65];
	enum spool_el_state state;
	int64_t attempt_at; /* ms: the last upload attempt began */
	char *data_id;      /* once uploaded */
	/* the platform's filename when it is not `filename` (the upload's
	 * answer says so); kept for the receipt, not journaled */
	char *stored_name;
};

/* Times are milliseconds since the epoch; 0 is "never". */
struct spool_item {
	int64_t id; /* 0 until first saved */
	char *org;
	char *app;
	char *rel; /* "<owner>/<name>" below outbox/ */
	bool is_dir;
	enum spool_state state;
	int64_t received_at;
	int64_t next_at;          /* not before: backoff */
	int64_t attempt_at;       /* the last create or next attempt began */
	int64_t first_attempt_at;
	int64_t finished_at;
	unsigned attempts;        /* attempts that failed and were retried */
	char *instance_id;        /* "<partyId>/<guid>" once known */
	char *task;               /* the process task before process/next */
	char *last_error;
	char *outcome_name;       /* the name chosen in sent/ or failed/ */
	char *outcome_doc;        /* the receipt or dead letter, once decided */
	struct spool_element *els;
	size_t n_els;
};

struct spool;

/* Opens (creating) the journal at path; drops finished items older than
 * keep_days. */
int spool_open(const char *path, int keep_days, struct spool **ret);
void spool_close(struct spool *sp); /* NULL is fine */

const char *spool_state_name(enum spool_state st);
bool spool_state_parse(const char *name, enum spool_state *ret);

/* Every item not DONE or FAILED, with its elements, oldest first; the
 * callback takes ownership of the item (free with spool_item_free). */
int spool_load(struct spool *sp, void (*cb)(void *ctx, struct spool_item *it), void *ctx);

/* Writes the item row (inserting it when id is 0, and then setting id;
 * an unfinished row with the same org/app/rel is replaced). With
 * elements, the element rows are rewritten too. */
int spool_save(struct spool *sp, struct spool_item *it, bool elements);
/* Writes one element row of a saved item. */
int spool_save_element(struct spool *sp, const struct spool_item *it, size_t idx);
int spool_delete(struct spool *sp, int64_t id);

/* Does any item (not skip_id) hold this instance / data element id? */
bool spool_instance_claimed(struct spool *sp, const char *instance_id, int64_t skip_id);
bool spool_data_claimed(struct spool *sp, const char *data_id, int64_t skip_id);
/* Items that ended in failed/, over what the journal keeps. */
uint64_t spool_count_failed(struct spool *sp);

/* Small facts learnt from the platform: the partyId of an owner folder,
 * the createdBy of our own instances. ret NULL when unknown. */
int spool_fact_get(struct spool *sp, const char *key, char **ret);
int spool_fact_set(struct spool *sp, const char *key, const char *value);

void spool_item_free(struct spool_item *it);    /* NULL is fine */
void spool_elements_clear(struct spool_item *it);

#endif
