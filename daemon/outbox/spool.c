/* spool.c - the outbox's journal in SQLite (see spool.h).
 *
 * Why SQLite: each transition is a small transaction that must be on
 * disk before the next remote call, and a crash at any instant must
 * leave either the old row or the new one. SQLite in WAL mode with
 * synchronous=FULL gives exactly that (one fsync of the WAL per commit,
 * no torn rows, readers never blocked), is already a dependency, and is
 * easy to inspect with the sqlite3 shell when something looks wrong. A
 * file per item with rename-into-place would work too, but would need
 * its own parser, fsync discipline and scan on start.
 *
 * Rows are never updated in place by two threads: the outbox gives each
 * item to one thread at a time. The mutex here only keeps statements of
 * different items from interleaving inside one transaction. */
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "log.h"
#include "states.h"
#include "xalloc.h"

struct spool {
	sqlite3 *db;
	pthread_mutex_t lock; /* one transaction at a time */
};

static const char *const state_names[SPOOL_N_STATES] = {
	[SPOOL_WRITING] = "writing",       [SPOOL_HELD] = "held",
	[SPOOL_RECEIVED] = "received",     [SPOOL_CREATING] = "creating",
	[SPOOL_CREATED] = "created",       [SPOOL_UPLOADED] = "uploaded",
	[SPOOL_SUBMITTING] = "submitting", [SPOOL_SUBMITTED] = "submitted",
	[SPOOL_FAILING] = "failing",       [SPOOL_DONE] = "done",
	[SPOOL_FAILED] = "failed",
};

static const char *const el_state_names[] = { "pending", "sending", "uploaded" };

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS items ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, app TEXT NOT NULL, rel TEXT NOT NULL,"
	" is_dir INTEGER NOT NULL, state TEXT NOT NULL, received_at INTEGER NOT NULL,"
	" next_at INTEGER NOT NULL, attempt_at INTEGER NOT NULL,"
	" first_attempt_at INTEGER NOT NULL, finished_at INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL, instance_id TEXT, task TEXT, last_error TEXT,"
	" outcome_name TEXT, outcome_doc TEXT);"
	"CREATE INDEX IF NOT EXISTS items_rel ON items(org, app, rel);"
	"CREATE INDEX IF NOT EXISTS items_instance ON items(instance_id);"
	"CREATE TABLE IF NOT EXISTS elements ("
	" item_id INTEGER NOT NULL, idx INTEGER NOT NULL, path TEXT NOT NULL,"
	" filename TEXT NOT NULL, content_type TEXT NOT NULL, data_type TEXT NOT NULL,"
	" size INTEGER NOT NULL, sha256 TEXT NOT NULL, state TEXT NOT NULL,"
	" attempt_at INTEGER NOT NULL, data_id TEXT, PRIMARY KEY (item_id, idx));"
	"CREATE INDEX IF NOT EXISTS elements_data ON elements(data_id);"
	"CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

const char *spool_state_name(enum spool_state st)
{
	return state_name(state_names, SPOOL_N_STATES, (int)st);
}

bool spool_state_parse(const char *name, enum spool_state *ret)
{
	int st;

	if (!state_parse(state_names, SPOOL_N_STATES, name, &st))
		return false;
	*ret = (enum spool_state)st;
	return true;
}

static int sql_errno(struct spool *sp, int rc, const char *what)
{
	return journal_errno(sp->db, rc, "spool", what);
}

static int exec(struct spool *sp, const char *sql)
{
	int rc = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_errno(sp, rc, sql);
}

static sqlite3_stmt *prepare(struct spool *sp, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK) {
		/* our own SQL: only a bug or a broken database gets here */
		log_error("spool: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(sp->db));
		return NULL;
	}
	return st;
}

/* Runs a statement that returns no rows, then finalizes it. */
static int run(struct spool *sp, sqlite3_stmt *st, const char *what)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_errno(sp, rc, what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int spool_open(const char *path, int keep_days, struct spool **ret)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	sqlite3_stmt *st;
	int r;

	pthread_mutex_init(&sp->lock, NULL);
	r = journal_open("spool", path, NULL, &sp->db);
	if (r < 0) {
		spool_close(sp);
		return r;
	}
	r = exec(sp, schema);
	if (r == 0) {
		st = prepare(sp, "DELETE FROM elements WHERE item_id IN (SELECT id FROM items"
				 " WHERE state IN ('done','failed') AND finished_at < ?1);"
				 );
		if (st)
			sqlite3_bind_int64(st, 1, now_ms() - (int64_t)keep_days * 86400000);
		r = run(sp, st, "prune elements");
	}
	if (r == 0) {
		st = prepare(sp, "DELETE FROM items WHERE state IN ('done','failed') AND finished_at < ?1");
		if (st)
			sqlite3_bind_int64(st, 1, now_ms() - (int64_t)keep_days * 86400000);
		r = run(sp, st, "prune items");
	}
	if (r < 0) {
		spool_close(sp);
		return r;
	}
	*ret = sp;
	return 0;
}

void spool_close(struct spool *sp)
{
	if (!sp)
		return;
	if (sp->db)
		sqlite3_close(sp->db);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}

void spool_elements_clear(struct spool_item *it)
{
	for (size_t i = 0; i < it->n_els; i++) {
		free(it->els[i].path);
		free(it->els[i].filename);
		free(it->els[i].stored_name);
		free(it->els[i].content_type);
		free(it->els[i].data_type);
		free(it->els[i].data_id);
	}
	free(it->els);
	it->els = NULL;
	it->n_els = 0;
}

void spool_item_free(struct spool_item *it)
{
	if (!it)
		return;
	spool_elements_clear(it);
	free(it->org);
	free(it->app);
	free(it->rel);
	free(it->instance_id);
	free(it->task);
	free(it->last_error);
	free(it->outcome_name);
	free(it->outcome_doc);
	free(it);
}

/* ---- loading */

static void load_elements(struct spool *sp, struct spool_item *it)
{
	sqlite3_stmt *st = prepare(sp, "SELECT path, filename, content_type, data_type, size,"
				       " sha256, state, attempt_at, data_id FROM elements"
				       " WHERE item_id = ?1 ORDER BY idx");

	if (!st)
		return;
	sqlite3_bind_int64(st, 1, it->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct spool_element *el;
		const char *state = (const char *)sqlite3_column_text(st, 6);
		char *sha = col_text(st, 5);

		it->els = xrealloc(it->els, (it->n_els + 1) * sizeof(*it->els));
		el = &it->els[it->n_els++];
		memset(el, 0, sizeof(*el));
		el->path = col_text(st, 0);
		el->filename = col_text(st, 1);
		el->content_type = col_text(st, 2);
		el->data_type = col_text(st, 3);
		el->size = (uint64_t)sqlite3_column_int64(st, 4);
		snprintf(el->sha256, sizeof(el->sha256), "%s", sha ? sha : "");
		free(sha);
		for (int k = 0; k < 3; k++)
			if (state && strcmp(state, el_state_names[k]) == 0)
				el->state = (enum spool_el_state)k;
		el->attempt_at = sqlite3_column_int64(st, 7);
		el->data_id = col_text(st, 8);
	}
	sqlite3_finalize(st);
}

int spool_load(struct spool *sp, void (*cb)(void *ctx, struct spool_item *it), void *ctx)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&sp->lock);
	st = prepare(sp, "SELECT id, org, app, rel, is_dir, state, received_at, next_at,"
			 " attempt_at, first_attempt_at, finished_at, attempts, instance_id, task,"
			 " last_error, outcome_name, outcome_doc FROM items"
			 " WHERE state NOT IN ('done','failed') ORDER BY id");
	if (!st) {
		pthread_mutex_unlock(&sp->lock);
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct spool_item *it = xcalloc(1, sizeof(*it));
		char *state = col_text(st, 5);

		it->id = sqlite3_column_int64(st, 0);
		it->org = col_text(st, 1);
		it->app = col_text(st, 2);
		it->rel = col_text(st, 3);
		it->is_dir = sqlite3_column_int(st, 4) != 0;
		if (!spool_state_parse(state, &it->state))
			it->state = SPOOL_HELD; /* a newer version's state: leave it be */
		free(state);
		it->received_at = sqlite3_column_int64(st, 6);
		it->next_at = sqlite3_column_int64(st, 7);
		it->attempt_at = sqlite3_column_int64(st, 8);
		it->first_attempt_at = sqlite3_column_int64(st, 9);
		it->finished_at = sqlite3_column_int64(st, 10);
		it->attempts = (unsigned)sqlite3_column_int(st, 11);
		it->instance_id = col_text(st, 12);
		it->task = col_text(st, 13);
		it->last_error = col_text(st, 14);
		it->outcome_name = col_text(st, 15);
		it->outcome_doc = col_text(st, 16);
		load_elements(sp, it);
		cb(ctx, it);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&sp->lock);
	return rc == SQLITE_DONE ? 0 : sql_errno(sp, rc, "load");
}

/* ---- saving */

static int write_element(struct spool *sp, const struct spool_item *it, size_t idx)
{
	const struct spool_element *el = &it->els[idx];
	sqlite3_stmt *st = prepare(sp, "INSERT OR REPLACE INTO elements (item_id, idx, path,"
				       " filename, content_type, data_type, size, sha256, state,"
				       " attempt_at, data_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, it->id);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	bind_text(st, 3, el->path ? el->path : "");
	bind_text(st, 4, el->filename ? el->filename : "");
	bind_text(st, 5, el->content_type ? el->content_type : "");
	bind_text(st, 6, el->data_type ? el->data_type : "");
	sqlite3_bind_int64(st, 7, (int64_t)el->size);
	bind_text(st, 8, el->sha256);
	bind_text(st, 9, el_state_names[el->state]);
	sqlite3_bind_int64(st, 10, el->attempt_at);
	bind_text(st, 11, el->data_id);
	return run(sp, st, "save element");
}

/* Runs sql, a statement about the rows of it's name (org, app, rel). */
static int delete_waiting(struct spool *sp, const struct spool_item *it, const char *sql,
			  const char *what)
{
	sqlite3_stmt *st = prepare(sp, sql);

	if (st) {
		bind_text(st, 1, it->org);
		bind_text(st, 2, it->app);
		bind_text(st, 3, it->rel);
	}
	return run(sp, st, what);
}

static int write_item(struct spool *sp, struct spool_item *it)
{
	sqlite3_stmt *st;
	int r;

	if (it->id == 0) {
		/* a new drop replaces one that was waiting under the same name */
		r = delete_waiting(sp, it, "DELETE FROM elements WHERE item_id IN (SELECT id FROM"
				   " items WHERE org=?1 AND app=?2 AND rel=?3 AND state IN"
				   " ('writing','held','received'))", "replace elements");
		if (r < 0)
			return r;
		r = delete_waiting(sp, it, "DELETE FROM items WHERE org=?1 AND app=?2 AND rel=?3"
				   " AND state IN ('writing','held','received')", "replace item");
		if (r < 0)
			return r;
		st = prepare(sp, "INSERT INTO items (org, app, rel, is_dir, state, received_at,"
				 " next_at, attempt_at, first_attempt_at, finished_at, attempts,"
				 " instance_id, task, last_error, outcome_name, outcome_doc)"
				 " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)");
	} else {
		st = prepare(sp, "UPDATE items SET org=?1, app=?2, rel=?3, is_dir=?4, state=?5,"
				 " received_at=?6, next_at=?7, attempt_at=?8, first_attempt_at=?9,"
				 " finished_at=?10, attempts=?11, instance_id=?12, task=?13,"
				 " last_error=?14, outcome_name=?15, outcome_doc=?16 WHERE id=?17");
	}
	if (!st)
		return -EIO;
	bind_text(st, 1, it->org);
	bind_text(st, 2, it->app);
	bind_text(st, 3, it->rel);
	sqlite3_bind_int(st, 4, it->is_dir);
	bind_text(st, 5, spool_state_name(it->state));
	sqlite3_bind_int64(st, 6, it->received_at);
	sqlite3_bind_int64(st, 7, it->next_at);
	sqlite3_bind_int64(st, 8, it->attempt_at);
	sqlite3_bind_int64(st, 9, it->first_attempt_at);
	sqlite3_bind_int64(st, 10, it->finished_at);
	sqlite3_bind_int(st, 11, (int)it->attempts);
	bind_text(st, 12, it->instance_id);
	bind_text(st, 13, it->task);
	bind_text(st, 14, it->last_error);
	bind_text(st, 15, it->outcome_name);
	bind_text(st, 16, it->outcome_doc);
	if (it->id)
		sqlite3_bind_int64(st, 17, it->id);
	r = run(sp, st, "save item");
	if (r == 0 && it->id == 0)
		it->id = sqlite3_last_insert_rowid(sp->db);
	return r;
}

int spool_save(struct spool *sp, struct spool_item *it, bool elements)
{
	int64_t old_id = it->id;
	int r;

	pthread_mutex_lock(&sp->lock);
	r = exec(sp, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	r = write_item(sp, it);
	if (r == 0 && elements) {
		sqlite3_stmt *st = prepare(sp, "DELETE FROM elements WHERE item_id = ?1");

		if (st)
			sqlite3_bind_int64(st, 1, it->id);
		r = run(sp, st, "clear elements");
		for (size_t i = 0; r == 0 && i < it->n_els; i++)
			r = write_element(sp, it, i);
	}
	if (r == 0)
		r = exec(sp, "COMMIT");
	if (r < 0) {
		exec(sp, "ROLLBACK");
		it->id = old_id;
	}
out:
	pthread_mutex_unlock(&sp->lock);
	return r;
}

int spool_save_element(struct spool *sp, const struct spool_item *it, size_t idx)
{
	int r;

	pthread_mutex_lock(&sp->lock);
	r = write_element(sp, it, idx);
	pthread_mutex_unlock(&sp->lock);
	return r;
}

int spool_delete(struct spool *sp, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&sp->lock);
	r = exec(sp, "BEGIN IMMEDIATE");
	if (r == 0) {
		st = prepare(sp, "DELETE FROM elements WHERE item_id = ?1");
		if (st)
			sqlite3_bind_int64(st, 1, id);
		r = run(sp, st, "delete elements");
	}
	if (r == 0) {
		st = prepare(sp, "DELETE FROM items WHERE id = ?1");
		if (st)
			sqlite3_bind_int64(st, 1, id);
		r = run(sp, st, "delete item");
	}
	if (r == 0)
		r = exec(sp, "COMMIT");
	else
		exec(sp, "ROLLBACK");
	pthread_mutex_unlock(&sp->lock);
	return r;
}

/* ---- questions */

static bool exists(struct spool *sp, const char *sql, const char *value, int64_t skip_id)
{
	sqlite3_stmt *st;
	bool found = false;

	pthread_mutex_lock(&sp->lock);
	st = prepare(sp, sql);
	if (st) {
		bind_text(st, 1, value);
		sqlite3_bind_int64(st, 2, skip_id);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&sp->lock);
	return found;
}

bool spool_instance_claimed(struct spool *sp, const char *instance_id, int64_t skip_id)
{
	return exists(sp, "SELECT 1 FROM items WHERE instance_id = ?1 AND id != ?2 LIMIT 1",
		      instance_id, skip_id);
}

bool spool_data_claimed(struct spool *sp, const char *data_id, int64_t skip_id)
{
	return exists(sp, "SELECT 1 FROM elements WHERE data_id = ?1 AND item_id != ?2 LIMIT 1",
		      data_id, skip_id);
}

uint64_t spool_count_failed(struct spool *sp)
{
	sqlite3_stmt *st;
	uint64_t n = 0;

	pthread_mutex_lock(&sp->lock);
	st = prepare(sp, "SELECT count(*) FROM items WHERE state = 'failed'");
	if (st && sqlite3_step(st) == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&sp->lock);
	return n;
}

int spool_fact_get(struct spool *sp, const char *key, char **ret)
{
	sqlite3_stmt *st;
	char *v = NULL;

	pthread_mutex_lock(&sp->lock);
	st = prepare(sp, "SELECT value FROM facts WHERE key = ?1");
	if (st) {
		bind_text(st, 1, key);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = col_text(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&sp->lock);
	*ret = v;
	return st ? 0 : -EIO;
}

int spool_fact_set(struct spool *sp, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&sp->lock);
	st = prepare(sp, "INSERT OR REPLACE INTO facts (key, value) VALUES (?1, ?2)");
	if (st) {
		bind_text(st, 1, key);
		bind_text(st, 2, value);
	}
	r = run(sp, st, "save fact");
	pthread_mutex_unlock(&sp->lock);
	return r;
}
