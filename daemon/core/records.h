/* records.h - the keyed record store, for journal state that is not a
 * queue: the events' cursors and the ids they have seen, the outbox's
 * data elements of an item and the facts it learnt.
 *
 * A store is a named set of records in a journal (journal.h). A record is
 * found by its group and key ("ttd/app", an event id), carries an order
 * (ord: a sequence number, an index) and a time (at), both integers the
 * store can sort and trim by, and up to RECORD_MAX_FIELDS text fields the
 * family names (one JSON object in the file). A call returns once its
 * change is committed (journal.h says how durably); several may be one
 * commit inside journal_begin/end. Functions return 0 or -errno
 * (-ENOSPC for a full disk, -EIO otherwise, logged). */
#ifndef ALTINNFS_RECORDS_H
#define ALTINNFS_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

struct journal;
struct records;

#define RECORD_MAX_FIELDS 12

struct records_def {
	const char *name;          /* the store's name in its journal: "events_seen" */
	const char *const *fields; /* the fields' names */
	int n_fields;
};

struct record {
	char *group;
	char *key;
	int64_t ord;
	int64_t at;
	char *f[RECORD_MAX_FIELDS]; /* by the def's field names; NULL for none */
};

/* def must outlive the store. */
int records_open(struct journal *j, const struct records_def *def, struct records **ret);
void records_close(struct records *rs); /* NULL is fine */

/* Writes rec, replacing the record of its group and key. */
int records_put(struct records *rs, const struct record *rec);
/* Writes rec unless its group and key are taken: *ret_added says which. */
int records_add(struct records *rs, const struct record *rec, bool *ret_added);
/* -ENOENT when there is none. */
int records_get(struct records *rs, const char *group, const char *key, struct record *ret);
/* The first record of group (by key) whose ord is ord; -ENOENT when none. */
int records_at_ord(struct records *rs, const char *group, int64_t ord, struct record *ret);
/* Each record of group by ord, then key; cb may take the strings (set
 * them NULL) and returns non-zero to stop. Runs under the journal's lock. */
int records_list(struct records *rs, const char *group,
		 int (*cb)(void *ctx, struct record *rec), void *ctx);
/* Deletes the record of group and key, or every record of group when key
 * is NULL. */
int records_delete(struct records *rs, const char *group, const char *key);
/* The highest ord of group, 0 when it has none. */
int records_max_ord(struct records *rs, const char *group, int64_t *ret);
/* Keeps the keep records of group with the highest ord and deletes the
 * rest; *ret_newest_at gets the highest `at` deleted (0: none was). */
int records_trim(struct records *rs, const char *group, uint64_t keep, int64_t *ret_newest_at);
/* Does a record outside group skip_group (NULL: none) have field i equal
 * to value? */
int records_used(struct records *rs, int field, const char *value, const char *skip_group,
		 bool *ret);

void record_clear(struct record *rec); /* frees the strings; NULL is fine */

#endif
