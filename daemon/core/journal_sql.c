/* journal_sql.c - SQLite for core's stores: opening a database one way
 * and naming its errors, and the small helpers every statement of
 * journal.c, queue.c and records.c needs (see journal_sql.h).
 *
 * The pragmas are run on every open: journal_mode=WAL persists in the
 * file, synchronous does not. The busy timeout only matters if another
 * process (sqlite3 on the command line) holds the file for a moment. */
#include "journal_sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define JOURNAL_BUSY_MS 10000

int journal_errno(struct sqlite3 *db, int rc, const char *who, const char *what)
{
	int code = (rc ? rc : db ? sqlite3_errcode(db) : SQLITE_ERROR) & 0xff;

	return log_errno(code == SQLITE_FULL ? -ENOSPC : -EIO, "%s: %s: %s", who, what,
			 db ? sqlite3_errmsg(db) : "out of memory");
}

int jr_open(const char *who, const char *path, const char *schema, bool relaxed,
	    struct sqlite3 **ret)
{
	sqlite3 *db = NULL;
	int rc, r;

	rc = sqlite3_open_v2(path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = journal_errno(db, rc, who, path);
		sqlite3_close(db);
		return r;
	}
	sqlite3_busy_timeout(db, JOURNAL_BUSY_MS);
	rc = sqlite3_exec(db, relaxed ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				      : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK && schema)
		rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = journal_errno(db, rc, who, path);
		sqlite3_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

int journal_open(const char *who, const char *path, const char *schema, struct sqlite3 **ret)
{
	return jr_open(who, path, schema, false, ret);
}

void journal_close(struct sqlite3 *db)
{
	sqlite3_close(db);
}

int jr_errno(struct journal *j, int rc, const char *what)
{
	return journal_errno(j->db, rc, j->who, what);
}

sqlite3_stmt *jr_prepare(struct journal *j, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
		jr_errno(j, 0, sql);
		return NULL;
	}
	return st;
}

int jr_run(struct journal *j, sqlite3_stmt *st, const char *what)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	return jr_errno(j, rc, what);
}

void jr_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

char *jr_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? xstrdup((const char *)s) : NULL;
}

char *jr_name_list(const char *const *names, int n, unsigned mask)
{
	size_t len = 1, at = 0;
	char *out;

	for (int i = 0; i < n; i++)
		if (mask & (1u << i))
			len += strlen(names[i]) + 3;
	out = xmalloc(len + 2);
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		if (mask & (1u << i))
			at += (size_t)sprintf(out + at, "%s'%s'", at ? "," : "", names[i]);
	if (!at)
		strcpy(out, "''"); /* no state: matches nothing */
	return out;
}

