/* index_i.h - the insides of the instance index, for daemon/index/ only. */
#ifndef ALTINNFS_INDEX_I_H
#define ALTINNFS_INDEX_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "altinn.h"
#include "catalog.h"
#include "index.h"

/* flag bits of a catalog row */
#define IDX_COMPLETE 1u

enum idx_state { IDX_IDLE, IDX_WALKING, IDX_COMPLETE_STATE, IDX_FAILED };

/* The LRU of parsed instance documents (index_lru.c): a fixed number of
 * slots found by a hash of the id, the least recently used one reused. */
struct idx_lru;
struct idx_lru *idx_lru_new(size_t cap);
void idx_lru_free(struct idx_lru *l);
/* a reference, or NULL */
struct alt_instance *idx_lru_get(struct idx_lru *l, const char *id);
void idx_lru_put(struct idx_lru *l, const char *id, struct alt_instance *inst);
void idx_lru_drop(struct idx_lru *l, const char *id); /* NULL id: all */

struct idx_loop {
	char *saved;
	unsigned long steps, power;
};
bool idx_loop_seen(struct idx_loop *lc, const char *next);
void idx_loop_reset(struct idx_loop *lc);

/* The next page of the walk, asked for while this one is parsed and stored
 * (index_walk.c); only the index's thread touches it. */
struct idx_prefetch {
	pthread_t thread;
	bool running;
	struct index *idx;
	char *from;           /* the link asked for */
	struct alt_page *page; /* the answer, or NULL with err */
	int err;
};

struct index {
	struct altinn *a;
	const struct config *cfg;
	char *org, *app, *who, *path;
	int64_t since_ns; /* index_since; 0: none */
	int ttl_s, period_s;

	/* the catalog may be swapped for a new one when it is found damaged:
	 * readers hold cat_lock for reading */
	pthread_rwlock_t cat_lock;
	struct catalog *cat;
	struct idx_lru *lru;

	pthread_mutex_t lock;
	pthread_cond_t changed; /* state, pages or a refresh ended */
	pthread_cond_t wake;    /* for the thread */
	pthread_t thread;
	bool thread_started, stop, damaged, verified;
	/* below: under lock */
	enum idx_state state;
	int walk_err;
	uint64_t pages, refreshes, refresh_pages;
	int64_t started_ns, completed_ns, newest_ns, floor_ns;
	int64_t oldest_walked_ns; /* lastChanged of the walk's last row */
	int64_t refreshed_mono_ms; /* 0: stale */
	int64_t refreshed_wall_ns;
	int64_t failed_mono_ms;
	struct idx_loop walk_loop; /* the thread's */
	struct idx_prefetch pre;   /* the thread's */
	bool refreshing;
	uint64_t refresh_gen;
	int refresh_err;
	char last_error[160];
};

/* index_walk.c: the thread's work. With idx->lock NOT held. */
int idx_walk_page(struct index *idx);
int idx_refresh(struct index *idx);
/* waits for a prefetch under way and drops what it brought */
void idx_prefetch_drop(struct index *idx);
/* a damaged catalog: dropped and made anew, empty (cat_lock taken) */
int idx_rebuild(struct index *idx);
/* index_util.c */
int64_t idx_ns(const struct timespec *ts);
struct timespec idx_ts(int64_t ns);
void idx_iso(int64_t ns, char *buf, size_t size);
/* After a catalog call failed with r: a damaged file wakes the thread to
 * make it anew, and -EAGAIN says so (the caller asks elsewhere, or looks
 * again once the walk has started over). Returns r otherwise. */
int idx_catalog_failed(struct index *idx, int r);
int64_t idx_mono_ms(void);
/* rows held (0 while the catalog is being made anew) */
uint64_t idx_count(struct index *idx);

#endif
