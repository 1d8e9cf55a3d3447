/* journal.h - the one way the families keep durable state: SQLite.
 *
 * Every journal (the outbox's spool, instance writes, the inbox) is
 * opened here the same way: WAL and synchronous=FULL, so a commit is on
 * disk when the call that made it returns ("recorded before the next
 * step" holds across kill -9 and power loss); a busy timeout; one
 * connection that SQLite serializes. And every failure is named one way:
 * -ENOSPC when the disk is full, -EIO for anything else, logged with
 * SQLite's message. core/ is where SQLite is set up; docs/design.md says
 * which files include it. */
#ifndef ALTINNFS_JOURNAL_H
#define ALTINNFS_JOURNAL_H

struct sqlite3;

/* Opens (creating) the database at path and runs schema (may be NULL).
 * 0 with the connection in *ret, or -errno, logged naming who
 * ("instance writes") and path; *ret is untouched on failure. */
int journal_open(const char *who, const char *path, const char *schema, struct sqlite3 **ret);
void journal_close(struct sqlite3 *db); /* NULL is fine */

/* The -errno of a failed call on db (rc its result code, or 0 for the
 * connection's last one), logged as "who: what: SQLite's message". */
int journal_errno(struct sqlite3 *db, int rc, const char *who, const char *what);

#endif
