/* spool.c - the outbox's journal, in core's queue and record store (see
 * spool.h, core/queue.h, core/records.h).
 *
 * Each transition is a small commit that is on disk before the next
 * remote call, and a crash at any instant leaves either the old item or
 * the new one: core's journal (SQLite, WAL, synchronous=FULL) gives
 * exactly that. An item is a queue item keyed "org/app/rel" (its times and
 * attempts are the queue's columns, the rest its fields); its data
 * elements are records of the store outbox_elements, grouped by the
 * item's id and ordered by their index; the facts learnt from the
 * platform are records of outbox_facts. An item and its elements are
 * saved in one commit.
 *
 * Items are never written by two threads at once: the outbox gives each
 * item to one thread at a time. A state_dir of a version before core's
 * queue has tables of its own (items, elements, facts); their rows move
 * over at open, keeping the items' ids. */
#include "spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "queue.h"
#include "records.h"
#include "retry.h"
#include "states.h"
#include "xalloc.h"

struct spool {
	struct journal *j;
	struct queue *items;
	struct records *els;   /* group: the item's id; ord: the element's index */
	struct records *facts; /* group ""; key: the fact's name */
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

enum { F_ORG, F_APP, F_REL, F_IS_DIR, F_FIRST_ATTEMPT, F_INSTANCE, F_TASK, F_OUTCOME_NAME,
       F_OUTCOME_DOC, N_FIELDS };
static const char *const item_fields[N_FIELDS] = {
	"org", "app", "rel", "is_dir", "first_attempt_at", "instance_id", "task", "outcome_name",
	"outcome_doc",
};
static const struct queue_def items_def = {
	.name = "outbox", .states = state_names, .n_states = SPOOL_N_STATES,
	.fields = item_fields, .n_fields = N_FIELDS,
	/* the outbox computes its own waits; this only bounds a due time
	 * left far ahead by a clock that went back */
	.max_backoff_ms = 3600 * 1000,
};

enum { E_PATH, E_FILENAME, E_CTYPE, E_DTYPE, E_SIZE, E_SHA, E_STATE, E_DATA_ID, N_EL_FIELDS };
static const char *const el_fields[N_EL_FIELDS] = {
	"path", "filename", "content_type", "data_type", "size", "sha256", "state", "data_id",
};
static const struct records_def els_def = { "outbox_elements", el_fields, N_EL_FIELDS };
static const char *const fact_fields[] = { "value" };
static const struct records_def facts_def = { "outbox_facts", fact_fields, 1 };

#define WAITING (QUEUE_STATE(SPOOL_WRITING) | QUEUE_STATE(SPOOL_HELD) | QUEUE_STATE(SPOOL_RECEIVED))
#define FINISHED (QUEUE_STATE(SPOOL_DONE) | QUEUE_STATE(SPOOL_FAILED))

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

static char *group_of(int64_t id)
{
	return xasprintf("%" PRId64, id);
}

static char *fmt_i64(int64_t v)
{
	return xasprintf("%" PRId64, v);
}

static int64_t to_i64(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

/* ---- items and elements as the queue and the store keep them */

static void item_to_queue(const struct spool_item *it, struct queue_item *q)
{
	memset(q, 0, sizeof(*q));
	q->id = it->id;
	q->key = xasprintf("%s/%s/%s", it->org, it->app, it->rel);
	q->state = (int)it->state;
	q->tries = it->attempts;
	q->created_at = it->received_at;
	q->due_at = it->next_at;
	q->attempt_at = it->attempt_at;
	q->done_at = it->finished_at;
	queue_set(&q->last_error, it->last_error);
	queue_set(&q->f[F_ORG], it->org);
	queue_set(&q->f[F_APP], it->app);
	queue_set(&q->f[F_REL], it->rel);
	queue_set(&q->f[F_IS_DIR], it->is_dir ? "1" : "0");
	q->f[F_FIRST_ATTEMPT] = fmt_i64(it->first_attempt_at);
	queue_set(&q->f[F_INSTANCE], it->instance_id);
	queue_set(&q->f[F_TASK], it->task);
	queue_set(&q->f[F_OUTCOME_NAME], it->outcome_name);
	queue_set(&q->f[F_OUTCOME_DOC], it->outcome_doc);
}

/* Takes q's strings. */
static struct spool_item *item_from_queue(struct queue_item *q)
{
	struct spool_item *it = xcalloc(1, sizeof(*it));

	it->id = q->id;
	/* a newer version's state: leave it be */
	it->state = q->state < 0 ? SPOOL_HELD : (enum spool_state)q->state;
	it->attempts = q->tries;
	it->received_at = q->created_at;
	it->next_at = q->due_at;
	it->attempt_at = q->attempt_at;
	it->finished_at = q->done_at;
	it->last_error = q->last_error;
	q->last_error = NULL;
	it->org = q->f[F_ORG];
	it->app = q->f[F_APP];
	it->rel = q->f[F_REL];
	it->is_dir = q->f[F_IS_DIR] && strcmp(q->f[F_IS_DIR], "0") != 0;
	it->first_attempt_at = to_i64(q->f[F_FIRST_ATTEMPT]);
	it->instance_id = q->f[F_INSTANCE];
	it->task = q->f[F_TASK];
	it->outcome_name = q->f[F_OUTCOME_NAME];
	it->outcome_doc = q->f[F_OUTCOME_DOC];
	q->f[F_ORG] = q->f[F_APP] = q->f[F_REL] = q->f[F_INSTANCE] = q->f[F_TASK] = NULL;
	q->f[F_OUTCOME_NAME] = q->f[F_OUTCOME_DOC] = NULL;
	queue_item_clear(q);
	return it;
}

static int put_element(struct spool *sp, int64_t item_id, size_t idx,
		       const struct spool_element *el)
{
	char *group = group_of(item_id), key[24], size[24];
	struct record rec = { .group = group, .key = key, .ord = (int64_t)idx,
			      .at = el->attempt_at };
	int r;

	snprintf(key, sizeof(key), "%06zu", idx);
	snprintf(size, sizeof(size), "%" PRIu64, el->size);
	rec.f[E_PATH] = el->path ? el->path : "";
	rec.f[E_FILENAME] = el->filename ? el->filename : "";
	rec.f[E_CTYPE] = el->content_type ? el->content_type : "";
	rec.f[E_DTYPE] = el->data_type ? el->data_type : "";
	rec.f[E_SIZE] = size;
	rec.f[E_SHA] = (char *)el->sha256;
	rec.f[E_STATE] = (char *)el_state_names[el->state];
	rec.f[E_DATA_ID] = el->data_id;
	r = records_put(sp->els, &rec);
	free(group);
	return r;
}

static int take_element(void *ctx, struct record *rec)
{
	struct spool_item *it = ctx;
	struct spool_element *el;

	it->els = xrealloc(it->els, (it->n_els + 1) * sizeof(*it->els));
	el = &it->els[it->n_els++];
	memset(el, 0, sizeof(*el));
	el->path = rec->f[E_PATH];
	el->filename = rec->f[E_FILENAME];
	el->content_type = rec->f[E_CTYPE];
	el->data_type = rec->f[E_DTYPE];
	el->data_id = rec->f[E_DATA_ID];
	rec->f[E_PATH] = rec->f[E_FILENAME] = rec->f[E_CTYPE] = rec->f[E_DTYPE] = NULL;
	rec->f[E_DATA_ID] = NULL;
	el->size = rec->f[E_SIZE] ? strtoull(rec->f[E_SIZE], NULL, 10) : 0;
	snprintf(el->sha256, sizeof(el->sha256), "%s", rec->f[E_SHA] ? rec->f[E_SHA] : "");
	for (int k = 0; k < 3; k++)
		if (rec->f[E_STATE] && strcmp(rec->f[E_STATE], el_state_names[k]) == 0)
			el->state = (enum spool_el_state)k;
	el->attempt_at = rec->at;
	return 0;
}

static int delete_elements(struct spool *sp, int64_t item_id)
{
	char *group = group_of(item_id);
	int r = records_delete(sp->els, group, NULL);

	free(group);
	return r;
}

/* ---- an earlier version's tables, moved over once */

static const char *const old_item_cols[] = {
	"id", "org", "app", "rel", "is_dir", "state", "received_at", "next_at", "attempt_at",
	"first_attempt_at", "finished_at", "attempts", "instance_id", "task", "last_error",
	"outcome_name", "outcome_doc",
};
static const char *const old_el_cols[] = {
	"item_id", "idx", "path", "filename", "content_type", "data_type", "size", "sha256",
	"state", "attempt_at", "data_id",
};
static const char *const old_fact_cols[] = { "key", "value" };

static int import_item(void *ctx, const char *const *v)
{
	struct spool *sp = ctx;
	struct spool_item it = {
		.id = to_i64(v[0]), .org = (char *)v[1], .app = (char *)v[2], .rel = (char *)v[3],
		.is_dir = to_i64(v[4]) != 0, .received_at = to_i64(v[6]), .next_at = to_i64(v[7]),
		.attempt_at = to_i64(v[8]), .first_attempt_at = to_i64(v[9]),
		.finished_at = to_i64(v[10]), .attempts = (unsigned)to_i64(v[11]),
		.instance_id = (char *)v[12], .task = (char *)v[13], .last_error = (char *)v[14],
		.outcome_name = (char *)v[15], .outcome_doc = (char *)v[16],
	};
	struct queue_item q;
	int r;

	if (!it.id || !it.org || !it.app || !it.rel)
		return 0;
	if (!spool_state_parse(v[5], &it.state))
		it.state = SPOOL_HELD;
	item_to_queue(&it, &q);
	r = queue_add(sp->items, &q);
	queue_item_clear(&q);
	return r;
}

static int import_element(void *ctx, const char *const *v)
{
	struct spool *sp = ctx;
	struct spool_element el = {
		.path = (char *)v[2], .filename = (char *)v[3], .content_type = (char *)v[4],
		.data_type = (char *)v[5], .size = (uint64_t)to_i64(v[6]),
		.attempt_at = to_i64(v[9]), .data_id = (char *)v[10],
	};

	snprintf(el.sha256, sizeof(el.sha256), "%s", v[7] ? v[7] : "");
	for (int k = 0; k < 3; k++)
		if (v[8] && strcmp(v[8], el_state_names[k]) == 0)
			el.state = (enum spool_el_state)k;
	return put_element(sp, to_i64(v[0]), (size_t)to_i64(v[1]), &el);
}

static int import_fact(void *ctx, const char *const *v)
{
	return v[0] && v[1] ? spool_fact_set(ctx, v[0], v[1]) : 0;
}

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int upgrade(struct spool *sp)
{
	int r;

	if (!journal_has_table(sp->j, "items") && !journal_has_table(sp->j, "elements") &&
	    !journal_has_table(sp->j, "facts"))
		return 0;
	r = journal_begin(sp->j, true);
	if (r == 0 && journal_has_table(sp->j, "items"))
		r = journal_import(sp->j, "items", old_item_cols, N(old_item_cols), import_item, sp);
	if (r == 0 && journal_has_table(sp->j, "elements"))
		r = journal_import(sp->j, "elements", old_el_cols, N(old_el_cols), import_element,
				   sp);
	if (r == 0 && journal_has_table(sp->j, "facts"))
		r = journal_import(sp->j, "facts", old_fact_cols, N(old_fact_cols), import_fact, sp);
	return journal_end(sp->j, r);
}

/* ---- opening */

struct ids {
	int64_t *v;
	size_t n;
};

static int collect_id(void *ctx, struct queue_item *q)
{
	struct ids *ids = ctx;

	ids->v = xrealloc(ids->v, (ids->n + 1) * sizeof(*ids->v));
	ids->v[ids->n++] = q->id;
	return 0;
}

/* Deletes the items of qq with their elements, in the open transaction. */
static int delete_items(struct spool *sp, const struct queue_query *qq)
{
	struct ids ids = { NULL, 0 };
	int r = queue_list(sp->items, qq, collect_id, &ids);

	for (size_t i = 0; r == 0 && i < ids.n; i++)
		r = delete_elements(sp, ids.v[i]);
	if (r == 0)
		r = queue_delete_where(sp->items, qq);
	free(ids.v);
	return r;
}

int spool_open(const char *path, int keep_days, struct spool **ret)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	struct queue_query old = { .states = FINISHED };
	int r;

	r = journal_new("spool", path, false, &sp->j);
	if (r == 0)
		r = queue_open(sp->j, &items_def, &sp->items);
	if (r == 0)
		r = records_open(sp->j, &els_def, &sp->els);
	if (r == 0)
		r = records_open(sp->j, &facts_def, &sp->facts);
	if (r == 0)
		r = upgrade(sp);
	if (r == 0) {
		old.done_before = retry_wall_ms() - (int64_t)keep_days * 86400000;
		r = journal_begin(sp->j, false);
		if (r == 0)
			r = journal_end(sp->j, delete_items(sp, &old));
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
	queue_close(sp->items);
	records_close(sp->els);
	records_close(sp->facts);
	journal_free(sp->j);
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

struct loaded {
	struct spool_item **v;
	size_t n;
};

static int collect_item(void *ctx, struct queue_item *q)
{
	struct loaded *l = ctx;

	/* every item not finished, also one in a state a newer version named */
	if (q->state == SPOOL_DONE || q->state == SPOOL_FAILED)
		return 0;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = item_from_queue(q);
	return 0;
}

int spool_load(struct spool *sp, void (*cb)(void *ctx, struct spool_item *it), void *ctx)
{
	struct queue_query qq = { .states = 0 };
	struct loaded l = { NULL, 0 };
	size_t i = 0;
	int r = queue_list(sp->items, &qq, collect_item, &l);

	for (; r == 0 && i < l.n; i++) {
		char *group = group_of(l.v[i]->id);

		r = records_list(sp->els, group, take_element, l.v[i]);
		free(group);
		if (r == 0)
			cb(ctx, l.v[i]);
		else
			spool_item_free(l.v[i]);
	}
	for (; i < l.n; i++)
		spool_item_free(l.v[i]);
	free(l.v);
	return r;
}

/* ---- saving */

/* A new drop replaces one that was waiting under the same name: the
 * waiting items' elements go first. In the open transaction. */
static int drop_waiting(struct spool *sp, const char *key)
{
	struct queue_query qq = { .key = key, .states = WAITING };

	return delete_items(sp, &qq);
}

int spool_save(struct spool *sp, struct spool_item *it, bool elements)
{
	int64_t old_id = it->id;
	struct queue_item q;
	int r;

	item_to_queue(it, &q);
	r = journal_begin(sp->j, false);
	if (r < 0) {
		queue_item_clear(&q);
		return r;
	}
	if (!it->id) {
		r = drop_waiting(sp, q.key);
		if (r == 0)
			r = queue_add(sp->items, &q);
		if (r == 0)
			it->id = q.id;
	} else {
		r = queue_save(sp->items, &q);
	}
	if (r == 0 && elements) {
		r = delete_elements(sp, it->id);
		for (size_t i = 0; r == 0 && i < it->n_els; i++)
			r = put_element(sp, it->id, i, &it->els[i]);
	}
	r = journal_end(sp->j, r);
	if (r < 0)
		it->id = old_id;
	queue_item_clear(&q);
	return r;
}

int spool_save_element(struct spool *sp, const struct spool_item *it, size_t idx)
{
	return put_element(sp, it->id, idx, &it->els[idx]);
}

int spool_delete(struct spool *sp, int64_t id)
{
	int r = journal_begin(sp->j, false);

	if (r < 0)
		return r;
	r = delete_elements(sp, id);
	if (r == 0)
		r = queue_delete(sp->items, id);
	return journal_end(sp->j, r);
}

/* ---- questions */

bool spool_instance_claimed(struct spool *sp, const char *instance_id, int64_t skip_id)
{
	struct queue_query qq = { .skip_id = skip_id };
	uint64_t n = 0;

	qq.match[F_INSTANCE] = instance_id;
	return queue_count(sp->items, &qq, &n) == 0 && n > 0;
}

bool spool_data_claimed(struct spool *sp, const char *data_id, int64_t skip_id)
{
	char *skip = group_of(skip_id);
	bool used = false;

	records_used(sp->els, E_DATA_ID, data_id, skip, &used);
	free(skip);
	return used;
}

uint64_t spool_count_failed(struct spool *sp)
{
	struct queue_query qq = { .states = QUEUE_STATE(SPOOL_FAILED) };
	uint64_t n = 0;

	queue_count(sp->items, &qq, &n);
	return n;
}

int spool_fact_get(struct spool *sp, const char *key, char **ret)
{
	struct record rec;
	int r = records_get(sp->facts, "", key, &rec);

	*ret = NULL;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*ret = rec.f[0];
	rec.f[0] = NULL;
	record_clear(&rec);
	return 0;
}

int spool_fact_set(struct spool *sp, const char *key, const char *value)
{
	struct record rec = { .group = "", .key = (char *)key };

	rec.f[0] = (char *)value;
	return records_put(sp->facts, &rec);
}
