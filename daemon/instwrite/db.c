/* db.c - the small helpers of the instance writes journal: state names,
 * time, statements, the errno of a failed SQLite call, staging names.
 *
 * Both the hooks (instwrite.c) and the worker (instsend.c) use them; they
 * use neither. The journal's schema and rows are theirs. */
#include "instwrite_i.h"

#include <errno.h>
#include <stdlib.h>
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

int iw_db_errno(struct instwrite *iw, const char *what)
{
	return journal_errno(iw->db, 0, "instance writes", what);
}

/* A statement with its text parameters bound in order (NULL binds NULL). */
sqlite3_stmt *iw_prepare(struct instwrite *iw, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(iw->db, sql, -1, &st, NULL) != SQLITE_OK)
		iw_db_errno(iw, "prepare");
	return st;
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
