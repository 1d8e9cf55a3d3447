/* evstore.h - what the events module remembers across restarts.
 *
 * One SQLite database (state_dir/events.db, WAL mode) holds, per app,
 * the cursor (the id of the last event taken from the platform, or the
 * time a new state starts from), a watermark, and the events that became
 * files: their id, sequence number, file name, type and time. An event id
 * found here, or an event older than the watermark, never makes a second
 * file. The oldest entries are dropped beyond a bound (evstore_trim), and
 * the watermark rises past the newest time dropped, so what is forgotten
 * stays covered.
 *
 * Apps are named "org/app"; times are microseconds since the epoch, 0
 * for an event without a usable time (the watermark then does not apply).
 * Every function may be called from any thread; calls are serialized by a
 * lock held only while SQLite works (never across anything slow), so the
 * FUSE threads' hooks may call it. Functions return 0 or -errno (-EIO for
 * a database error, logged). */
#ifndef ALTINNFS_EVSTORE_H
#define ALTINNFS_EVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evstore;

/* Opens (or creates) the database at path. */
int evstore_open(const char *path, struct evstore **ret);
void evstore_close(struct evstore *s); /* NULL is fine */

struct evstore_cursor {
	char *after;          /* the last event id taken, or NULL */
	char *from;           /* without after: the ISO time to start from, or NULL */
	int64_t watermark_us; /* events older than this are taken as seen */
};
/* -ENOENT when the app has no cursor yet. */
int evstore_get_cursor(struct evstore *s, const char *app, struct evstore_cursor *ret);
int evstore_put_cursor(struct evstore *s, const char *app, const struct evstore_cursor *c);
void evstore_cursor_clear(struct evstore_cursor *c);
/* Is id a known event of app? */
int evstore_known(struct evstore *s, const char *app, const char *id, bool *ret);

/* Events that became files, recorded together, and the cursor moved on
 * to the event id after (when not NULL; from is dropped), in one
 * transaction. */
struct evstore_event {
	const char *id;
	uint64_t seq;
	const char *name;
	const char *type;
	int64_t time_us;
};
int evstore_record(struct evstore *s, const char *app, const struct evstore_event *evs, size_t n,
		   const char *after);
/* The highest sequence number recorded for app (0 when none). */
int evstore_max_seq(struct evstore *s, const char *app, uint64_t *ret);
/* The file with sequence number seq was removed by a user: acknowledged.
 * Committed with a full sync: its file can no longer speak for it. */
int evstore_ack(struct evstore *s, const char *app, uint64_t seq);
/* id and type (malloc'd) of the event with sequence number seq whose
 * file is name; -ENOENT when there is none. */
int evstore_lookup(struct evstore *s, const char *app, uint64_t seq, const char *name,
		   char **ret_id, char **ret_type);
/* Keeps the newest keep events of app; the watermark rises past the
 * newest time dropped. *ret_watermark_us gets the (new) watermark. */
int evstore_trim(struct evstore *s, const char *app, uint64_t keep, int64_t *ret_watermark_us);

#endif
