/* index.h - the persistent index of one app's instances (docs/index.md).
 *
 * Between the platform client and the tree: fs/view.c asks the index for
 * an app's parties, a party's instances and one instance; the index keeps
 * one row per instance in a catalog (core/catalog.h) under state_dir,
 * filled once by a background walk of the instance query (one page at a
 * time, resumable after a restart from the last page's `next` link) and
 * kept fresh by one query for what changed since the newest lastChanged
 * seen (minus ALT_INDEX_OVERLAP_S). Parsed documents are held in an LRU
 * of ALT_INDEX_PARSED; nothing else grows with the app.
 *
 * Every function is safe from any thread and returns 0 or -errno. */
#ifndef ALTINNFS_INDEX_H
#define ALTINNFS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "altinn.h"

struct config;
struct index;

/* Opens (creating, or rebuilding a damaged one) the index of org/app under
 * cfg->state_dir; no thread yet (index_open runs before the daemon
 * leaves the terminal, whose fork a thread does not survive). */
int index_open(struct altinn *a, const struct config *cfg, const char *org, const char *app,
	       struct index **ret);
/* Starts its thread, once the mount is up (fs_start; index_ready starts
 * it too if nobody did). An unfinished walk on disk goes on at once; a
 * new index starts walking at the first index_ready() with wait (the
 * first ls of instances/). */
void index_start(struct index *idx);
/* Stops the thread (an unfinished walk resumes at the next open). */
void index_free(struct index *idx); /* NULL is fine */

/* Makes the index answerable. With wait (a listing of instances/): starts
 * the walk when none has run (or again after it failed) and waits for it
 * while it runs (until it
 * ends, or for cfg->timeout once a page is in: a listing is a request), and refreshes a
 * complete index older than cache_ttl (one query; more pages only for
 * many changes). *ret_complete says whether every instance has been
 * indexed (false: a listing shows what is indexed so far). With wait,
 * fails with the walk's error when the walk failed (a listing never
 * pretends to be whole); a failed refresh serves what is indexed and
 * says so in status.json. */
int index_ready(struct index *idx, bool wait, bool *ret_complete);
/* Whether the walk has finished and the last refresh is within
 * cache_ttl: then a name the index does not hold is not there (unless
 * index_since leaves older instances out). No request. */
bool index_authoritative(struct index *idx);

/* Every party with instances, sorted numerically. */
struct index_party {
	char *party_id;
	uint64_t n;
	struct timespec mtime; /* newest lastChanged */
	struct timespec ctime; /* oldest created */
};
int index_parties(struct index *idx, struct index_party **ret, size_t *ret_n);
/* Up to max parties in the same order, a page of a listing: those after
 * the party after, or when after is NULL from position skip. */
int index_parties_page(struct index *idx, const char *after, uint64_t skip, size_t max,
		       struct index_party **ret, size_t *ret_n);
/* One party's facts; -ENOENT when the index holds none of its instances. */
int index_party(struct index *idx, const char *party, struct index_party *ret);
void index_parties_free(struct index_party *p, size_t n);
/* A party's instances (references; at most max, else -EFBIG). */
int index_party_instances(struct index *idx, const char *party, size_t max,
			  struct alt_instance ***ret, size_t *ret_n);
/* One instance (a reference); -ENOENT when the index does not hold it. */
int index_instance(struct index *idx, const char *party, const char *guid,
		   struct alt_instance **ret);

/* An instance's event (or the whole app's, party NULL): the next look
 * refreshes first, and the instance's parsed document is dropped. */
void index_invalidate(struct index *idx, const char *party, const char *guid);
/* Instances can be no older than this (the app's created time): lets the
 * walk estimate when it will be done. */
void index_set_floor(struct index *idx, const struct timespec *floor);

void index_status(struct index *idx, struct alt_status_index *ret);

#endif
