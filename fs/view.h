/* view.h - what the tree shows of each app, cached for cache_ttl.
 *
 * The directory views over the platform's documents: an app's parties,
 * a party's instances, one instance. Everything a stat needs comes from
 * the query results, so walking the tree costs one query page per
 * page_size instances and no request per entry.
 *
 * A fresh whole-app listing answers everything; when it is stale, a
 * party folder is answered by one query for that party, and a single
 * instance by one GET. Concurrent callers wanting the same whole listing
 * wait for one fetch instead of making their own. */
#ifndef ALTINNFS_VIEW_H
#define ALTINNFS_VIEW_H

#include <stddef.h>
#include <time.h>

#include "altinn.h"

struct config;
struct view;
struct view_app;

struct view_party {
	char *party_id;
	struct timespec mtime; /* newest lastChanged of its instances */
	struct timespec ctime; /* oldest created */
	size_t n_instances;
};

struct view *view_new(struct altinn *a, const struct config *cfg);
void view_free(struct view *v);

size_t view_n_apps(struct view *v);
/* The mount is up: start the app's background work (its index's thread). */
void view_app_start(struct view_app *va);
struct view_app *view_app_at(struct view *v, size_t i);
size_t view_app_index(struct view *v, struct view_app *va);
const char *view_app_org(struct view_app *va);
const char *view_app_name(struct view_app *va);

/* The metadata document (a copy the caller frees) and its times. */
int view_app_doc(struct view_app *va, char **ret_doc, size_t *ret_len,
		 struct timespec *ret_mtime, struct timespec *ret_ctime);

/* Every party with instances, sorted by party id (numerically). */
int view_parties(struct view_app *va, struct view_party **ret, size_t *ret_n);
void view_parties_free(struct view_party *p, size_t n);
/* The parties of an indexed app, a page at a time (an app of millions
 * is not listed at once): view_parties_open() readies the index as a
 * whole listing would (-ENOTSUP when the app has no index: list it
 * whole); view_parties_page() gives up to max parties in the same order,
 * after the party after, or when after is NULL from position skip. */
int view_parties_open(struct view_app *va);
int view_parties_page(struct view_app *va, const char *after, uint64_t skip, size_t max,
		      struct view_party **ret, size_t *ret_n);

/* One party's folder facts; -ENOENT when it has no instances. */
int view_party(struct view_app *va, const char *party, struct view_party *ret);

/* A party's instances (references the caller drops with
 * view_instances_free), sorted by guid. */
int view_party_instances(struct view_app *va, const char *party,
			 struct alt_instance ***ret, size_t *ret_n);
void view_instances_free(struct alt_instance **list, size_t n);

/* One instance (a reference); -ENOENT when the platform has none. */
int view_instance(struct view_app *va, const char *party, const char *guid,
		  struct alt_instance **ret);

/* The inbox: complete instances this org has not confirmed (references
 * the caller drops with view_instances_free), oldest completion first. */
int view_inbox(struct view_app *va, struct alt_instance ***ret, size_t *ret_n);

/* Facts for status.json. */
void view_app_status(struct view_app *va, struct alt_status_app *ret);

/* Forget cached listings so the next look asks the platform. */
void view_app_invalidate(struct view_app *va);
/* The same for an event about one instance (party and guid, or NULL for
 * the whole app): its parsed document is dropped too. */
void view_invalidate(struct view_app *va, const char *party, const char *guid);

#endif
