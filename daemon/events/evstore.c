/* evstore.c - the events module's memory, in SQLite (see evstore.h).
 *
 * Durability: the database runs in WAL mode with synchronous=NORMAL, so
 * a crash of the daemon loses no commit, and a power loss may lose only
 * the newest ones. That is safe because the store is an index of the
 * event files, which are fsynced before they are recorded: at start the
 * events module reads back every file newer than the highest sequence
 * number recorded here (the file name carries the number, the contents
 * the id). The one fact no file can restore is an acknowledgement (the
 * user removed the file), so evstore_ack commits with a full sync.
 *
 * One connection, used under one lock that is held only while SQLite
 * works: the hooks that run on FUSE threads call in here, so nothing may
 * hold this lock while it writes through the mount. */
#include "evstore.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

enum stmt {
	ST_GET_CURSOR,
	ST_PUT_CURSOR,
	ST_SET_AFTER,
	ST_KNOWN,
	ST_ADD,
	ST_MAX_SEQ,
	ST_ACK,
	ST_LOOKUP,
	ST_TRIM_CUT,
	ST_TRIM_TIME,
	ST_TRIM_DELETE,
	ST_RAISE_WATERMARK,
	ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_GET_CURSOR] = "SELECT after, from_time, watermark FROM cursors WHERE app = ?1",
	[ST_PUT_CURSOR] = "INSERT INTO cursors (app, after, from_time, watermark) VALUES (?1, ?2, ?3, ?4) "
			  "ON CONFLICT (app) DO UPDATE SET after = ?2, from_time = ?3, watermark = ?4",
	[ST_SET_AFTER] = "UPDATE cursors SET after = ?2, from_time = NULL WHERE app = ?1",
	[ST_KNOWN] = "SELECT 1 FROM seen WHERE app = ?1 AND id = ?2",
	[ST_ADD] = "INSERT OR IGNORE INTO seen (app, id, seq, name, type, time) "
		   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_MAX_SEQ] = "SELECT max(seq) FROM seen WHERE app = ?1",
	[ST_ACK] = "UPDATE seen SET acked = 1 WHERE app = ?1 AND seq = ?2",
	[ST_LOOKUP] = "SELECT id, type FROM seen WHERE app = ?1 AND seq = ?2 AND name = ?3",
	[ST_TRIM_CUT] = "SELECT seq FROM seen WHERE app = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2",
	[ST_TRIM_TIME] = "SELECT max(time) FROM seen WHERE app = ?1 AND seq <= ?2",
	[ST_TRIM_DELETE] = "DELETE FROM seen WHERE app = ?1 AND seq <= ?2",
	[ST_RAISE_WATERMARK] = "UPDATE cursors SET watermark = max(watermark, ?2) WHERE app = ?1",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS cursors ("
	" app TEXT PRIMARY KEY,"
	" after TEXT,"
	" from_time TEXT,"
	" watermark INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS seen ("
	" app TEXT NOT NULL,"
	" id TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" type TEXT,"
	" time INTEGER NOT NULL,"
	" acked INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (app, id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS seen_by_seq ON seen (app, seq);";

struct evstore {
	pthread_mutex_t lock;
	sqlite3 *db;                  /* protected by lock */
	sqlite3_stmt *stmts[ST_COUNT]; /* protected by lock */
};

static int db_error(struct evstore *s, const char *what)
{
	log_error("events database: %s: %s", what, sqlite3_errmsg(s->db));
	return -EIO;
}

static int exec(struct evstore *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("events database: \"%.60s\": %s", sql, msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int evstore_open(const char *path, struct evstore **ret)
{
	struct evstore *s = xcalloc(1, sizeof(*s));
	int r;

	pthread_mutex_init(&s->lock, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_error("cannot open \"%s\": %s", path, s->db ? sqlite3_errmsg(s->db) : "no memory");
		evstore_close(s);
		return -EIO;
	}
	sqlite3_busy_timeout(s->db, 10000);
	r = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
	if (r == 0)
		r = exec(s, schema);
	for (int i = 0; r == 0 && i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &s->stmts[i], NULL) != SQLITE_OK)
			r = db_error(s, "prepare");
	if (r < 0) {
		evstore_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void evstore_close(struct evstore *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The statement, reset and with its first parameter bound to app. */
static sqlite3_stmt *stmt(struct evstore *s, enum stmt which, const char *app)
{
	sqlite3_stmt *st = s->stmts[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
	return st;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static char *column_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? xstrdup((const char *)v) : NULL;
}

/* Runs a statement that returns no row. */
static int run(struct evstore *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(s, what);
}

int evstore_get_cursor(struct evstore *s, const char *app, struct evstore_cursor *ret)
{
	sqlite3_stmt *st;
	int rc, r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, ST_GET_CURSOR, app);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->after = column_dup(st, 0);
		ret->from = column_dup(st, 1);
		ret->watermark_us = sqlite3_column_int64(st, 2);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = db_error(s, "read cursor");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int evstore_put_cursor(struct evstore *s, const char *app, const struct evstore_cursor *c)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, ST_PUT_CURSOR, app);
	bind_text_or_null(st, 2, c->after);
	bind_text_or_null(st, 3, c->after ? NULL : c->from);
	sqlite3_bind_int64(st, 4, c->watermark_us);
	r = run(s, st, "write cursor");
	pthread_mutex_unlock(&s->lock);
	return r;
}

void evstore_cursor_clear(struct evstore_cursor *c)
{
	free(c->after);
	free(c->from);
	memset(c, 0, sizeof(*c));
}

int evstore_known(struct evstore *s, const char *app, const char *id, bool *ret)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, ST_KNOWN, app);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*ret = rc == SQLITE_ROW;
	else
		r = db_error(s, "look up event");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int record_one(struct evstore *s, const char *app, const struct evstore_event *e)
{
	sqlite3_stmt *st = stmt(s, ST_ADD, app);

	sqlite3_bind_text(st, 2, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->seq);
	sqlite3_bind_text(st, 4, e->name, -1, SQLITE_STATIC);
	bind_text_or_null(st, 5, e->type);
	sqlite3_bind_int64(st, 6, e->time_us);
	return run(s, st, "record event");
}

int evstore_record(struct evstore *s, const char *app, const struct evstore_event *evs, size_t n,
		   const char *after)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; r == 0 && i < n; i++)
		r = record_one(s, app, &evs[i]);
	if (r == 0 && after) {
		st = stmt(s, ST_SET_AFTER, app);
		sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
		r = run(s, st, "move cursor");
	}
	if (r == 0)
		r = exec(s, "COMMIT");
	else
		exec(s, "ROLLBACK");
	pthread_mutex_unlock(&s->lock);
	return r;
}

int evstore_max_seq(struct evstore *s, const char *app, uint64_t *ret)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, ST_MAX_SEQ, app);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = (uint64_t)sqlite3_column_int64(st, 0); /* NULL reads as 0 */
	else
		r = db_error(s, "read sequence");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int evstore_ack(struct evstore *s, const char *app, uint64_t seq)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec(s, "PRAGMA synchronous = FULL");
	if (r == 0) {
		st = stmt(s, ST_ACK, app);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
		r = run(s, st, "record acknowledgement");
		exec(s, "PRAGMA synchronous = NORMAL");
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int evstore_lookup(struct evstore *s, const char *app, uint64_t seq, const char *name,
		   char **ret_id, char **ret_type)
{
	sqlite3_stmt *st;
	int rc, r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, ST_LOOKUP, app);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_id = column_dup(st, 0);
		*ret_type = column_dup(st, 1);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = db_error(s, "look up event file");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The newest sequence number to drop, and the newest time it drops;
 * *ret_cut 0 when nothing is beyond keep. Under the lock. */
static int trim_plan(struct evstore *s, const char *app, uint64_t keep, int64_t *ret_cut,
		     int64_t *ret_time)
{
	sqlite3_stmt *st = stmt(s, ST_TRIM_CUT, app);
	int rc;

	sqlite3_bind_int64(st, 2, (sqlite3_int64)keep);
	rc = sqlite3_step(st);
	*ret_cut = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s, "plan trim");
	if (*ret_cut == 0)
		return 0;
	st = stmt(s, ST_TRIM_TIME, app);
	sqlite3_bind_int64(st, 2, *ret_cut);
	rc = sqlite3_step(st);
	*ret_time = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_error(s, "plan trim");
}

int evstore_trim(struct evstore *s, const char *app, uint64_t keep, int64_t *ret_watermark_us)
{
	struct evstore_cursor c = { 0 };
	int64_t cut = 0, newest = 0;
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	r = trim_plan(s, app, keep, &cut, &newest);
	if (r == 0 && cut > 0) {
		r = exec(s, "BEGIN IMMEDIATE");
		if (r == 0) {
			st = stmt(s, ST_TRIM_DELETE, app);
			sqlite3_bind_int64(st, 2, cut);
			r = run(s, st, "trim");
		}
		if (r == 0) {
			st = stmt(s, ST_RAISE_WATERMARK, app);
			sqlite3_bind_int64(st, 2, newest + 1);
			r = run(s, st, "raise watermark");
		}
		if (r == 0)
			r = exec(s, "COMMIT");
		else
			exec(s, "ROLLBACK");
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		r = evstore_get_cursor(s, app, &c);
	if (r == 0)
		*ret_watermark_us = c.watermark_us;
	evstore_cursor_clear(&c);
	return r;
}
