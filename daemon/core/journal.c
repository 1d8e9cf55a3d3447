/* journal.c - a journal: its database (opened by journal_sql.c), its
 * lock, its transactions, its clock and its upgrades (see journal.h).
 *
 * The two shared tables are created here, for queue.c and records.c:
 * queue_items (one row per item of a durable queue, its family's fields
 * as a JSON object in payload) and records (one row per keyed record).
 * They live next to whatever an earlier version left in the same file
 * until the family imports and drops that (journal_import). */
#include "journal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_sql.h"
#include "log.h"
#include "retry.h"
#include "xalloc.h"

static const char shared_schema[] =
	"CREATE TABLE IF NOT EXISTS queue_items ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, key TEXT NOT NULL,"
	" state TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL DEFAULT 0, due_at INTEGER NOT NULL DEFAULT 0,"
	" attempt_at INTEGER NOT NULL DEFAULT 0, done_at INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT, payload TEXT NOT NULL DEFAULT '{}');"
	"CREATE INDEX IF NOT EXISTS queue_items_key ON queue_items (queue, key);"
	"CREATE INDEX IF NOT EXISTS queue_items_due ON queue_items (queue, state, due_at);"
	"CREATE TABLE IF NOT EXISTS records ("
	" store TEXT NOT NULL, grp TEXT NOT NULL, key TEXT NOT NULL,"
	" ord INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL DEFAULT 0,"
	" payload TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (store, grp, key)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS records_ord ON records (store, grp, ord);";

int journal_new(const char *who, const char *path, bool relaxed, struct journal **ret)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	pthread_mutexattr_t attr;
	int r;

	r = jr_open(who, path, shared_schema, relaxed, &j->db);
	if (r < 0) {
		free(j);
		return r;
	}
	j->who = xstrdup(who);
	j->relaxed = relaxed;
	j->clock_base_ms = retry_wall_ms() - retry_mono_ms();
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&j->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	*ret = j;
	return 0;
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	sqlite3_close(j->db);
	pthread_mutex_destroy(&j->lock);
	free(j->who);
	free(j);
}

int64_t journal_now_ms(const struct journal *j)
{
	return j->clock_base_ms + retry_mono_ms();
}

/* ---- transactions */

static int exec(struct journal *j, const char *sql)
{
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : jr_errno(j, rc, sql);
}

int journal_begin(struct journal *j, bool durable)
{
	int r = 0;

	pthread_mutex_lock(&j->lock);
	if (j->depth++ > 0)
		return 0; /* inside another: one commit, the outermost's */
	j->doomed = 0;
	/* synchronous cannot change inside a transaction */
	if (durable && j->relaxed) {
		r = exec(j, "PRAGMA synchronous=FULL");
		j->sync_raised = r == 0;
	}
	if (r == 0)
		r = exec(j, "BEGIN IMMEDIATE");
	if (r < 0) {
		if (j->sync_raised)
			exec(j, "PRAGMA synchronous=NORMAL");
		j->sync_raised = false;
		j->depth--;
		pthread_mutex_unlock(&j->lock);
	}
	return r;
}

int journal_end(struct journal *j, int r)
{
	if (--j->depth > 0) {
		if (r < 0 && !j->doomed)
			j->doomed = r; /* the outermost rolls back */
		pthread_mutex_unlock(&j->lock);
		return r;
	}
	if (r == 0 && j->doomed)
		r = j->doomed;
	if (r == 0)
		r = exec(j, "COMMIT");
	if (r < 0)
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	if (j->sync_raised)
		exec(j, "PRAGMA synchronous=NORMAL");
	j->sync_raised = false;
	pthread_mutex_unlock(&j->lock);
	return r;
}

/* ---- upgrades */

bool journal_has_table(struct journal *j, const char *table)
{
	sqlite3_stmt *st;
	bool found = false;

	pthread_mutex_lock(&j->lock);
	st = jr_prepare(j, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
	if (st) {
		jr_bind_text(st, 1, table);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&j->lock);
	return found;
}

/* "a","b" of the columns, quoted as SQL names (ours: a family's list) */
static char *col_list(const char *const *cols, int n)
{
	size_t len = 1;
	char *out;

	for (int i = 0; i < n; i++)
		len += strlen(cols[i]) + 3;
	out = xcalloc(1, len);
	for (int i = 0; i < n; i++)
		sprintf(out + strlen(out), "%s\"%s\"", i ? "," : "", cols[i]);
	return out;
}

int journal_import(struct journal *j, const char *table, const char *const *cols, int n_cols,
		   int (*row)(void *ctx, const char *const *vals), void *ctx)
{
	char *list = col_list(cols, n_cols), *sql = xasprintf("SELECT %s FROM \"%s\"", list, table);
	const char **vals = xcalloc((size_t)n_cols + 1, sizeof(*vals));
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = 0, n = 0;

	pthread_mutex_lock(&j->lock);
	st = jr_prepare(j, sql);
	if (!st)
		r = -EIO;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < n_cols; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		r = row(ctx, vals);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = jr_errno(j, rc, sql);
	sqlite3_finalize(st);
	free(sql);
	if (r == 0) {
		sql = xasprintf("DROP TABLE \"%s\"", table);
		r = exec(j, sql);
		free(sql);
	}
	if (r == 0)
		log_info("%s: %d rows of an earlier version's \"%s\" moved into the shared journal",
			 j->who, n, table);
	pthread_mutex_unlock(&j->lock);
	free(vals);
	free(list);
	return r;
}
