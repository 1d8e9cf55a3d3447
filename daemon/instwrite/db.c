/* db.c - the small helpers of the instance writes journal: its queue
 * (core/queue.h) and what an earlier version left, state names, time,
 * keys, staging names.
 *
 * Both the hooks (instwrite.c) and the worker (instsend.c) use them; they
 * use neither. A state_dir of a version before core's queue has a table
 * of its own, writes; its rows move into the queue at open, keeping their
 * ids, which name their staging files. */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "states.h"
#include "xalloc.h"

static const char *const state_names[IW_N_STATES] = {
	[IW_WRITING] = "writing", [IW_PENDING] = "pending", [IW_SENDING] = "sending",
	[IW_DONE] = "done",       [IW_FAILED] = "failed",
};

static const char *const field_names[IW_N_FIELDS] = {
	[IW_F_ORG] = "org",   [IW_F_APP] = "app",         [IW_F_PARTY] = "party",
	[IW_F_GUID] = "guid", [IW_F_TYPE] = "data_type",  [IW_F_NAME] = "name",
	[IW_F_OP] = "op",     [IW_F_DATA_ID] = "data_id", [IW_F_SIZE] = "size",
};

const struct queue_def iw_queue_def = {
	.name = "instwrite", .states = state_names, .n_states = IW_N_STATES,
	.fields = field_names, .n_fields = IW_N_FIELDS, .max_backoff_ms = IW_MAX_BACKOFF_MS,
};

const char *iw_state_name(enum iw_state st)
{
	return state_name(state_names, IW_N_STATES, (int)st);
}

bool iw_state_parse(const char *name, enum iw_state *ret)
{
	int st;

	if (!state_parse(state_names, IW_N_STATES, name, &st))
		return false;
	*ret = (enum iw_state)st;
	return true;
}

int64_t iw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *iw_key(const struct alt_dw_key *k)
{
	return xasprintf("%s/%s/%s/%s/%s/%s", k->org, k->app, k->party, k->guid, k->data_type,
			 k->name);
}

char *iw_folder_key(const struct alt_dw_key *k)
{
	return xasprintf("%s/%s/%s/%s/%s/", k->org, k->app, k->party, k->guid, k->data_type);
}

void iw_row_take(struct iw_row *row, struct queue_item *it)
{
	char **to[] = { &row->org,  &row->app, &row->party, &row->guid,
			&row->type, &row->name, &row->op,   &row->data_id };

	row->id = it->id;
	for (int i = 0; i <= IW_F_DATA_ID; i++) {
		*to[i] = it->f[i];
		it->f[i] = NULL;
	}
	row->state = it->state < 0 ? IW_PENDING : (enum iw_state)it->state;
	row->size = it->f[IW_F_SIZE] ? strtoull(it->f[IW_F_SIZE], NULL, 10) : 0;
	row->attempt_at = it->attempt_at;
	row->received_at = it->created_at;
	row->attempts = it->tries;
	queue_item_clear(it);
}

void iw_item_of(struct queue_item *it, const struct iw_row *row, int64_t due_at,
		const char *error)
{
	const char *from[] = { row->org,  row->app,  row->party, row->guid,
			       row->type, row->name, row->op,    row->data_id };
	char size[24];

	memset(it, 0, sizeof(*it));
	it->id = row->id;
	it->key = xasprintf("%s/%s/%s/%s/%s/%s", row->org, row->app, row->party, row->guid,
			    row->type, row->name);
	for (int i = 0; i <= IW_F_DATA_ID; i++)
		queue_set(&it->f[i], from[i]);
	snprintf(size, sizeof(size), "%" PRIu64, row->size);
	queue_set(&it->f[IW_F_SIZE], size);
	it->state = (int)row->state;
	it->tries = row->attempts;
	it->created_at = row->received_at;
	it->attempt_at = row->attempt_at;
	it->due_at = due_at;
	it->done_at = row->state == IW_DONE || row->state == IW_FAILED ? iw_now_ms() : 0;
	queue_set(&it->last_error, error);
}

/* ---- an earlier version's table, moved into the queue once */

static const char *const old_cols[] = {
	"id", "org", "app", "party", "guid", "data_type", "name", "op", "data_id", "size",
	"state", "attempts", "attempt_at", "next_at", "received_at", "last_error", "done_at",
};

static int import_row(void *ctx, const char *const *v)
{
	struct instwrite *iw = ctx;
	struct queue_item it = { 0 };
	int st, r;

	for (int i = 1; i <= 6; i++)
		if (!v[i])
			return 0;
	it.id = strtoll(v[0], NULL, 10);
	it.key = xasprintf("%s/%s/%s/%s/%s/%s", v[1], v[2], v[3], v[4], v[5], v[6]);
	for (int i = 0; i < IW_N_FIELDS; i++)
		queue_set(&it.f[i], v[1 + i]);
	it.state = state_parse(state_names, IW_N_STATES, v[10], &st) ? st : IW_PENDING;
	it.tries = v[11] ? (unsigned)atoi(v[11]) : 0;
	it.attempt_at = v[12] ? strtoll(v[12], NULL, 10) : 0;
	it.due_at = v[13] ? strtoll(v[13], NULL, 10) : 0;
	it.created_at = v[14] ? strtoll(v[14], NULL, 10) : 0;
	queue_set(&it.last_error, v[15]);
	it.done_at = v[16] ? strtoll(v[16], NULL, 10) : 0;
	r = queue_add(iw->q, &it);
	queue_item_clear(&it);
	return r;
}

int iw_journal_open(struct instwrite *iw, const char *path)
{
	int r = journal_new("instance writes", path, false, &iw->j);

	if (r == 0)
		r = queue_open(iw->j, &iw_queue_def, &iw->q);
	if (r == 0 && journal_has_table(iw->j, "writes")) {
		r = journal_begin(iw->j, true);
		if (r == 0)
			r = journal_end(iw->j, journal_import(iw->j, "writes", old_cols,
							      (int)(sizeof(old_cols) /
								    sizeof(old_cols[0])),
							      import_row, iw));
	}
	return r;
}

char *iw_stage_name(int64_t id)
{
	return xasprintf("%lld", (long long)id);
}

void iw_stage_unlink(struct instwrite *iw, int64_t id)
{
	char *name = iw_stage_name(id);

	unlinkat(iw->stage_fd, name, 0);
	free(name);
}

bool iw_held_open(struct instwrite *iw, int64_t id)
{
	for (size_t i = 0; i < iw->n_held_open; i++)
		if (iw->held_open[i] == id)
			return true;
	return false;
}

/* Called with lock held. */
void iw_set_held_open(struct instwrite *iw, int64_t id, bool open)
{
	for (size_t i = 0; i < iw->n_held_open; i++)
		if (iw->held_open[i] == id) {
			if (!open)
				iw->held_open[i] = iw->held_open[--iw->n_held_open];
			return;
		}
	if (!open)
		return;
	if (iw->n_held_open == iw->cap_held_open) {
		iw->cap_held_open = iw->cap_held_open ? 2 * iw->cap_held_open : 8;
		iw->held_open = xrealloc(iw->held_open, iw->cap_held_open * sizeof(*iw->held_open));
	}
	iw->held_open[iw->n_held_open++] = id;
}
