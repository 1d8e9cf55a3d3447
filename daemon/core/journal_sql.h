/* journal_sql.h - SQLite under core's journal, for core only (journal.c,
 * queue.c, records.c; the families see journal.h): a journal's insides,
 * opening a database one way, the one errno of a failure and the little
 * helpers every statement needs (journal_sql.c). */
#ifndef ALTINNFS_JOURNAL_SQL_H
#define ALTINNFS_JOURNAL_SQL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

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

/* Opens (creating) the database at path: WAL, synchronous=FULL (NORMAL
 * when relaxed), a busy timeout, then schema (may be NULL). 0 with the
 * connection in *ret, or -errno, logged naming who and path; *ret is
 * untouched on failure. */
int jr_open(const char *who, const char *path, const char *schema, bool relaxed,
	    struct sqlite3 **ret);
/* The same, never relaxed, for tests; and its close (NULL is fine). */
int journal_open(const char *who, const char *path, const char *schema, struct sqlite3 **ret);
void journal_close(struct sqlite3 *db);
/* The -errno of a failed call on db (rc its result code, or 0 for the
 * connection's last one): -ENOSPC for a full disk, -EIO for anything
 * else, logged as "who: what: SQLite's message". */
int journal_errno(struct sqlite3 *db, int rc, const char *who, const char *what);

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
