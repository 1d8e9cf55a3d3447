/* queue.c - the durable queue, in the journal's queue_items table (see
 * queue.h).
 *
 * One table holds every queue of a journal, told apart by name; a
 * family's fields are one JSON object made and read by SQLite's own JSON
 * functions, so core needs no JSON library and the rows read well in the
 * sqlite3 shell. The SQL of each call is built from the queue's def (its
 * field and state names, which are the family's constants, never a
 * user's) and from the query; every value is bound. */
#include "queue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "journal_sql.h"
#include "retry.h"
#include "states.h"
#include "xalloc.h"

struct queue {
	struct journal *j;
	const struct queue_def *def;
	char *select;  /* the columns of an item, ending in FROM ... WHERE queue = ?1 */
	char *payload; /* json_object(...) of the fields, from ?10 on */
};

#define COLS "id, key, state, tries, created_at, due_at, attempt_at, done_at, last_error"
#define N_COLS 9

static char *sql_cat(char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *sql_cat(char *s, const char *fmt, ...)
{
	va_list ap;
	char *add, *out;

	va_start(ap, fmt);
	if (vasprintf(&add, fmt, ap) < 0)
		abort();
	va_end(ap);
	out = xasprintf("%s%s", s ? s : "", add);
	free(add);
	free(s);
	return out;
}

int queue_open(struct journal *j, const struct queue_def *def, struct queue **ret)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	if (def->n_fields > QUEUE_MAX_FIELDS || def->n_states > 32)
		abort(); /* a family's constant: a bug */
	q->j = j;
	q->def = def;
	q->select = xstrdup("SELECT " COLS);
	q->payload = xstrdup("json_object(");
	for (int i = 0; i < def->n_fields; i++) {
		q->select = sql_cat(q->select, ", json_extract(payload, '$.\"%s\"')", def->fields[i]);
		q->payload = sql_cat(q->payload, "%s'%s', ?%d", i ? ", " : "", def->fields[i],
				     10 + i);
	}
	q->select = sql_cat(q->select, " FROM queue_items WHERE queue = ?1");
	q->payload = sql_cat(q->payload, ")");
	*ret = q;
	return 0;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	free(q->select);
	free(q->payload);
	free(q);
}

int64_t queue_now_ms(const struct queue *q)
{
	return journal_now_ms(q->j);
}

void queue_set(char **field, const char *s)
{
	free(*field);
	*field = s ? xstrdup(s) : NULL;
}

void queue_item_clear(struct queue_item *it)
{
	if (!it)
		return;
	free(it->key);
	free(it->last_error);
	for (int i = 0; i < QUEUE_MAX_FIELDS; i++)
		free(it->f[i]);
	memset(it, 0, sizeof(*it));
}

static void read_item(struct queue *q, sqlite3_stmt *st, struct queue_item *it)
{
	char *state = jr_col_text(st, 2);

	memset(it, 0, sizeof(*it));
	it->id = sqlite3_column_int64(st, 0);
	it->key = jr_col_text(st, 1);
	if (!state_parse(q->def->states, q->def->n_states, state, &it->state))
		it->state = -1; /* a newer version's state: the family decides */
	free(state);
	it->tries = (unsigned)sqlite3_column_int64(st, 3);
	it->created_at = sqlite3_column_int64(st, 4);
	it->due_at = sqlite3_column_int64(st, 5);
	it->attempt_at = sqlite3_column_int64(st, 6);
	it->done_at = sqlite3_column_int64(st, 7);
	it->last_error = jr_col_text(st, 8);
	for (int i = 0; i < q->def->n_fields; i++)
		it->f[i] = jr_col_text(st, N_COLS + i);
}

/* Binds ?2..?9 and the fields (?10..) of it. */
static void bind_item(struct queue *q, sqlite3_stmt *st, const struct queue_item *it)
{
	jr_bind_text(st, 2, it->key ? it->key : "");
	jr_bind_text(st, 3, state_name(q->def->states, q->def->n_states, it->state));
	sqlite3_bind_int64(st, 4, it->tries);
	sqlite3_bind_int64(st, 5, it->created_at);
	sqlite3_bind_int64(st, 6, it->due_at);
	sqlite3_bind_int64(st, 7, it->attempt_at);
	sqlite3_bind_int64(st, 8, it->done_at);
	jr_bind_text(st, 9, it->last_error);
	for (int i = 0; i < q->def->n_fields; i++)
		jr_bind_text(st, 10 + i, it->f[i]);
}

static int add_locked(struct queue *q, struct queue_item *it)
{
	char *sql = xasprintf("INSERT INTO queue_items (queue, key, state, tries, created_at,"
			      " due_at, attempt_at, done_at, last_error, payload%s) VALUES"
			      " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, %s%s)",
			      it->id ? ", id" : "", q->payload, it->id ? ", ?30" : "");
	sqlite3_stmt *st = jr_prepare(q->j, sql);
	int r;

	free(sql);
	if (!st)
		return -EIO;
	if (!it->created_at)
		it->created_at = queue_now_ms(q);
	jr_bind_text(st, 1, q->def->name);
	bind_item(q, st, it);
	if (it->id)
		sqlite3_bind_int64(st, 30, it->id);
	r = jr_run(q->j, st, "add an item");
	if (r == 0 && !it->id)
		it->id = sqlite3_last_insert_rowid(q->j->db);
	return r;
}

int queue_add(struct queue *q, struct queue_item *it)
{
	int r;

	pthread_mutex_lock(&q->j->lock);
	r = add_locked(q, it);
	pthread_mutex_unlock(&q->j->lock);
	return r;
}

int queue_save(struct queue *q, const struct queue_item *it)
{
	char *sql = xasprintf("UPDATE queue_items SET key = ?2, state = ?3, tries = ?4,"
			      " created_at = ?5, due_at = ?6, attempt_at = ?7, done_at = ?8,"
			      " last_error = ?9, payload = %s WHERE queue = ?1 AND id = ?30",
			      q->payload);
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&q->j->lock);
	st = jr_prepare(q->j, sql);
	if (st) {
		jr_bind_text(st, 1, q->def->name);
		bind_item(q, st, it);
		sqlite3_bind_int64(st, 30, it->id);
	}
	r = jr_run(q->j, st, "save an item");
	pthread_mutex_unlock(&q->j->lock);
	free(sql);
	return r;
}

/* ---- queries */

/* The WHERE clause of qq after "queue = ?1", its values from ?40 on:
 * bound by bind_query in the same order. */
static char *where(struct queue *q, const struct queue_query *qq)
{
	char *s = xstrdup(""), *names;
	int p = 40;

	if (!qq)
		return s;
	if (qq->key)
		s = sql_cat(s, " AND key = ?%d", p++);
	if (qq->key_prefix)
		s = sql_cat(s, " AND substr(key, 1, length(?%d)) = ?%d", p, p), p++;
	if (qq->states) {
		names = jr_name_list(q->def->states, q->def->n_states, qq->states);
		s = sql_cat(s, " AND state IN (%s)", names);
		free(names);
	}
	for (int i = 0; i < q->def->n_fields; i++)
		if (qq->match[i])
			s = sql_cat(s, " AND json_extract(payload, '$.\"%s\"') = ?%d",
				    q->def->fields[i], p++);
	if (qq->done_before)
		s = sql_cat(s, " AND done_at != 0 AND done_at < ?%d", p++);
	if (qq->skip_id)
		s = sql_cat(s, " AND id != ?%d", p++);
	return s;
}

static void bind_query(struct queue *q, sqlite3_stmt *st, const struct queue_query *qq)
{
	int p = 40;

	jr_bind_text(st, 1, q->def->name);
	if (!qq)
		return;
	if (qq->key)
		jr_bind_text(st, p++, qq->key);
	if (qq->key_prefix)
		jr_bind_text(st, p++, qq->key_prefix);
	for (int i = 0; i < q->def->n_fields; i++)
		if (qq->match[i])
			jr_bind_text(st, p++, qq->match[i]);
	if (qq->done_before)
		sqlite3_bind_int64(st, p++, qq->done_before);
	if (qq->skip_id)
		sqlite3_bind_int64(st, p++, qq->skip_id);
}

int queue_list(struct queue *q, const struct queue_query *qq,
	       int (*cb)(void *ctx, struct queue_item *it), void *ctx)
{
	char *w = where(q, qq);
	char *sql = xasprintf("%s%s ORDER BY %s", q->select, w,
			      qq && qq->by_due ? "due_at, id" : qq && qq->newest_first ? "id DESC"
										   : "id");
	struct queue_item it;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc = SQLITE_DONE, r = 0;

	free(w);
	if (qq && qq->limit)
		sql = sql_cat(sql, " LIMIT %zu", qq->limit);
	pthread_mutex_lock(&q->j->lock);
	st = jr_prepare(q->j, sql);
	if (!st)
		r = -EIO;
	else
		bind_query(q, st, qq);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_item(q, st, &it);
		n++;
		if (cb(ctx, &it)) {
			queue_item_clear(&it);
			rc = SQLITE_DONE;
			break;
		}
		queue_item_clear(&it);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = jr_errno(q->j, rc, "list items");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->j->lock);
	free(sql);
	return r;
}

int queue_count(struct queue *q, const struct queue_query *qq, uint64_t *ret)
{
	char *w = where(q, qq), *sql = xasprintf("SELECT count(*) FROM queue_items"
						 " WHERE queue = ?1%s", w);
	sqlite3_stmt *st;
	int rc, r = -EIO;

	pthread_mutex_lock(&q->j->lock);
	st = jr_prepare(q->j, sql);
	if (st) {
		bind_query(q, st, qq);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*ret = (uint64_t)sqlite3_column_int64(st, 0);
			r = 0;
		} else {
			r = jr_errno(q->j, rc, "count items");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->j->lock);
	free(sql);
	free(w);
	return r;
}

static int delete_where_locked(struct queue *q, const struct queue_query *qq)
{
	char *w = where(q, qq), *sql = xasprintf("DELETE FROM queue_items WHERE queue = ?1%s", w);
	sqlite3_stmt *st = jr_prepare(q->j, sql);
	int r;

	if (st)
		bind_query(q, st, qq);
	r = jr_run(q->j, st, "delete items");
	free(sql);
	free(w);
	return r;
}

int queue_delete_where(struct queue *q, const struct queue_query *qq)
{
	int r;

	pthread_mutex_lock(&q->j->lock);
	r = delete_where_locked(q, qq);
	pthread_mutex_unlock(&q->j->lock);
	return r;
}

int queue_delete(struct queue *q, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&q->j->lock);
	st = jr_prepare(q->j, "DELETE FROM queue_items WHERE queue = ?1 AND id = ?2");
	if (st) {
		jr_bind_text(st, 1, q->def->name);
		sqlite3_bind_int64(st, 2, id);
	}
	r = jr_run(q->j, st, "delete an item");
	pthread_mutex_unlock(&q->j->lock);
	return r;
}

int queue_replace(struct queue *q, struct queue_item *it, unsigned waiting)
{
	struct queue_query qq = { .key = it->key, .states = waiting };
	int r = journal_begin(q->j, false);

	if (r < 0)
		return r;
	if (waiting)
		r = delete_where_locked(q, &qq);
	if (r == 0)
		r = add_locked(q, it);
	return journal_end(q->j, r);
}

struct first {
	struct queue_item *ret;
	bool found;
};

static int take_first(void *ctx, struct queue_item *it)
{
	struct first *f = ctx;

	*f->ret = *it;
	memset(it, 0, sizeof(*it));
	f->found = true;
	return 1;
}

int queue_get(struct queue *q, int64_t id, struct queue_item *ret)
{
	char *sql = xasprintf("%s AND id = ?2", q->select);
	struct queue_item it;
	sqlite3_stmt *st;
	int rc, r = -ENOENT;

	pthread_mutex_lock(&q->j->lock);
	st = jr_prepare(q->j, sql);
	if (!st) {
		r = -EIO;
	} else {
		jr_bind_text(st, 1, q->def->name);
		sqlite3_bind_int64(st, 2, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			read_item(q, st, &it);
			*ret = it;
			r = 0;
		} else if (rc != SQLITE_DONE) {
			r = jr_errno(q->j, rc, "read an item");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->j->lock);
	free(sql);
	return r;
}

int queue_find(struct queue *q, const char *key, unsigned states, struct queue_item *ret)
{
	struct queue_query qq = { .key = key, .states = states == QUEUE_ALL_STATES ? 0 : states,
				  .newest_first = true, .limit = 1 };
	struct queue_item it;
	struct first f = { &it, false };
	int r = queue_list(q, &qq, take_first, &f);

	if (r < 0)
		return r;
	if (!f.found)
		return -ENOENT;
	*ret = it;
	return 0;
}

/* ---- the work of a worker */

struct due {
	struct queue *q;
	bool (*skip)(void *ctx, int64_t id);
	void *ctx;
	int64_t now;
	struct queue_item *ret;
	int64_t wait;
	bool found;
};

static int take_due(void *ctx, struct queue_item *it)
{
	struct due *d = ctx;
	int64_t due = it->due_at, latest = d->now + d->q->def->max_backoff_ms;

	if (d->skip && d->skip(d->ctx, it->id))
		return 0;
	if (due > latest)
		due = latest; /* the wall clock went back between two runs */
	if (due > d->now) {
		d->wait = due - d->now;
		return 1;
	}
	*d->ret = *it;
	memset(it, 0, sizeof(*it));
	d->found = true;
	return 1;
}

int queue_next_due(struct queue *q, unsigned states, bool (*skip)(void *ctx, int64_t id),
		   void *ctx, struct queue_item *ret, int64_t *ret_wait_ms)
{
	struct queue_query qq = { .states = states, .by_due = true };
	struct due d = { q, skip, ctx, queue_now_ms(q), ret, -1, false };
	int r = queue_list(q, &qq, take_due, &d);

	*ret_wait_ms = d.wait;
	if (r < 0)
		return r;
	return d.found ? 1 : 0;
}

int64_t queue_retry(struct queue *q, struct queue_item *it, const char *error,
		    long retry_after_ms)
{
	int64_t wait;

	it->tries++;
	wait = retry_backoff_ms(it->tries, q->def->max_backoff_ms, retry_after_ms);
	it->due_at = queue_now_ms(q) + wait;
	queue_set(&it->last_error, error);
	return wait;
}

bool queue_given_up(const struct queue *q, const struct queue_item *it, int64_t give_up_ms)
{
	return queue_now_ms(q) - it->created_at > give_up_ms;
}
