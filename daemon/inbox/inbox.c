/* inbox.c - confirming received instances, durably (see inbox.h).
 *
 * One SQLite table is the journal: a row per confirmation, pending until
 * the platform answers 2xx (or 404: nothing left to confirm), failed when
 * it refuses for good (403, 400, 409: api_app.h's one classifier),
 * retried with backoff (core/retry.c) otherwise. A
 * row stays after success for KEEP_DONE_S so the entry stays hidden even
 * if a listing fetched just before the confirmation is still cached. */
#include "inbox.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_app.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "retry.h"
#include "worker.h"
#include "xalloc.h"

#define KEEP_DONE_S (7 * 24 * 3600)
#define MAX_BACKOFF_S 300
#define BATCH 16

struct inbox {
	struct altinn *a;
	int give_up_s;        /* inbox_give_up: failing longer is given up */
	sqlite3 *db;          /* protected by lock */
	pthread_mutex_t lock;
	struct worker worker; /* sends the confirmations (core/worker.c) */
	bool pruned;          /* the worker's own */
};

static int work_one(void *ctx, int64_t *ret_wait_ms);

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS confirmations ("
	" org TEXT NOT NULL, app TEXT NOT NULL, party TEXT NOT NULL, guid TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" requested_at INTEGER NOT NULL,"
	" next_try_at INTEGER NOT NULL DEFAULT 0,"
	" done_at INTEGER,"
	" PRIMARY KEY (org, app, party, guid));";

static int db_errno(struct inbox *ib, const char *what)
{
	return journal_errno(ib->db, 0, "inbox", what);
}

int inbox_new(const struct config *cfg, struct altinn *a, struct inbox **ret)
{
	struct inbox *ib = xcalloc(1, sizeof(*ib));
	char *path = xasprintf("%s/inbox.db", cfg->state_dir);
	int r = 0;

	ib->a = a;
	ib->give_up_s = cfg->inbox_give_up;
	pthread_mutex_init(&ib->lock, NULL);
	worker_init(&ib->worker, "inbox", work_one, ib);
	r = journal_open("inbox", path, schema, &ib->db);
	free(path);
	if (r < 0) {
		inbox_free(ib);
		return r;
	}
	*ret = ib;
	return 0;
}

static sqlite3_stmt *prepare(struct inbox *ib, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(ib->db, sql, -1, &st, NULL) != SQLITE_OK)
		db_errno(ib, sql);
	return st;
}

static void bind_key(sqlite3_stmt *st, const char *org, const char *app, const char *party,
		     const char *guid)
{
	sqlite3_bind_text(st, 1, org, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, app, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, party, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, guid, -1, SQLITE_TRANSIENT);
}

bool inbox_hidden(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid)
{
	struct inbox *ib = ctx;
	sqlite3_stmt *st;
	bool found = false;

	pthread_mutex_lock(&ib->lock);
	st = prepare(ib, "SELECT 1 FROM confirmations WHERE org=? AND app=? AND party=? AND guid=?");
	if (st) {
		bind_key(st, org, app, party, guid);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&ib->lock);
	return found;
}

int inbox_confirm(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid)
{
	struct inbox *ib = ctx;
	sqlite3_stmt *st;
	int r = -EIO;

	pthread_mutex_lock(&ib->lock);
	/* a second rm of the same instance changes nothing: confirming twice
	 * is harmless, and a failed one is tried again */
	st = prepare(ib, "INSERT INTO confirmations (org, app, party, guid, state, requested_at)"
			 " VALUES (?, ?, ?, ?, 'pending', ?)"
			 " ON CONFLICT DO UPDATE SET state='pending', next_try_at=0,"
			 " requested_at=excluded.requested_at"
			 " WHERE state='failed'");
	if (st) {
		bind_key(st, org, app, party, guid);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
		/* synchronous=FULL: durable once the step returns */
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : db_errno(ib, "cannot record a confirmation");
		sqlite3_finalize(st);
	}
	if (r == 0) {
		log_info("inbox: confirming \"%s/%s\" %s/%s", org, app, party, guid);
		worker_wake(&ib->worker);
	}
	pthread_mutex_unlock(&ib->lock);
	return r;
}

void inbox_counts(struct inbox *ib, unsigned long *ret_pending, unsigned long *ret_failed)
{
	sqlite3_stmt *st;

	*ret_pending = *ret_failed = 0;
	pthread_mutex_lock(&ib->lock);
	st = prepare(ib, "SELECT state, count(*) FROM confirmations GROUP BY state");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);

		if (state && strcmp(state, "pending") == 0)
			*ret_pending = (unsigned long)sqlite3_column_int64(st, 1);
		else if (state && strcmp(state, "failed") == 0)
			*ret_failed = (unsigned long)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ib->lock);
}

struct job {
	char *org, *app, *party, *guid;
	int attempts;
	time_t requested_at;
};

/* With ib->lock held: up to BATCH confirmations due now. */
static size_t due(struct inbox *ib, struct job *jobs, time_t *ret_next)
{
	sqlite3_stmt *st;
	size_t n = 0;

	*ret_next = 0;
	st = prepare(ib, "SELECT org, app, party, guid, attempts, next_try_at, requested_at"
			 " FROM confirmations"
			 " WHERE state='pending' ORDER BY next_try_at LIMIT ?");
	if (!st)
		return 0;
	sqlite3_bind_int(st, 1, BATCH);
	while (sqlite3_step(st) == SQLITE_ROW) {
		time_t at = (time_t)sqlite3_column_int64(st, 5);

		if (at > time(NULL)) {
			*ret_next = at;
			break;
		}
		jobs[n].org = xstrdup((const char *)sqlite3_column_text(st, 0));
		jobs[n].app = xstrdup((const char *)sqlite3_column_text(st, 1));
		jobs[n].party = xstrdup((const char *)sqlite3_column_text(st, 2));
		jobs[n].guid = xstrdup((const char *)sqlite3_column_text(st, 3));
		jobs[n].attempts = sqlite3_column_int(st, 4);
		jobs[n].requested_at = (time_t)sqlite3_column_int64(st, 6);
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

/* The outcome of one confirmation, by the one classifier of answers
 * (api_app.h): done (also 404: nothing left to confirm), given up after
 * inbox_give_up (forgotten: the entry is back in inbox/), refused for
 * good, or again later with backoff. */
static void record(struct inbox *ib, const struct job *j, int r, const struct app_answer *ans)
{
	bool gone = r < 0 && ans->status == 404;
	bool done = r == 0 || gone;
	bool given_up = !done && time(NULL) - j->requested_at > ib->give_up_s;
	bool permanent = !done && ans->outcome == APP_REFUSED;
	long backoff = (long)((retry_backoff_ms((unsigned)j->attempts + 1, MAX_BACKOFF_S * 1000,
						ans->retry_after_ms) + 999) / 1000);
	sqlite3_stmt *st;

	if (done)
		st = prepare(ib, "UPDATE confirmations SET state='done', done_at=?5,"
				 " attempts=attempts+1, last_error=?6"
				 " WHERE org=?1 AND app=?2 AND party=?3 AND guid=?4");
	else if (given_up) /* forgotten: the entry is back in inbox/ for another rm */
		st = prepare(ib, "DELETE FROM confirmations WHERE org=?1 AND app=?2 AND party=?3"
				 " AND guid=?4 AND ?5 IS NOT NULL AND ?6 IS NOT NULL");
	else if (permanent)
		st = prepare(ib, "UPDATE confirmations SET state='failed', done_at=?5,"
				 " attempts=attempts+1, last_error=?6"
				 " WHERE org=?1 AND app=?2 AND party=?3 AND guid=?4");
	else
		st = prepare(ib, "UPDATE confirmations SET attempts=attempts+1, last_error=?6,"
				 " next_try_at=?5 WHERE org=?1 AND app=?2 AND party=?3 AND guid=?4");
	if (!st)
		return;
	bind_key(st, j->org, j->app, j->party, j->guid);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)(done || permanent || given_up
						  ? time(NULL) : time(NULL) + backoff));
	sqlite3_bind_text(st, 6, r == 0 ? NULL : ans->summary, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_errno(ib, "cannot record a confirmation's outcome");
	sqlite3_finalize(st);
	if (r == 0)
		log_info("inbox: confirmed \"%s/%s\" %s/%s", j->org, j->app, j->party, j->guid);
	else if (gone)
		log_warn("inbox: \"%s/%s\" %s/%s is gone from the platform: nothing to confirm",
			 j->org, j->app, j->party, j->guid);
	else if (given_up)
		log_error("inbox: confirming \"%s/%s\" %s/%s given up after %d s "
			  "(inbox_give_up), the entry is back in inbox/: %s", j->org, j->app, j->party,
			  j->guid, ib->give_up_s, ans->summary);
	else if (permanent)
		log_error("inbox: the platform refused to confirm \"%s/%s\" %s/%s: %s", j->org,
			  j->app, j->party, j->guid, ans->summary);
	else
		log_warn("inbox: confirming \"%s/%s\" %s/%s failed (%s); again in %ld s", j->org,
			 j->app, j->party, j->guid, ans->summary, backoff);
}

static void prune(struct inbox *ib)
{
	sqlite3_stmt *st = prepare(ib, "DELETE FROM confirmations WHERE state='done' AND done_at < ?");

	if (!st)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(time(NULL) - KEEP_DONE_S));
	sqlite3_step(st);
	sqlite3_finalize(st);
}

/* One batch of due confirmations (core/worker.h). */
static int work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct inbox *ib = ctx;
	struct job jobs[BATCH];
	time_t next;
	size_t n;

	pthread_mutex_lock(&ib->lock);
	if (!ib->pruned) {
		prune(ib);
		ib->pruned = true;
	}
	n = due(ib, jobs, &next);
	if (n == 0) {
		pthread_mutex_unlock(&ib->lock);
		*ret_wait_ms = !next ? -1 : next > time(NULL) ? (int64_t)(next - time(NULL)) * 1000 : 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		bool stop = worker_stopping(&ib->worker);
		struct app_answer ans = { .retry_after_ms = -1 };
		char *id = xasprintf("%s/%s", jobs[i].party, jobs[i].guid);
		int r;

		pthread_mutex_unlock(&ib->lock);
		r = stop ? -ECANCELED
			 : app_complete_instance(ib->a, jobs[i].org, jobs[i].app, id, &ans);
		pthread_mutex_lock(&ib->lock);
		if (r != -ECANCELED)
			record(ib, &jobs[i], r, &ans);
		app_answer_clear(&ans);
		free(id);
		free(jobs[i].org);
		free(jobs[i].app);
		free(jobs[i].party);
		free(jobs[i].guid);
	}
	pthread_mutex_unlock(&ib->lock);
	return 1;
}

int inbox_start(struct inbox *ib)
{
	return worker_start(&ib->worker);
}

void inbox_stop(struct inbox *ib)
{
	if (ib)
		worker_stop(&ib->worker);
}

void inbox_free(struct inbox *ib)
{
	if (!ib)
		return;
	worker_destroy(&ib->worker);
	sqlite3_close(ib->db);
	pthread_mutex_destroy(&ib->lock);
	free(ib);
}

/* ---- the family, as fs/ and main.c see it (family.h) */

static int family_start(void *ctx)
{
	return inbox_start(ctx);
}

static void family_stop(void *ctx)
{
	inbox_stop(ctx);
}

static void family_free(void *ctx)
{
	inbox_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "apps/<org>/<app>/inbox/<partyId>-<instanceGuid>",
	  "a link to each completed instance not yet confirmed, oldest first; rm\n"
	  "confirms it (durably, with retries)\n",
	  "ls -l apps/{app}/inbox/" },
	{ NULL, NULL, NULL },
};

int inbox_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct inbox *ib;
	int r = inbox_new(deps->cfg, deps->a, &ib);

	if (r < 0)
		return log_errno(r, "cannot open the inbox state in \"%s\"", deps->cfg->state_dir);
	*ret = (struct fs_family){ .name = "inbox", .ctx = ib,
				   .inbox = { ib, inbox_hidden, inbox_confirm }, .readme = readme,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	return 0;
}
