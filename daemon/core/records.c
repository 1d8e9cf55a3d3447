/* records.c - the keyed record store, in the journal's records table
 * (see records.h).
 *
 * One table holds every store of a journal, told apart by name, with the
 * primary key (store, group, key) and an index on (store, group, ord) for
 * the ordered calls. A family's fields are one JSON object made and read
 * by SQLite's JSON functions; the SQL is built once, at open, from the
 * def's field names (the family's constants). */
#include "records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "journal_sql.h"
#include "xalloc.h"

struct records {
	struct journal *j;
	const struct records_def *def;
	char *select;  /* "SELECT grp, key, ord, at, <fields> FROM records WHERE store = ?1" */
	char *payload; /* json_object(...) of the fields, from ?10 on */
};

int records_open(struct journal *j, const struct records_def *def, struct records **ret)
{
	struct records *rs = xcalloc(1, sizeof(*rs));
	char *s, *p;

	if (def->n_fields > RECORD_MAX_FIELDS)
		abort(); /* a family's constant: a bug */
	rs->j = j;
	rs->def = def;
	rs->select = xstrdup("SELECT grp, key, ord, at");
	rs->payload = xstrdup("json_object(");
	for (int i = 0; i < def->n_fields; i++) {
		s = xasprintf("%s, json_extract(payload, '$.\"%s\"')", rs->select, def->fields[i]);
		p = xasprintf("%s%s'%s', ?%d", rs->payload, i ? ", " : "", def->fields[i], 10 + i);
		free(rs->select);
		free(rs->payload);
		rs->select = s;
		rs->payload = p;
	}
	s = xasprintf("%s FROM records WHERE store = ?1", rs->select);
	p = xasprintf("%s)", rs->payload);
	free(rs->select);
	free(rs->payload);
	rs->select = s;
	rs->payload = p;
	*ret = rs;
	return 0;
}

void records_close(struct records *rs)
{
	if (!rs)
		return;
	free(rs->select);
	free(rs->payload);
	free(rs);
}

void record_clear(struct record *rec)
{
	if (!rec)
		return;
	free(rec->group);
	free(rec->key);
	for (int i = 0; i < RECORD_MAX_FIELDS; i++)
		free(rec->f[i]);
	memset(rec, 0, sizeof(*rec));
}

static void read_record(struct records *rs, sqlite3_stmt *st, struct record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->group = jr_col_text(st, 0);
	rec->key = jr_col_text(st, 1);
	rec->ord = sqlite3_column_int64(st, 2);
	rec->at = sqlite3_column_int64(st, 3);
	for (int i = 0; i < rs->def->n_fields; i++)
		rec->f[i] = jr_col_text(st, 4 + i);
}

static int write(struct records *rs, const struct record *rec, const char *verb, bool *ret_added)
{
	char *sql = xasprintf("%s INTO records (store, grp, key, ord, at, payload)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, %s)", verb, rs->payload);
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&rs->j->lock);
	st = jr_prepare(rs->j, sql);
	if (st) {
		jr_bind_text(st, 1, rs->def->name);
		jr_bind_text(st, 2, rec->group ? rec->group : "");
		jr_bind_text(st, 3, rec->key ? rec->key : "");
		sqlite3_bind_int64(st, 4, rec->ord);
		sqlite3_bind_int64(st, 5, rec->at);
		for (int i = 0; i < rs->def->n_fields; i++)
			jr_bind_text(st, 10 + i, rec->f[i]);
	}
	r = jr_run(rs->j, st, "write a record");
	if (r == 0 && ret_added)
		*ret_added = sqlite3_changes(rs->j->db) > 0;
	pthread_mutex_unlock(&rs->j->lock);
	free(sql);
	return r;
}

int records_put(struct records *rs, const struct record *rec)
{
	return write(rs, rec, "INSERT OR REPLACE", NULL);
}

int records_add(struct records *rs, const struct record *rec, bool *ret_added)
{
	bool added = false;
	int r = write(rs, rec, "INSERT OR IGNORE", &added);

	if (r == 0 && ret_added)
		*ret_added = added;
	return r;
}

/* Runs "<select> AND <cond>" with ?2 the group and ?3 an integer or text,
 * and hands each row to cb. */
struct one {
	struct record *ret;
	bool found;
};

static int take_one(void *ctx, struct record *rec)
{
	struct one *o = ctx;

	*o->ret = *rec;
	memset(rec, 0, sizeof(*rec));
	o->found = true;
	return 1;
}

static int query(struct records *rs, const char *cond, const char *group, const char *text,
		 int64_t num, int (*cb)(void *ctx, struct record *rec), void *ctx)
{
	char *sql = xasprintf("%s%s", rs->select, cond);
	struct record rec;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = 0;

	pthread_mutex_lock(&rs->j->lock);
	st = jr_prepare(rs->j, sql);
	if (!st) {
		r = -EIO;
	} else {
		jr_bind_text(st, 1, rs->def->name);
		jr_bind_text(st, 2, group ? group : "");
		if (text)
			jr_bind_text(st, 3, text);
		else
			sqlite3_bind_int64(st, 3, num);
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int stop;

		read_record(rs, st, &rec);
		stop = cb(ctx, &rec);
		record_clear(&rec);
		if (stop) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = jr_errno(rs->j, rc, "read records");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&rs->j->lock);
	free(sql);
	return r;
}

int records_get(struct records *rs, const char *group, const char *key, struct record *ret)
{
	struct record rec;
	struct one o = { &rec, false };
	int r = query(rs, " AND grp = ?2 AND key = ?3", group, key ? key : "", 0, take_one, &o);

	if (r == 0 && !o.found)
		r = -ENOENT;
	if (r == 0)
		*ret = rec;
	return r;
}

int records_at_ord(struct records *rs, const char *group, int64_t ord, struct record *ret)
{
	struct record rec;
	struct one o = { &rec, false };
	int r = query(rs, " AND grp = ?2 AND ord = ?3 ORDER BY key", group, NULL, ord, take_one,
		      &o);

	if (r == 0 && !o.found)
		r = -ENOENT;
	if (r == 0)
		*ret = rec;
	return r;
}

int records_list(struct records *rs, const char *group,
		 int (*cb)(void *ctx, struct record *rec), void *ctx)
{
	return query(rs, " AND grp = ?2 AND ?3 = 0 ORDER BY ord, key", group, NULL, 0, cb, ctx);
}

int records_delete(struct records *rs, const char *group, const char *key)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&rs->j->lock);
	st = jr_prepare(rs->j, key ? "DELETE FROM records WHERE store = ?1 AND grp = ?2 AND key = ?3"
				   : "DELETE FROM records WHERE store = ?1 AND grp = ?2");
	if (st) {
		jr_bind_text(st, 1, rs->def->name);
		jr_bind_text(st, 2, group ? group : "");
		if (key)
			jr_bind_text(st, 3, key);
	}
	r = jr_run(rs->j, st, "delete records");
	pthread_mutex_unlock(&rs->j->lock);
	return r;
}

/* One integer from sql (?1 the store, ?2 group, ?3 num); 0 for NULL. */
static int scalar(struct records *rs, const char *sql, const char *group, int64_t num,
		  int64_t *ret)
{
	sqlite3_stmt *st;
	int rc, r = -EIO;

	pthread_mutex_lock(&rs->j->lock);
	st = jr_prepare(rs->j, sql);
	if (st) {
		jr_bind_text(st, 1, rs->def->name);
		jr_bind_text(st, 2, group ? group : "");
		sqlite3_bind_int64(st, 3, num);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
			*ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
			r = 0;
		} else {
			r = jr_errno(rs->j, rc, "read records");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&rs->j->lock);
	return r;
}

int records_max_ord(struct records *rs, const char *group, int64_t *ret)
{
	return scalar(rs, "SELECT max(ord) FROM records WHERE store = ?1 AND grp = ?2 AND ?3 = 0",
		      group, 0, ret);
}

int records_trim(struct records *rs, const char *group, uint64_t keep, int64_t *ret_newest_at)
{
	int64_t cut = 0, newest = 0;
	sqlite3_stmt *st;
	int r;

	*ret_newest_at = 0;
	r = scalar(rs, "SELECT ord FROM records WHERE store = ?1 AND grp = ?2"
		       " ORDER BY ord DESC LIMIT 1 OFFSET ?3", group, (int64_t)keep, &cut);
	if (r < 0 || cut == 0)
		return r;
	r = journal_begin(rs->j, false);
	if (r < 0)
		return r;
	r = scalar(rs, "SELECT max(at) FROM records WHERE store = ?1 AND grp = ?2 AND ord <= ?3",
		   group, cut, &newest);
	if (r == 0) {
		st = jr_prepare(rs->j, "DELETE FROM records WHERE store = ?1 AND grp = ?2"
				       " AND ord <= ?3");
		if (st) {
			jr_bind_text(st, 1, rs->def->name);
			jr_bind_text(st, 2, group ? group : "");
			sqlite3_bind_int64(st, 3, cut);
		}
		r = jr_run(rs->j, st, "trim records");
	}
	r = journal_end(rs->j, r);
	if (r == 0)
		*ret_newest_at = newest;
	return r;
}

int records_used(struct records *rs, int field, const char *value, const char *skip_group,
		 bool *ret)
{
	char *sql;
	sqlite3_stmt *st;
	int rc, r = -EIO;

	if (field < 0 || field >= rs->def->n_fields)
		return -EINVAL;
	sql = xasprintf("SELECT 1 FROM records WHERE store = ?1 AND grp != ?2 AND"
			" json_extract(payload, '$.\"%s\"') = ?3 LIMIT 1", rs->def->fields[field]);
	pthread_mutex_lock(&rs->j->lock);
	st = jr_prepare(rs->j, sql);
	if (st) {
		jr_bind_text(st, 1, rs->def->name);
		/* a group that cannot be: skips none */
		jr_bind_text(st, 2, skip_group ? skip_group : "\x01");
		jr_bind_text(st, 3, value);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
			*ret = rc == SQLITE_ROW;
			r = 0;
		} else {
			r = jr_errno(rs->j, rc, "look up records");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&rs->j->lock);
	free(sql);
	return r;
}
