/* test_queue.c - core's durable queue and record store, once for every
 * family: items keep their state, fields and times across a close and a
 * reopen; the due item comes first and a later one tells how long to
 * wait; a failed try backs off within the cap; an item gives up after
 * its age; queries select by key, prefix, state and field; a full disk is
 * -ENOSPC; records are found by key and by order, trimmed to the newest
 * and answer whether a value is in use; an earlier version's table is
 * imported and dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "journal_sql.h"
#include "queue.h"
#include "records.h"
#include "check.h"

enum { ST_PENDING, ST_SENDING, ST_DONE, ST_FAILED, N_ST };
static const char *const states[N_ST] = { "pending", "sending", "done", "failed" };
static const char *const fields[] = { "org", "name" };
static const struct queue_def def = { "test", states, N_ST, fields, 2, 60000 };

static char dir[] = "/tmp/altinnfs-test-queue-XXXXXX";

static struct journal *open_journal(const char *name)
{
	char path[128];
	struct journal *j = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(journal_new("test", path, false, &j) == 0 && j, "journal_new %s", path);
	return j;
}

static int64_t add(struct queue *q, const char *key, int state, int64_t due, const char *name)
{
	struct queue_item it = { .state = state, .due_at = due };

	queue_set(&it.key, key);
	queue_set(&it.f[0], "ttd");
	queue_set(&it.f[1], name);
	CHECK(queue_add(q, &it) == 0 && it.id > 0, "add %s", key);
	queue_item_clear(&it);
	return 0;
}

static int count(struct queue *q, const struct queue_query *qq)
{
	uint64_t n = 99;

	CHECK(queue_count(q, qq, &n) == 0, "count");
	return (int)n;
}

static void test_queue_basics(void)
{
	struct journal *j = open_journal("q.db");
	struct queue *q;
	struct queue_item it = { 0 };
	int64_t now, wait = 0;

	queue_open(j, &def, &q);
	now = queue_now_ms(q);
	add(q, "ttd/a/later", ST_PENDING, now + 5000, "later");
	add(q, "ttd/a/first", ST_PENDING, 0, "first");
	add(q, "ttd/b/sent", ST_DONE, 0, "sent");

	/* the due one first, with its fields and state */
	CHECK(queue_next_due(q, QUEUE_STATE(ST_PENDING), NULL, NULL, &it, &wait) == 1, "due");
	CHECK(it.key && strcmp(it.key, "ttd/a/first") == 0 && it.state == ST_PENDING &&
	      it.f[1] && strcmp(it.f[1], "first") == 0 && it.created_at >= now, "first item");
	/* it fails: backoff within [0.5 s, 1 s] for the first try */
	{
		int64_t w = queue_retry(q, &it, "503", -1);

		CHECK(it.tries == 1 && w >= 500 && w <= 1000 && it.due_at >= now + 500,
		      "backoff %lld", (long long)w);
		CHECK(queue_save(q, &it) == 0, "save");
	}
	queue_item_clear(&it);
	/* nothing due now: told to wait until the earliest */
	CHECK(queue_next_due(q, QUEUE_STATE(ST_PENDING), NULL, NULL, &it, &wait) == 0 &&
	      wait > 0 && wait <= 1000, "wait %lld", (long long)wait);
	/* a due time far ahead (the wall clock went back) is capped */
	{
		struct queue_item far = { 0 };

		CHECK(queue_find(q, "ttd/a/later", QUEUE_ALL_STATES, &far) == 0, "find later");
		far.due_at = now + 10LL * 86400000;
		queue_save(q, &far);
		queue_item_clear(&far);
	}
	/* queries */
	CHECK(count(q, NULL) == 3, "all");
	CHECK(count(q, &(struct queue_query){ .states = QUEUE_STATE(ST_DONE) }) == 1, "done");
	CHECK(count(q, &(struct queue_query){ .key_prefix = "ttd/a/" }) == 2, "prefix");
	CHECK(count(q, &(struct queue_query){ .key_prefix = "ttd/a%" }) == 0, "prefix is literal");
	CHECK(count(q, &(struct queue_query){ .match = { NULL, "sent" } }) == 1, "field");
	CHECK(count(q, &(struct queue_query){ .match = { "ttd", "none" } }) == 0, "two fields");
	CHECK(queue_find(q, "ttd/b/sent", QUEUE_STATE(ST_PENDING), &it) == -ENOENT, "by state");
	queue_close(q);
	journal_free(j);

	/* reopened: the items, their tries and errors are there */
	j = open_journal("q.db");
	queue_open(j, &def, &q);
	CHECK(queue_find(q, "ttd/a/first", QUEUE_ALL_STATES, &it) == 0 && it.tries == 1 &&
	      it.last_error && strcmp(it.last_error, "503") == 0, "reopened");
	/* give-up: by the age since it was made */
	CHECK(!queue_given_up(q, &it, 60000), "young");
	it.created_at -= 120000;
	CHECK(queue_given_up(q, &it, 60000), "old");
	queue_item_clear(&it);
	CHECK(queue_next_due(q, QUEUE_STATE(ST_PENDING), NULL, NULL, &it, &wait) == 0 &&
	      wait <= 60000, "capped wait %lld", (long long)wait);
	/* replace ends the waiting item of a key */
	{
		struct queue_item nw = { .state = ST_PENDING };

		queue_set(&nw.key, "ttd/a/first");
		CHECK(queue_replace(q, &nw, QUEUE_STATE(ST_PENDING)) == 0, "replace");
		CHECK(count(q, &(struct queue_query){ .key = "ttd/a/first" }) == 1, "one left");
		CHECK(queue_delete(q, nw.id) == 0, "delete");
		CHECK(count(q, &(struct queue_query){ .key = "ttd/a/first" }) == 0, "none left");
		queue_item_clear(&nw);
	}
	/* a name a newer version wrote is -1, for the family to judge */
	sqlite3_exec(j->db, "UPDATE queue_items SET state = 'exotic'", NULL, NULL, NULL);
	CHECK(queue_find(q, "ttd/b/sent", QUEUE_ALL_STATES, &it) == 0 && it.state == -1, "unknown");
	queue_item_clear(&it);

	/* a full disk is ENOSPC */
	sqlite3_exec(j->db, "PRAGMA max_page_count = 1", NULL, NULL, NULL);
	{
		char big[4096];
		struct queue_item full = { .state = ST_PENDING };
		int r = 0;

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		queue_set(&full.key, "full");
		queue_set(&full.f[1], big);
		for (int i = 0; i < 200 && r == 0; i++) {
			full.id = 0;
			r = queue_add(q, &full);
		}
		CHECK(r == -ENOSPC, "full disk: %d", r);
		queue_item_clear(&full);
	}
	queue_close(q);
	journal_free(j);
}

static const char *const rfields[] = { "name", "data_id" };
static const struct records_def rdef = { "seen", rfields, 2 };

static void test_records(void)
{
	struct journal *j = open_journal("r.db");
	struct records *rs;
	struct record rec = { 0 };
	int64_t v = -1;
	bool b;

	records_open(j, &rdef, &rs);
	for (int i = 1; i <= 5; i++) {
		char key[8], name[8];
		struct record r = { .group = "ttd/a", .key = key, .ord = i, .at = 100 * i };

		snprintf(key, sizeof(key), "e%d", i);
		snprintf(name, sizeof(name), "n%d", i);
		r.f[0] = name;
		r.f[1] = i == 3 ? "data-3" : NULL;
		CHECK(records_put(rs, &r) == 0, "put %d", i);
	}
	{
		struct record again = { .group = "ttd/a", .key = "e2", .ord = 99 };

		b = true;
		CHECK(records_add(rs, &again, &b) == 0 && !b, "add keeps what is there");
	}
	CHECK(records_get(rs, "ttd/a", "e2", &rec) == 0 && rec.ord == 2 && rec.f[0] &&
	      strcmp(rec.f[0], "n2") == 0, "get");
	record_clear(&rec);
	CHECK(records_get(rs, "ttd/b", "e2", &rec) == -ENOENT, "other group");
	CHECK(records_at_ord(rs, "ttd/a", 4, &rec) == 0 && strcmp(rec.key, "e4") == 0, "by ord");
	record_clear(&rec);
	CHECK(records_max_ord(rs, "ttd/a", &v) == 0 && v == 5, "max ord %lld", (long long)v);
	CHECK(records_max_ord(rs, "none", &v) == 0 && v == 0, "max ord of none");
	CHECK(records_used(rs, 1, "data-3", NULL, &b) == 0 && b, "used");
	CHECK(records_used(rs, 1, "data-3", "ttd/a", &b) == 0 && !b, "used, own group skipped");
	CHECK(records_trim(rs, "ttd/a", 2, &v) == 0 && v == 300, "trim: newest dropped %lld",
	      (long long)v);
	CHECK(records_get(rs, "ttd/a", "e3", &rec) == -ENOENT, "e3 trimmed");
	CHECK(records_get(rs, "ttd/a", "e4", &rec) == 0, "e4 kept");
	record_clear(&rec);
	CHECK(records_trim(rs, "ttd/a", 2, &v) == 0 && v == 0, "nothing more to trim");
	CHECK(records_delete(rs, "ttd/a", NULL) == 0 && records_max_ord(rs, "ttd/a", &v) == 0 &&
	      v == 0, "delete the group");
	records_close(rs);
	journal_free(j);
}

static int import_row(void *ctx, const char *const *vals)
{
	struct queue *q = ctx;
	struct queue_item it = { .state = ST_PENDING };

	int r;

	queue_set(&it.key, vals[0]);
	it.tries = (unsigned)atoi(vals[1]);
	r = queue_add(q, &it);
	queue_item_clear(&it);
	return r;
}

static void test_import(void)
{
	struct journal *j = open_journal("old.db");
	static const char *const cols[] = { "k", "n" };
	struct queue *q;
	struct queue_item it = { 0 };

	sqlite3_exec(j->db, "CREATE TABLE old (k TEXT, n INTEGER); INSERT INTO old VALUES"
			    " ('a', 3), ('b', 0)", NULL, NULL, NULL);
	queue_open(j, &def, &q);
	CHECK(journal_has_table(j, "old"), "old table");
	CHECK(journal_begin(j, true) == 0, "begin");
	CHECK(journal_end(j, journal_import(j, "old", cols, 2, import_row, q)) == 0, "import");
	CHECK(!journal_has_table(j, "old"), "dropped");
	CHECK(queue_find(q, "a", QUEUE_ALL_STATES, &it) == 0 && it.tries == 3, "imported");
	queue_item_clear(&it);
	queue_close(q);
	journal_free(j);
}

int main(void)
{
	char cmd[96];

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	test_queue_basics();
	test_records();
	test_import();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "cleanup");
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}
