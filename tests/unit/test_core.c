/* test_core.c - the shared journal setup, backoff and state names, once
 * for every family: a journal is opened in WAL mode with synchronous=FULL and
 * keeps what was committed; a full disk is -ENOSPC and anything else
 * -EIO; a journal that cannot be opened leaves *ret alone; the backoff
 * doubles from one second, stays within its cap with jitter in its upper
 * half, and lets a longer Retry-After win; a state table names and
 * parses states, and says "unknown" rather than reading past itself; the
 * worker sleeps until an item is due, wakes at once when told, and stops
 * at once; a pool of them works items side by side, one wake waking it
 * all. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "journal_sql.h"
#include "log.h"
#include "retry.h"
#include "states.h"
#include "worker.h"
#include "check.h"

static char *pragma(sqlite3 *db, const char *name)
{
	char sql[64], *out = NULL;
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static void test_journal(void)
{
	char dir[] = "/tmp/altinnfs-test-core-XXXXXX", path[96];
	sqlite3 *db = NULL, *keep = (sqlite3 *)&path;
	char *v;
	int r;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/j.db", dir);
	r = journal_open("test", path, "CREATE TABLE t (x INTEGER);", &db);
	CHECK(r == 0 && db, "journal_open: %d", r);
	v = pragma(db, "journal_mode");
	CHECK(v && strcmp(v, "wal") == 0, "journal_mode %s", v ? v : "(none)");
	free(v);
	v = pragma(db, "synchronous");
	CHECK(v && strcmp(v, "2") == 0, "synchronous %s (2 is FULL)", v ? v : "(none)");
	free(v);
	CHECK(sqlite3_exec(db, "INSERT INTO t VALUES (7)", NULL, NULL, NULL) == SQLITE_OK, "insert");
	journal_close(db);

	/* reopened: the row is there, and the schema may be run again */
	db = NULL;
	r = journal_open("test", path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);", &db);
	CHECK(r == 0, "reopen: %d", r);
	v = db ? pragma(db, "synchronous") : NULL;
	CHECK(v && strcmp(v, "2") == 0, "synchronous after reopen %s", v ? v : "(none)");
	free(v);
	{
		sqlite3_stmt *st;
		int x = 0;

		if (sqlite3_prepare_v2(db, "SELECT x FROM t", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				x = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
		CHECK(x == 7, "committed row: %d", x);
	}

	/* one errno per failure */
	CHECK(journal_errno(db, SQLITE_FULL, "test", "full") == -ENOSPC, "SQLITE_FULL -> ENOSPC");
	CHECK(journal_errno(db, SQLITE_IOERR_WRITE, "test", "io") == -EIO, "IOERR -> EIO");
	CHECK(journal_errno(db, SQLITE_CORRUPT, "test", "corrupt") == -EIO, "CORRUPT -> EIO");
	CHECK(journal_errno(NULL, 0, "test", "no db") == -EIO, "no connection -> EIO");
	journal_close(db);

	/* a bad schema or an impossible path: an errno, and *ret untouched */
	r = journal_open("test", path, "NOT SQL", &keep);
	CHECK(r == -EIO && keep == (sqlite3 *)&path, "bad schema: %d", r);
	snprintf(path, sizeof(path), "%s/missing/j.db", dir);
	r = journal_open("test", path, NULL, &keep);
	CHECK(r == -EIO && keep == (sqlite3 *)&path, "missing folder: %d", r);
	journal_close(NULL);

	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(system(path) == 0, "cleanup");
}

static void test_backoff(void)
{
	for (unsigned tries = 1; tries <= 12; tries++) {
		int64_t full = 1000, d;

		for (unsigned i = 1; i < tries; i++)
			full *= 2;
		if (full > 60000)
			full = 60000;
		for (int n = 0; n < 200; n++) {
			d = retry_backoff_ms(tries, 60000, -1);
			CHECK(d >= full / 2 && d <= full, "try %u: %lld not in [%lld, %lld]", tries,
			      (long long)d, (long long)full / 2, (long long)full);
		}
	}
	/* jitter: not every wait the same */
	{
		int64_t first = retry_backoff_ms(8, 300000, -1);
		int differ = 0;

		for (int n = 0; n < 50; n++)
			differ |= retry_backoff_ms(8, 300000, -1) != first;
		CHECK(differ, "no jitter: always %lld", (long long)first);
	}
	CHECK(retry_backoff_ms(1, 60000, 90000) == 90000, "a longer Retry-After wins");
	CHECK(retry_backoff_ms(3, 60000, 10) <= 4000, "a shorter Retry-After does not");
	CHECK(retry_backoff_ms(40, 5000, -1) <= 5000, "many tries stay within the cap");
}

static void test_states(void)
{
	static const char *const names[] = { "writing", "pending", NULL, "done" };
	int st = -7;

	CHECK(strcmp(state_name(names, 4, 1), "pending") == 0, "name of 1");
	CHECK(strcmp(state_name(names, 4, 2), "unknown") == 0, "a hole in the table");
	CHECK(strcmp(state_name(names, 4, 4), "unknown") == 0, "past the table");
	CHECK(strcmp(state_name(names, 4, -1), "unknown") == 0, "before the table");
	CHECK(state_parse(names, 4, "done", &st) && st == 3, "parse done: %d", st);
	st = -7;
	CHECK(!state_parse(names, 4, "sent", &st) && st == -7, "an unknown name leaves *ret");
	CHECK(!state_parse(names, 4, NULL, &st) && st == -7, "NULL is no state");
}

/* A queue of `due` items, each due `gap_ms` after the one before. */
struct queue {
	pthread_mutex_t lock;
	int due, done, calls;
	int64_t next_at, gap_ms;
};

static int work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct queue *q = ctx;
	int64_t now = retry_mono_ms();
	int r = 0;

	pthread_mutex_lock(&q->lock);
	q->calls++;
	if (q->due > 0 && now >= q->next_at) {
		q->due--;
		q->done++;
		q->next_at = now + q->gap_ms;
		r = 1;
	} else {
		*ret_wait_ms = q->due > 0 ? q->next_at - now : -1;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int done_of(struct queue *q)
{
	int n;

	pthread_mutex_lock(&q->lock);
	n = q->done;
	pthread_mutex_unlock(&q->lock);
	return n;
}

static bool wait_done(struct queue *q, int want, int64_t limit_ms)
{
	int64_t until = retry_mono_ms() + limit_ms;

	while (done_of(q) < want && retry_mono_ms() < until)
		usleep(5000);
	return done_of(q) >= want;
}

static void test_worker(void)
{
	struct queue q = { .lock = PTHREAD_MUTEX_INITIALIZER, .due = 3, .gap_ms = 100 };
	struct worker w;
	int64_t t0 = retry_mono_ms(), took;

	worker_init(&w, "test", work_one, &q);
	CHECK(worker_start(&w) == 0, "start");
	/* three items, each due 100 ms after the last: the worker sleeps
	 * until each is due, neither polling nor oversleeping */
	CHECK(wait_done(&q, 3, 5000), "three items done: %d", done_of(&q));
	took = retry_mono_ms() - t0;
	CHECK(took >= 190 && took < 2000, "waited for due times: %lld ms", (long long)took);
	CHECK(q.calls < 20, "no busy loop: %d calls", q.calls);
	/* idle (nothing known): a wake makes it look at once, not in 60 s */
	pthread_mutex_lock(&q.lock);
	q.due = 1;
	q.next_at = 0;
	pthread_mutex_unlock(&q.lock);
	t0 = retry_mono_ms();
	worker_wake(&w);
	CHECK(wait_done(&q, 4, 5000), "woken item done: %d", done_of(&q));
	CHECK(retry_mono_ms() - t0 < 1000, "woken at once: %lld ms", (long long)(retry_mono_ms() - t0));
	CHECK(!worker_stopping(&w), "not stopping yet");
	worker_stop(&w);
	CHECK(worker_stopping(&w), "stopping");
	t0 = retry_mono_ms();
	worker_destroy(&w);
	CHECK(retry_mono_ms() - t0 < 1000, "stop ends the idle wait at once");

	/* destroyed without ever starting */
	worker_init(&w, "test", work_one, &q);
	worker_destroy(&w);
}

/* A pool: items each taking 100 ms, worked by three threads at once. */
struct slow {
	pthread_mutex_t lock;
	int due, done, busy, most_busy;
};

static int work_slow(void *ctx, int64_t *ret_wait_ms)
{
	struct slow *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (s->due == 0) {
		pthread_mutex_unlock(&s->lock);
		*ret_wait_ms = -1;
		return 0;
	}
	s->due--;
	if (++s->busy > s->most_busy)
		s->most_busy = s->busy;
	pthread_mutex_unlock(&s->lock);
	usleep(100000);
	pthread_mutex_lock(&s->lock);
	s->busy--;
	s->done++;
	pthread_mutex_unlock(&s->lock);
	return 1;
}

static void test_pool(void)
{
	struct slow s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct worker w;
	int64_t t0, took;
	int done = 0;

	worker_init(&w, "pool", work_slow, &s);
	CHECK(worker_start_pool(&w, 3) == 0 && w.n_threads == 3, "three threads");
	usleep(50000); /* all asleep, nothing known */
	pthread_mutex_lock(&s.lock);
	s.due = 6;
	pthread_mutex_unlock(&s.lock);
	t0 = retry_mono_ms();
	worker_wake(&w); /* one wake wakes the whole pool */
	while (done < 6 && retry_mono_ms() - t0 < 5000) {
		usleep(5000);
		pthread_mutex_lock(&s.lock);
		done = s.done;
		pthread_mutex_unlock(&s.lock);
	}
	took = retry_mono_ms() - t0;
	CHECK(done == 6, "six items done: %d", done);
	CHECK(s.most_busy == 3, "three at once: %d", s.most_busy);
	CHECK(took < 500, "in parallel: %lld ms for 6 x 100 ms", (long long)took);
	t0 = retry_mono_ms();
	worker_destroy(&w);
	CHECK(retry_mono_ms() - t0 < 1000, "the pool stops at once");
}

static void test_clocks(void)
{
	int64_t m1 = retry_mono_ms(), w = retry_wall_ms(), m2;

	usleep(20000);
	m2 = retry_mono_ms();
	CHECK(m2 - m1 >= 19 && m2 - m1 < 5000, "monotonic: %lld ms", (long long)(m2 - m1));
	CHECK(w > 1600000000000LL, "wall clock in ms: %lld", (long long)w);
}

int main(void)
{
	log_setup(LOG_LVL_ERROR, false);
	test_journal();
	test_backoff();
	test_states();
	test_worker();
	test_pool();
	test_clocks();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
