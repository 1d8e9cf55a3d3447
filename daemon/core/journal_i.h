/* journal_i.h - a journal's insides, for core's stores (queue.c,
 * records.c) only: the connection, its lock and the little helpers every
 * statement needs. */
#ifndef ALTINNFS_JOURNAL_I_H
#define ALTINNFS_JOURNAL_I_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "journal.h"

struct journal {
	char *who;             /* for logs: "inbox" */
	sqlite3 *db;           /* protected by lock */
	pthread_mutex_t lock;  /* recursive: a store's call inside journal_begin/end */
	int64_t clock_base_ms; /* wall minus monotonic when opened */
	bool relaxed;
	bool sync_raised;      /* protected by lock: a durable transaction is open */
	int depth;             /* protected by lock: journal_begin calls not yet ended */
	int doomed;            /* protected by lock: an inner one failed with this */
};

/* A statement of our own SQL; NULL (logged) only for a bug or a broken
 * database. Finalize with sqlite3_finalize. Caller holds lock. */
sqlite3_stmt *jr_prepare(struct journal *j, const char *sql);
/* Steps a statement that returns no row, finalizes it: 0 or -errno. */
int jr_run(struct journal *j, sqlite3_stmt *st, const char *what);
int jr_errno(struct journal *j, int rc, const char *what);
void jr_bind_text(sqlite3_stmt *st, int i, const char *s); /* NULL binds NULL */
char *jr_col_text(sqlite3_stmt *st, int i);               /* NULL for NULL */
/* "'a','b'" of the names whose bit is set in mask, quoted for SQL; the
 * names are our own (a family's state table), never a user's. */
char *jr_name_list(const char *const *names, int n, unsigned mask);

#endif
