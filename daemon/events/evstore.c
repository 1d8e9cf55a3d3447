/* evstore.c - the events module's memory, in core's record store (see
 * evstore.h and core/records.h).
 *
 * Two stores in state_dir/events.db: events_cursors (per app: the cursor
 * in its fields, the watermark as its time) and events_seen (per app, by
 * event id: the sequence number as its order, the event's time as its
 * time, the file name, type and whether it was acknowledged).
 *
 * Durability: the journal is relaxed (synchronous=NORMAL), so a crash of
 * the daemon loses no commit, and a power loss may lose only the newest
 * ones. That is safe because the store is an index of the event files,
 * which are fsynced before they are recorded: at start the events module
 * reads back every file newer than the highest sequence number recorded
 * here (the file name carries the number, the contents the id). The one
 * fact no file can restore is an acknowledgement (the user removed the
 * file), so evstore_ack commits with a full sync.
 *
 * The journal's lock is held only while SQLite works: the hooks that run
 * on FUSE threads call in here, so nothing may hold it while it writes
 * through the mount. A state_dir of a version before core's record store
 * has tables of its own (cursors, seen); their rows move over at open. */
#include "evstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "records.h"
#include "xalloc.h"

enum { CUR_AFTER, CUR_FROM, CUR_N_FIELDS };
enum { SEEN_NAME, SEEN_TYPE, SEEN_ACKED, SEEN_N_FIELDS };

static const char *const cursor_fields[CUR_N_FIELDS] = { "after", "from_time" };
static const char *const seen_fields[SEEN_N_FIELDS] = { "name", "type", "acked" };
static const struct records_def cursors_def = { "events_cursors", cursor_fields, CUR_N_FIELDS };
static const struct records_def seen_def = { "events_seen", seen_fields, SEEN_N_FIELDS };

struct evstore {
	struct journal *j;
	struct records *cursors; /* group: the app; key "" */
	struct records *seen;    /* group: the app; key: the event id */
};

/* ---- an earlier version's tables, moved over once */

static const char *const old_cursor_cols[] = { "app", "after", "from_time", "watermark" };
static const char *const old_seen_cols[] = { "app", "id", "seq", "name", "type", "time",
					     "acked" };

static int import_cursor(void *ctx, const char *const *v)
{
	struct evstore *s = ctx;
	struct record rec = { .group = (char *)v[0], .key = "",
			      .at = v[3] ? strtoll(v[3], NULL, 10) : 0 };

	if (!v[0])
		return 0;
	rec.f[CUR_AFTER] = (char *)v[1];
	rec.f[CUR_FROM] = (char *)v[2];
	return records_put(s->cursors, &rec);
}

static int import_seen(void *ctx, const char *const *v)
{
	struct evstore *s = ctx;
	struct record rec = { .group = (char *)v[0], .key = (char *)v[1],
			      .ord = v[2] ? strtoll(v[2], NULL, 10) : 0,
			      .at = v[5] ? strtoll(v[5], NULL, 10) : 0 };

	if (!v[0] || !v[1])
		return 0;
	rec.f[SEEN_NAME] = (char *)v[3];
	rec.f[SEEN_TYPE] = (char *)v[4];
	rec.f[SEEN_ACKED] = v[6] && strcmp(v[6], "0") != 0 ? "1" : "0";
	return records_put(s->seen, &rec);
}

static int upgrade(struct evstore *s)
{
	bool cursors = journal_has_table(s->j, "cursors"), seen = journal_has_table(s->j, "seen");
	int r;

	if (!cursors && !seen)
		return 0;
	r = journal_begin(s->j, true);
	if (r == 0 && cursors)
		r = journal_import(s->j, "cursors", old_cursor_cols, 4, import_cursor, s);
	if (r == 0 && seen)
		r = journal_import(s->j, "seen", old_seen_cols, 7, import_seen, s);
	return journal_end(s->j, r);
}

int evstore_open(const char *path, struct evstore **ret)
{
	struct evstore *s = xcalloc(1, sizeof(*s));
	int r = journal_new("events", path, true, &s->j);

	if (r == 0)
		r = records_open(s->j, &cursors_def, &s->cursors);
	if (r == 0)
		r = records_open(s->j, &seen_def, &s->seen);
	if (r == 0)
		r = upgrade(s);
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
	records_close(s->cursors);
	records_close(s->seen);
	journal_free(s->j);
	free(s);
}

int evstore_get_cursor(struct evstore *s, const char *app, struct evstore_cursor *ret)
{
	struct record rec;
	int r = records_get(s->cursors, app, "", &rec);

	if (r < 0)
		return r;
	ret->after = rec.f[CUR_AFTER];
	ret->from = rec.f[CUR_FROM];
	ret->watermark_us = rec.at;
	rec.f[CUR_AFTER] = rec.f[CUR_FROM] = NULL;
	record_clear(&rec);
	return 0;
}

int evstore_put_cursor(struct evstore *s, const char *app, const struct evstore_cursor *c)
{
	struct record rec = { .group = (char *)app, .key = "", .at = c->watermark_us };

	rec.f[CUR_AFTER] = c->after;
	rec.f[CUR_FROM] = c->after ? NULL : c->from;
	return records_put(s->cursors, &rec);
}

void evstore_cursor_clear(struct evstore_cursor *c)
{
	free(c->after);
	free(c->from);
	memset(c, 0, sizeof(*c));
}

int evstore_known(struct evstore *s, const char *app, const char *id, bool *ret)
{
	struct record rec;
	int r = records_get(s->seen, app, id, &rec);

	if (r == 0)
		record_clear(&rec);
	if (r == 0 || r == -ENOENT) {
		*ret = r == 0;
		return 0;
	}
	return r;
}

int evstore_record(struct evstore *s, const char *app, const struct evstore_event *evs, size_t n,
		   const char *after)
{
	struct evstore_cursor c = { 0 };
	int r = journal_begin(s->j, false);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct record rec = { .group = (char *)app, .key = (char *)evs[i].id,
				      .ord = (int64_t)evs[i].seq, .at = evs[i].time_us };

		rec.f[SEEN_NAME] = (char *)evs[i].name;
		rec.f[SEEN_TYPE] = (char *)evs[i].type;
		rec.f[SEEN_ACKED] = "0";
		r = records_add(s->seen, &rec, NULL);
	}
	/* the cursor moves on only where it exists (the poller made it) */
	if (r == 0 && after && evstore_get_cursor(s, app, &c) == 0) {
		free(c.after);
		c.after = xstrdup(after);
		r = evstore_put_cursor(s, app, &c);
	}
	evstore_cursor_clear(&c);
	return journal_end(s->j, r);
}

int evstore_max_seq(struct evstore *s, const char *app, uint64_t *ret)
{
	int64_t max = 0;
	int r = records_max_ord(s->seen, app, &max);

	if (r == 0)
		*ret = (uint64_t)max;
	return r;
}

int evstore_ack(struct evstore *s, const char *app, uint64_t seq)
{
	struct record rec;
	int r = journal_begin(s->j, true);

	if (r < 0)
		return r;
	r = records_at_ord(s->seen, app, (int64_t)seq, &rec);
	if (r == 0) {
		free(rec.f[SEEN_ACKED]);
		rec.f[SEEN_ACKED] = xstrdup("1");
		r = records_put(s->seen, &rec);
		record_clear(&rec);
	} else if (r == -ENOENT) {
		r = 0; /* nothing recorded under that number: nothing to keep */
	}
	return journal_end(s->j, r);
}

int evstore_lookup(struct evstore *s, const char *app, uint64_t seq, const char *name,
		   char **ret_id, char **ret_type)
{
	struct record rec;
	int r = records_at_ord(s->seen, app, (int64_t)seq, &rec);

	if (r < 0)
		return r;
	if (!rec.f[SEEN_NAME] || strcmp(rec.f[SEEN_NAME], name) != 0) {
		record_clear(&rec);
		return -ENOENT;
	}
	*ret_id = rec.key;
	*ret_type = rec.f[SEEN_TYPE];
	rec.key = rec.f[SEEN_TYPE] = NULL;
	record_clear(&rec);
	return 0;
}

int evstore_trim(struct evstore *s, const char *app, uint64_t keep, int64_t *ret_watermark_us)
{
	struct evstore_cursor c = { 0 };
	int64_t newest = 0;
	int r = journal_begin(s->j, false);

	if (r < 0)
		return r;
	r = records_trim(s->seen, app, keep, &newest);
	/* the watermark rises past the newest time dropped */
	if (r == 0 && newest > 0 && evstore_get_cursor(s, app, &c) == 0 &&
	    c.watermark_us < newest + 1) {
		c.watermark_us = newest + 1;
		r = evstore_put_cursor(s, app, &c);
	}
	evstore_cursor_clear(&c);
	r = journal_end(s->j, r);
	if (r == 0)
		r = evstore_get_cursor(s, app, &c);
	if (r == 0)
		*ret_watermark_us = c.watermark_us;
	evstore_cursor_clear(&c);
	return r;
}
