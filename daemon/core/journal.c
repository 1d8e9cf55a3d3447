/* journal.c - opening a journal and naming its errors (see journal.h).
 *
 * The pragmas are run on every open: journal_mode=WAL persists in the
 * file, synchronous does not. The busy timeout only matters if another
 * process (sqlite3 on the command line) holds the file for a moment. */
#include "journal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>

#include "log.h"

#define JOURNAL_BUSY_MS 10000

int journal_errno(struct sqlite3 *db, int rc, const char *who, const char *what)
{
	int code = (rc ? rc : db ? sqlite3_errcode(db) : SQLITE_ERROR) & 0xff;

	return log_errno(code == SQLITE_FULL ? -ENOSPC : -EIO, "%s: %s: %s", who, what,
			 db ? sqlite3_errmsg(db) : "out of memory");
}

int journal_open(const char *who, const char *path, const char *schema, struct sqlite3 **ret)
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
	rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
			  NULL);
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

void journal_close(struct sqlite3 *db)
{
	sqlite3_close(db);
}
