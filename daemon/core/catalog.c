/* catalog.c - a large grouped table in SQLite (see catalog.h).
 *
 * One table of rows (a rowid table: the documents are kilobytes, which a
 * WITHOUT ROWID table would copy into its b-tree's interior pages), an
 * index on (grp, changed) so a group's rows are read without a scan, a
 * table of the groups' facts kept by every commit (listing a million rows'
 * groups by GROUP BY took seconds after a restart, when the file is not
 * in memory; the group table is a third of the entries and needs no
 * aggregation), and a meta table of text pairs.
 * The row count is kept in memory and in the meta table (a count(*) of
 * millions of rows reads them all: seconds at a start); puts learn
 * whether they inserted by trying an UPDATE first.
 *
 * A pthread mutex makes each call one unit: SQLite's own mutex makes
 * single statements safe, not a BEGIN...COMMIT spanning several. */
#include "catalog.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_sql.h"
#include "log.h"
#include "xalloc.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS catalog_rows ("
	" id TEXT NOT NULL UNIQUE, grp TEXT NOT NULL, changed INTEGER NOT NULL,"
	" created INTEGER NOT NULL, flags INTEGER NOT NULL DEFAULT 0, doc BLOB);"
	"CREATE INDEX IF NOT EXISTS catalog_rows_grp ON catalog_rows (grp, changed, created);"
	"DROP INDEX IF EXISTS catalog_rows_changed;" /* an early file's: nothing reads it */
	"CREATE TABLE IF NOT EXISTS catalog_meta ("
	" key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS catalog_groups (grp TEXT PRIMARY KEY, n INTEGER NOT NULL,"
	" max_changed INTEGER NOT NULL, min_created INTEGER NOT NULL) WITHOUT ROWID;"
	/* the listing order of catalog_groups_page: an existing file gets it
	 * at its first open (a second for a million groups, once) */
	"CREATE INDEX IF NOT EXISTS catalog_groups_order ON catalog_groups (length(grp), grp);";

/* set once catalog_groups is kept by the commits: a file made before it
 * had the table gets it filled once, at open */
#define GROUPS_KEY "catalog.groups"
static const char fill_groups[] =
	"BEGIN IMMEDIATE; DELETE FROM catalog_groups;"
	"INSERT INTO catalog_groups SELECT grp, count(*), max(changed), min(created)"
	" FROM catalog_rows GROUP BY grp;"
	"INSERT OR REPLACE INTO catalog_meta VALUES ('" GROUPS_KEY "', '1'); COMMIT";

/* the row count, kept in the meta table by each commit */
#define ROWS_KEY "catalog.rows"

/* the statements of a commit, prepared once at open */
enum { ST_INS, ST_UPD, ST_DEL, ST_META, ST_UNMETA, ST_GRP_OF, ST_GADD, ST_GSET, ST_GDROP, ST_N };

static const char *const stmt_sql[ST_N] = {
	/* a walk's rows are new: the insert is tried first, the update
	 * only when the id is held */
	[ST_INS] = "INSERT OR IGNORE INTO catalog_rows (id, grp, changed, created, flags, doc)"
		   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_UPD] = "UPDATE catalog_rows SET grp = ?2, changed = ?3, created = ?4, flags = ?5,"
		   " doc = ?6 WHERE id = ?1",
	[ST_DEL] = "DELETE FROM catalog_rows WHERE id = ?1",
	[ST_META] = "INSERT OR REPLACE INTO catalog_meta (key, value) VALUES (?1, ?2)",
	[ST_UNMETA] = "DELETE FROM catalog_meta WHERE key = ?1",
	[ST_GRP_OF] = "SELECT grp FROM catalog_rows WHERE id = ?1",
	/* a new row: its group's facts grow by it */
	[ST_GADD] = "INSERT INTO catalog_groups (grp, n, max_changed, min_created)"
		    " VALUES (?1, 1, ?2, ?3) ON CONFLICT (grp) DO UPDATE SET n = n + 1,"
		    " max_changed = max(max_changed, excluded.max_changed),"
		    " min_created = min(min_created, excluded.min_created)",
	/* a row changed or gone: its group's facts counted again (a few rows) */
	[ST_GSET] = "INSERT OR REPLACE INTO catalog_groups SELECT grp, count(*), max(changed),"
		    " min(created) FROM catalog_rows WHERE grp = ?1 GROUP BY grp",
	[ST_GDROP] = "DELETE FROM catalog_groups WHERE grp = ?1"
		     " AND NOT EXISTS (SELECT 1 FROM catalog_rows WHERE grp = ?1)",
};

struct catalog {
	sqlite3 *db;
	char *who;
	pthread_mutex_t lock;
	uint64_t n_rows;
	sqlite3_stmt *st[ST_N];
};

/* -EBADMSG for a file SQLite finds corrupt, else journal.c's naming. */
static int cat_errno(struct catalog *c, int rc, const char *what)
{
	int code = (rc ? rc : sqlite3_errcode(c->db)) & 0xff;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		return log_errno(-EBADMSG, "%s: %s: %s", c->who, what, sqlite3_errmsg(c->db));
	return journal_errno(c->db, rc, c->who, what);
}

static int prepare(struct catalog *c, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(c->db, sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : cat_errno(c, rc, "prepare");
}

static int exec(struct catalog *c, const char *sql, const char *what)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : cat_errno(c, rc, what);
}

/* A single integer answer of sql (0 when none). */
static int scalar(struct catalog *c, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st;
	int rc, r = prepare(c, sql, &st);

	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*ret = 0;
	else
		r = cat_errno(c, rc, sql);
	sqlite3_finalize(st);
	return r;
}

static bool has_meta(struct catalog *c, const char *key)
{
	sqlite3_stmt *st;
	bool yes;

	if (prepare(c, "SELECT 1 FROM catalog_meta WHERE key = ?1", &st) < 0)
		return false;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static int check(struct catalog *c)
{
	sqlite3_stmt *st;
	int rc, r = prepare(c, "PRAGMA quick_check", &st);
	const unsigned char *txt;

	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	txt = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	if (rc != SQLITE_ROW)
		r = cat_errno(c, rc, "quick_check");
	else if (!txt || strcmp((const char *)txt, "ok") != 0)
		r = log_errno(-EBADMSG, "%s: the file is damaged: %s", c->who,
			      txt ? (const char *)txt : "?");
	sqlite3_finalize(st);
	return r;
}

int catalog_open(const char *who, const char *path, struct catalog **ret)
{
	struct catalog *c = xcalloc(1, sizeof(*c));
	int64_t n = 0;
	int r;

	c->who = xstrdup(who);
	pthread_mutex_init(&c->lock, NULL);
	r = journal_open(who, path, NULL, &c->db);
	if (r < 0) {
		/* a file that is not a database fails the open's pragmas */
		r = r == -EIO ? -EBADMSG : r;
		goto fail;
	}
	r = exec(c, "PRAGMA synchronous=NORMAL", "synchronous");
	if (r == 0)
		r = exec(c, schema, "schema");
	if (r == 0 && scalar(c, "SELECT CAST(value AS INTEGER) FROM catalog_meta"
			       " WHERE key = '" ROWS_KEY "'", &n) == 0 && n > 0)
		; /* kept by every commit: a count(*) of millions reads them all */
	else if (r == 0)
		r = scalar(c, "SELECT count(*) FROM catalog_rows", &n);
	for (int i = 0; r == 0 && i < ST_N; i++)
		r = prepare(c, stmt_sql[i], &c->st[i]);
	if (r == 0 && !has_meta(c, GROUPS_KEY)) {
		r = exec(c, fill_groups, "groups");
		if (r < 0)
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (r < 0)
		goto fail;
	c->n_rows = (uint64_t)n;
	*ret = c;
	return 0;
fail:
	catalog_close(c);
	return r;
}

int catalog_verify(const char *who, const char *path)
{
	struct catalog c = { .who = (char *)who };
	int rc = sqlite3_open_v2(path, &c.db, SQLITE_OPEN_READONLY, NULL), r;

	if (rc != SQLITE_OK) {
		r = cat_errno(&c, rc, "open");
		sqlite3_close(c.db);
		return r;
	}
	sqlite3_busy_timeout(c.db, 10000);
	r = check(&c);
	sqlite3_close(c.db);
	return r;
}

void catalog_close(struct catalog *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(c->st[i]);
	journal_close(c->db);
	pthread_mutex_destroy(&c->lock);
	free(c->who);
	free(c);
}

int catalog_remove(const char *path)
{
	static const char *const tails[] = { "", "-wal", "-shm", "-journal" };
	int r = 0;

	for (size_t i = 0; i < sizeof(tails) / sizeof(*tails); i++) {
		char *p = xasprintf("%s%s", path, tails[i]);

		if (unlink(p) < 0 && errno != ENOENT)
			r = log_errno(-errno, "cannot remove %s", p);
		free(p);
	}
	return r;
}

static void bind_row(sqlite3_stmt *st, const struct catalog_row *row)
{
	sqlite3_bind_text(st, 1, row->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->grp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, row->changed);
	sqlite3_bind_int64(st, 4, row->created);
	sqlite3_bind_int64(st, 5, row->flags);
	sqlite3_bind_blob(st, 6, row->doc ? row->doc : "", (int)row->doc_len, SQLITE_STATIC);
}

/* Steps a prepared statement once and leaves it reset. */
static int step(struct catalog *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : cat_errno(c, rc, what);
}

/* The group of the row id (caller frees), or NULL when there is none. */
static int group_of(struct catalog *c, const char *id, char **ret)
{
	sqlite3_stmt *st = c->st[ST_GRP_OF];
	int rc;

	*ret = NULL;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cat_errno(c, rc, "group of");
}

/* A group's facts counted again from its rows (dropped when it has none). */
static int group_recount(struct catalog *c, const char *grp)
{
	int r;

	sqlite3_bind_text(c->st[ST_GSET], 1, grp, -1, SQLITE_STATIC);
	r = step(c, c->st[ST_GSET], "group");
	if (r == 0) {
		sqlite3_bind_text(c->st[ST_GDROP], 1, grp, -1, SQLITE_STATIC);
		r = step(c, c->st[ST_GDROP], "group");
	}
	return r;
}

static int put_one(struct catalog *c, const struct catalog_row *row, uint64_t *n_rows)
{
	char *old = NULL;
	int r;

	bind_row(c->st[ST_INS], row);
	r = step(c, c->st[ST_INS], "insert");
	if (r < 0)
		return r;
	if (sqlite3_changes(c->db) > 0) {
		(*n_rows)++;
		sqlite3_bind_text(c->st[ST_GADD], 1, row->grp, -1, SQLITE_STATIC);
		sqlite3_bind_int64(c->st[ST_GADD], 2, row->changed);
		sqlite3_bind_int64(c->st[ST_GADD], 3, row->created);
		return step(c, c->st[ST_GADD], "group");
	}
	r = group_of(c, row->id, &old);
	if (r == 0) {
		bind_row(c->st[ST_UPD], row);
		r = step(c, c->st[ST_UPD], "update");
	}
	if (r == 0)
		r = group_recount(c, row->grp);
	if (r == 0 && old && strcmp(old, row->grp) != 0)
		r = group_recount(c, old);
	free(old);
	return r;
}

static int del_one(struct catalog *c, const char *id, uint64_t *n_rows)
{
	char *grp = NULL;
	int r = group_of(c, id, &grp);

	if (r < 0 || !grp)
		return r; /* not held: nothing to do */
	sqlite3_bind_text(c->st[ST_DEL], 1, id, -1, SQLITE_STATIC);
	r = step(c, c->st[ST_DEL], "delete");
	if (r == 0 && sqlite3_changes(c->db) > 0)
		(*n_rows)--;
	if (r == 0)
		r = group_recount(c, grp);
	free(grp);
	return r;
}

static int apply_locked(struct catalog *c, const struct catalog_change *ch, uint64_t *n_rows)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < ch->n_put; i++)
		r = put_one(c, &ch->put[i], n_rows);
	for (size_t i = 0; r == 0 && i < ch->n_del; i++)
		r = del_one(c, ch->del[i], n_rows);
	for (size_t i = 0; r == 0 && i < ch->n_meta; i++) {
		sqlite3_stmt *st = c->st[ch->vals[i] ? ST_META : ST_UNMETA];

		sqlite3_bind_text(st, 1, ch->keys[i], -1, SQLITE_STATIC);
		if (ch->vals[i])
			sqlite3_bind_text(st, 2, ch->vals[i], -1, SQLITE_STATIC);
		r = step(c, st, "meta");
	}
	return r;
}

int catalog_apply(struct catalog *c, const struct catalog_change *ch)
{
	uint64_t before;
	int r;

	pthread_mutex_lock(&c->lock);
	before = c->n_rows;
	r = exec(c, "BEGIN IMMEDIATE", "begin");
	if (r == 0) {
		uint64_t n = c->n_rows;

		r = apply_locked(c, ch, &n);
		c->n_rows = n;
		if (r == 0) {
			char sql[96];

			snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO catalog_meta VALUES"
				 " ('" ROWS_KEY "', '%llu')", (unsigned long long)n);
			r = exec(c, sql, "row count");
		}
		if (r == 0)
			r = exec(c, "COMMIT", "commit");
		if (r < 0) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			c->n_rows = before;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int catalog_clear(struct catalog *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = exec(c, "BEGIN IMMEDIATE; DELETE FROM catalog_rows; DELETE FROM catalog_groups;"
		 " DELETE FROM catalog_meta;"
		 " INSERT INTO catalog_meta VALUES ('" GROUPS_KEY "', '1'); COMMIT", "clear");
	if (r < 0)
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	else
		c->n_rows = 0;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void read_row(sqlite3_stmt *st, struct catalog_row *row)
{
	const void *doc = sqlite3_column_blob(st, 5);
	size_t len = (size_t)sqlite3_column_bytes(st, 5);

	row->id = xstrdup((const char *)sqlite3_column_text(st, 0));
	row->grp = xstrdup((const char *)sqlite3_column_text(st, 1));
	row->changed = sqlite3_column_int64(st, 2);
	row->created = sqlite3_column_int64(st, 3);
	row->flags = (uint32_t)sqlite3_column_int64(st, 4);
	row->doc = xmalloc(len + 1);
	if (len)
		memcpy(row->doc, doc, len);
	row->doc[len] = '\0';
	row->doc_len = len;
}

#define ROW_COLS "id, grp, changed, created, flags, doc"

int catalog_get(struct catalog *c, const char *id, struct catalog_row *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT " ROW_COLS " FROM catalog_rows WHERE id = ?1", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			read_row(st, ret);
		else
			r = rc == SQLITE_DONE ? -ENOENT : cat_errno(c, rc, "get");
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void catalog_row_clear(struct catalog_row *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->grp);
	free(r->doc);
	memset(r, 0, sizeof(*r));
}

void catalog_rows_free(struct catalog_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		catalog_row_clear(&rows[i]);
	free(rows);
}

static void read_group(sqlite3_stmt *st, struct catalog_group *g)
{
	g->grp = xstrdup((const char *)sqlite3_column_text(st, 0));
	g->n = (uint64_t)sqlite3_column_int64(st, 1);
	g->max_changed = sqlite3_column_int64(st, 2);
	g->min_created = sqlite3_column_int64(st, 3);
}

/* The end of a read of groups under c->lock: out handed over, or freed
 * on an error. */
static int groups_done(struct catalog *c, int r, sqlite3_stmt *st, struct catalog_group *out,
		       size_t n, struct catalog_group **ret, size_t *ret_n)
{
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	if (r < 0) {
		catalog_groups_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

int catalog_groups(struct catalog *c, struct catalog_group **ret, size_t *ret_n)
{
	struct catalog_group *out = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int r, rc = SQLITE_DONE;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT grp, n, max_changed, min_created FROM catalog_groups", &st);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			out = xrealloc(out, cap * sizeof(*out));
		}
		read_group(st, &out[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = cat_errno(c, rc, "groups");
	return groups_done(c, r, st, out, n, ret, ret_n);
}

/* Steps st (bound) into out, appending up to max - *n groups. */
static int step_groups(struct catalog *c, sqlite3_stmt *st, struct catalog_group *out,
		       size_t max, size_t *n)
{
	int rc = SQLITE_DONE;

	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		read_group(st, &out[(*n)++]);
	if (*n < max && rc != SQLITE_DONE)
		return cat_errno(c, rc, "groups");
	return 0;
}

#define GROUP_COLS "SELECT grp, n, max_changed, min_created FROM catalog_groups"

int catalog_groups_page(struct catalog *c, const char *after, uint64_t skip, size_t max,
			struct catalog_group **ret, size_t *ret_n)
{
	struct catalog_group *out = xcalloc(max ? max : 1, sizeof(*out));
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&c->lock);
	if (after) {
		/* two searches of the order index: the rest of after's length,
		 * then the longer names */
		r = prepare(c, GROUP_COLS " WHERE length(grp) = length(?1) AND grp > ?1"
			       " ORDER BY grp LIMIT ?2", &st);
		if (r == 0) {
			sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
			r = step_groups(c, st, out, max, &n);
			sqlite3_finalize(st);
		}
		if (r == 0 && n < max)
			r = prepare(c, GROUP_COLS " WHERE length(grp) > length(?1)"
				       " ORDER BY length(grp), grp LIMIT ?2", &st);
		else
			st = NULL;
		if (r == 0 && st) {
			sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)(max - n));
		}
	} else {
		r = prepare(c, GROUP_COLS " ORDER BY length(grp), grp LIMIT ?2 OFFSET ?1", &st);
		if (r == 0) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)skip);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
		}
	}
	if (r == 0 && st)
		r = step_groups(c, st, out, max, &n);
	return groups_done(c, r, st, out, n, ret, ret_n);
}

int catalog_group(struct catalog *c, const char *grp, struct catalog_group *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT grp, n, max_changed, min_created FROM catalog_groups"
		       " WHERE grp = ?1", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, grp, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			read_group(st, ret);
		else
			r = rc == SQLITE_DONE ? -ENOENT : cat_errno(c, rc, "group");
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void catalog_groups_free(struct catalog_group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].grp);
	free(g);
}

int catalog_group_rows(struct catalog *c, const char *grp, size_t max, struct catalog_row **ret,
		       size_t *ret_n)
{
	struct catalog_row *out = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int r, rc = SQLITE_DONE;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT " ROW_COLS " FROM catalog_rows WHERE grp = ?1", &st);
	if (r == 0)
		sqlite3_bind_text(st, 1, grp, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == max) {
			r = -EFBIG;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			out = xrealloc(out, cap * sizeof(*out));
		}
		read_row(st, &out[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = cat_errno(c, rc, "group rows");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	if (r < 0) {
		catalog_rows_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

uint64_t catalog_count(struct catalog *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n_rows;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int catalog_meta(struct catalog *c, const char *key, char **ret)
{
	sqlite3_stmt *st;
	int r, rc;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT value FROM catalog_meta WHERE key = ?1", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*ret = xstrdup((const char *)sqlite3_column_text(st, 0));
		else
			r = rc == SQLITE_DONE ? -ENOENT : cat_errno(c, rc, "meta");
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}
