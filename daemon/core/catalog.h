/* catalog.h - a large keyed table on disk, grouped, with a small meta table.
 *
 * The instance index (daemon/index/) keeps one row per instance of an app
 * here: production apps hold 10^5 to 10^7 of them, far more than memory
 * should. A row is found by its id, belongs to one group (the listing is
 * by group), carries two times the caller names (changed, created: ns
 * since the epoch), caller-defined flag bits and an opaque document. The
 * meta table holds short text values by key (a walk's resume point).
 *
 * One file per catalog, opened with core/journal.c's journal_open (WAL),
 * then synchronous=NORMAL: a catalog is a cache that can be rebuilt from
 * the platform, so a power loss may lose its newest commits but never
 * leaves it inconsistent. Every call is safe from any thread. Functions
 * return 0 or -errno: -ENOENT for a missing row or key, -EBADMSG when
 * SQLite finds the file corrupt (the caller drops it with catalog_remove
 * and builds it again), -ENOSPC for a full disk, -EIO otherwise. */
#ifndef ALTINNFS_CATALOG_H
#define ALTINNFS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct catalog;

struct catalog_row {
	char *id;
	char *grp;
	int64_t changed; /* ns since the epoch */
	int64_t created;
	uint32_t flags;
	char *doc; /* NUL-terminated; doc_len bytes before the NUL */
	size_t doc_len;
};

struct catalog_group {
	char *grp;
	uint64_t n;          /* rows in it */
	int64_t max_changed; /* newest changed of its rows */
	int64_t min_created; /* oldest created */
};

/* Opens (creating) the catalog at path: -EBADMSG when the file is not a
 * database. who names it in logs. */
int catalog_open(const char *who, const char *path, struct catalog **ret);
/* Checks the whole file (PRAGMA quick_check) on a connection of its own,
 * so the catalog's users are not held up: minutes for gigabytes, so the
 * caller runs it in the background. 0, or -EBADMSG when it is damaged. */
int catalog_verify(const char *who, const char *path);
void catalog_close(struct catalog *c); /* NULL is fine */
/* Removes the catalog's files at path (the database, its WAL and shm). */
int catalog_remove(const char *path);

/* One commit: rows put (inserted or replaced by id), ids deleted (absent
 * ones are fine), then meta pairs set (keys[i] = vals[i]; a NULL value
 * deletes the key). Nothing is changed when it fails. */
struct catalog_change {
	const struct catalog_row *put;
	size_t n_put;
	const char *const *del;
	size_t n_del;
	const char *const *keys;
	const char *const *vals;
	size_t n_meta;
};
int catalog_apply(struct catalog *c, const struct catalog_change *ch);
/* Drops every row and meta value (one commit). */
int catalog_clear(struct catalog *c);

int catalog_get(struct catalog *c, const char *id, struct catalog_row *ret);
void catalog_row_clear(struct catalog_row *r); /* NULL is fine */

/* Every group with its facts, in no particular order (caller frees):
 * read from a table of groups every commit keeps, not counted. */
int catalog_groups(struct catalog *c, struct catalog_group **ret, size_t *ret_n);
/* One group's facts; -ENOENT when it has no rows. */
/* Up to max groups in listing order (by their names' length, then
 * bytes: digit strings in numeric order): those after the group named
 * after, or, when after is NULL, from position skip. A listing read a
 * page at a time this way costs each page's rows, not the whole table. */
int catalog_groups_page(struct catalog *c, const char *after, uint64_t skip, size_t max,
			struct catalog_group **ret, size_t *ret_n);
int catalog_group(struct catalog *c, const char *grp, struct catalog_group *ret);
void catalog_groups_free(struct catalog_group *g, size_t n);
/* A group's rows, at most max of them (-EFBIG when it has more). */
int catalog_group_rows(struct catalog *c, const char *grp, size_t max, struct catalog_row **ret,
		       size_t *ret_n);
void catalog_rows_free(struct catalog_row *rows, size_t n);

/* Rows held (kept in memory, no query). */
uint64_t catalog_count(struct catalog *c);
/* A meta value (caller frees); -ENOENT when unset. */
int catalog_meta(struct catalog *c, const char *key, char **ret);

#endif
