/* journal.h - the one way the families keep durable state: SQLite.
 *
 * Every journal (the outbox's spool, instance writes, the inbox, the
 * events' memory) is one database file in state_dir, opened here the same
 * way: WAL and synchronous=FULL, so a commit is on disk when the call that
 * made it returns ("recorded before the next step" holds across kill -9
 * and power loss); a busy timeout; one connection, used under one lock.
 * And every failure is named one way: -ENOSPC when the disk is full, -EIO
 * for anything else, logged with SQLite's message.
 *
 * A family never writes SQL: it keeps its items in a durable queue
 * (queue.h) and what is not a queue in a keyed record store (records.h),
 * both kept in a struct journal. Only core/ includes SQLite; the table in
 * docs/design.md says which files, and tests/check_layers.py checks it. */
#ifndef ALTINNFS_JOURNAL_H
#define ALTINNFS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

struct journal;

/* Opens (creating) the journal at path with the tables of queue.h and
 * records.h. relaxed: synchronous=NORMAL, where a power loss may lose the
 * newest commits (for a journal that only indexes files that are fsynced
 * themselves: the events); journal_begin(j, true) still syncs in full.
 * 0 with *ret set, or -errno logged naming who ("inbox") and path; *ret
 * is untouched on failure. */
int journal_new(const char *who, const char *path, bool relaxed, struct journal **ret);
void journal_free(struct journal *j); /* NULL is fine */

/* One transaction: every change until journal_end is one commit, which
 * other threads do not interleave with (the journal's lock is held from
 * begin to end, and may be taken again inside). A begin inside another
 * joins it: the outermost end commits, or rolls back when any inner one
 * failed. durable: synced in full even on a relaxed journal. journal_end commits when r is 0 and rolls
 * back otherwise; it returns r, or the commit's -errno. */
int journal_begin(struct journal *j, bool durable);
int journal_end(struct journal *j, int r);

/* Milliseconds since the epoch, on a monotonic basis: the wall clock when
 * the journal was opened plus CLOCK_MONOTONIC since. Due times are kept
 * in this measure (so they mean something after a restart), and waits
 * are computed in it, so a change of the wall clock while the daemon runs
 * neither stalls nor hurries a queue. */
int64_t journal_now_ms(const struct journal *j);

/* Upgrading a state_dir of an earlier version, whose families kept their
 * own tables: does table exist, and, inside journal_begin/end, each of
 * its rows as text (NULL for NULL) in the order of cols, then the table
 * dropped. row returns 0 or -errno (which stops the import). */
bool journal_has_table(struct journal *j, const char *table);
int journal_import(struct journal *j, const char *table, const char *const *cols, int n_cols,
		   int (*row)(void *ctx, const char *const *vals), void *ctx);

#endif
