/* index.c - one app's instance index: its file, its thread, its states.
 *
 * The file is <state_dir>/index/<org>/<app>.db (a catalog, core/catalog.h).
 * Its meta table says where the walk is: walk_next (the `next` link of
 * the first page not stored yet), walk_pages, walk_started, walk_done
 * (set once the last page is stored), newest (the newest lastChanged
 * seen) and since (the index_since it was built with: another one starts
 * the index over, since its rows would be a different set).
 *
 *   idle --first ls--> walking --last page--> complete
 *                          |  ^                    | every period, or a look
 *                  error   v  | an ls, or period   v older than cache_ttl:
 *                        failed                  refresh (one query)
 *
 * One thread per app works the walk, one page per step, and the
 * background refresh every max(poll_interval, cache_ttl). Looks from the
 * tree wait for the walk as index_ready says, and refresh a complete
 * index themselves when it is older than cache_ttl (one refresh at a time:
 * the others wait for it). A damaged file (quick_check at open, or
 * SQLite's corruption errors) is removed and made anew; the tree
 * then sees a walk again, never rows from the damaged file. The whole file
 * is checked once per start by the thread, on a connection of its own and
 * ALT_INDEX_VERIFY_DELAY_S after its first look: a quick_check of
 * gigabytes takes minutes, which a start must not wait for, and the first
 * listings after a restart should not share the disk with it. */
#include "index_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caps.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "xalloc.h"

static int64_t meta_int(struct catalog *cat, const char *key, bool *ret_found)
{
	char *v = NULL;
	int64_t n = 0;

	if (catalog_meta(cat, key, &v) == 0) {
		n = strtoll(v, NULL, 10);
		if (ret_found)
			*ret_found = true;
	} else if (ret_found) {
		*ret_found = false;
	}
	free(v);
	return n;
}

/* Where an index left off, from its meta table. */
static int load(struct index *idx)
{
	char since[24], *walk_next = NULL;
	bool found, done;
	int64_t built_since = meta_int(idx->cat, "since", &found);
	int r = 0;

	snprintf(since, sizeof(since), "%lld", (long long)idx->since_ns);
	if (found && built_since != idx->since_ns) {
		log_info("index of \"%s/%s\": index_since changed; indexing again", idx->org,
			 idx->app);
		r = catalog_clear(idx->cat);
		found = false;
	}
	if (r == 0 && !found) {
		const char *keys[] = { "since" };
		const char *vals[] = { since };
		struct catalog_change ch = { .keys = keys, .vals = vals, .n_meta = 1 };

		r = catalog_apply(idx->cat, &ch);
	}
	if (r < 0)
		return r;
	idx->completed_ns = meta_int(idx->cat, "walk_done", &done);
	idx->pages = (uint64_t)meta_int(idx->cat, "walk_pages", NULL);
	idx->newest_ns = meta_int(idx->cat, "newest", NULL);
	idx->started_ns = meta_int(idx->cat, "walk_started", NULL);
	if (done)
		idx->state = IDX_COMPLETE_STATE;
	else if (catalog_meta(idx->cat, "walk_next", &walk_next) == 0 || idx->pages > 0)
		idx->state = IDX_WALKING; /* resumes where it stopped */
	else
		idx->state = IDX_IDLE;
	free(walk_next);
	return 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return log_errno(-errno, "cannot create %s", path);
	return 0;
}

/* With idx->lock held: one refresh at a time; the others wait for it. */
static int refresh_locked(struct index *idx)
{
	uint64_t gen;
	int r;

	if (idx->refreshing) {
		gen = idx->refresh_gen;
		while (idx->refreshing && gen == idx->refresh_gen)
			pthread_cond_wait(&idx->changed, &idx->lock);
		return idx->refresh_err;
	}
	idx->refreshing = true;
	pthread_mutex_unlock(&idx->lock);
	r = idx_refresh(idx);
	pthread_mutex_lock(&idx->lock);
	idx->refreshing = false;
	idx->refresh_gen++;
	idx->refresh_err = r;
	if (r == 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		idx->refreshed_mono_ms = idx_mono_ms();
		idx->refreshed_wall_ns = idx_ns(&now);
		idx->last_error[0] = '\0';
	} else {
		snprintf(idx->last_error, sizeof(idx->last_error), "refresh: %s", strerror(-r));
	}
	pthread_cond_broadcast(&idx->changed);
	return r;
}

static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, lock, &ts);
}

static void *run(void *arg)
{
	struct index *idx = arg;
	int64_t period = (int64_t)idx->period_s * 1000;
	int64_t verify_at = idx_mono_ms() + (int64_t)ALT_INDEX_VERIFY_DELAY_S * 1000;
	bool fresh = idx_count(idx) == 0; /* a file made now: nothing to check */

	pthread_mutex_lock(&idx->lock);
	if (fresh)
		idx->verified = true;
	while (!idx->stop) {
		int64_t now = idx_mono_ms();
		int r;

		if (!idx->verified && now >= verify_at) {
			/* the whole file, once, on a connection of its own, once
			 * the first listings are served: the tree goes on reading
			 * meanwhile (SQLite finds most damage itself) */
			idx->verified = true;
			pthread_mutex_unlock(&idx->lock);
			if (catalog_verify(idx->who, idx->path) == -EBADMSG)
				idx_catalog_failed(idx, -EBADMSG);
			pthread_mutex_lock(&idx->lock);
			continue;
		}
		if (idx->damaged) {
			pthread_mutex_unlock(&idx->lock);
			r = idx_rebuild(idx);
			pthread_mutex_lock(&idx->lock);
			if (r < 0) {
				idx->state = IDX_FAILED;
				idx->walk_err = r;
				idx->failed_mono_ms = now;
				pthread_cond_broadcast(&idx->changed);
				timed_wait(&idx->wake, &idx->lock, period);
			}
			continue;
		}
		if (idx->state == IDX_WALKING) {
			pthread_mutex_unlock(&idx->lock);
			r = idx_walk_page(idx);
			pthread_mutex_lock(&idx->lock);
			if (r < 0 && !idx->stop && idx->state == IDX_WALKING && !idx->damaged) {
				idx->state = IDX_FAILED;
				idx->walk_err = r;
				idx->failed_mono_ms = idx_mono_ms();
				snprintf(idx->last_error, sizeof(idx->last_error), "walk: %s",
					 strerror(-r));
				log_warn("index of \"%s/%s\": the walk failed: %s (it resumes at the "
					 "next look, or in %d s)", idx->org, idx->app, strerror(-r),
					 idx->period_s);
				pthread_cond_broadcast(&idx->changed);
			}
			continue;
		}
		if (idx->state == IDX_COMPLETE_STATE && !idx->refreshing &&
		    now - idx->refreshed_mono_ms >= period) {
			refresh_locked(idx);
			if (idx->refresh_err < 0)
				timed_wait(&idx->wake, &idx->lock, period);
			continue;
		}
		if (idx->state == IDX_FAILED && now - idx->failed_mono_ms >= period) {
			idx->state = IDX_WALKING;
			continue;
		}
		timed_wait(&idx->wake, &idx->lock, 1000);
	}
	pthread_mutex_unlock(&idx->lock);
	return NULL;
}

int index_open(struct altinn *a, const struct config *cfg, const char *org, const char *app,
	       struct index **ret)
{
	struct index *idx = xcalloc(1, sizeof(*idx));
	pthread_condattr_t attr;
	char *dir;
	int r;

	idx->a = a;
	idx->cfg = cfg;
	idx->org = xstrdup(org);
	idx->app = xstrdup(app);
	idx->who = xasprintf("index of %s/%s", org, app);
	idx->ttl_s = cfg->cache_ttl;
	idx->period_s = cfg->poll_interval > cfg->cache_ttl ? cfg->poll_interval : cfg->cache_ttl;
	if (idx->period_s < 1)
		idx->period_s = 1;
	pthread_rwlock_init(&idx->cat_lock, NULL);
	pthread_mutex_init(&idx->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&idx->changed, &attr);
	pthread_cond_init(&idx->wake, &attr);
	pthread_condattr_destroy(&attr);
	idx->walk_loop.power = 1;
	idx->lru = idx_lru_new(ALT_INDEX_PARSED);
	if (cfg->index_since) {
		struct timespec ts;
		/* a date alone is its midnight, UTC */
		char *full = strlen(cfg->index_since) == 10
				     ? xasprintf("%sT00:00:00Z", cfg->index_since)
				     : xstrdup(cfg->index_since);

		r = json_parse_time(full, &ts);
		free(full);
		if (r < 0) {
			r = log_errno(-EINVAL, "index_since \"%s\": want an ISO-8601 time",
				      cfg->index_since);
			goto fail;
		}
		idx->since_ns = idx_ns(&ts);
	}
	dir = xasprintf("%s/index", cfg->state_dir);
	r = make_dir(dir);
	free(dir);
	dir = xasprintf("%s/index/%s", cfg->state_dir, org);
	if (r == 0)
		r = make_dir(dir);
	free(dir);
	if (r < 0)
		goto fail;
	idx->path = xasprintf("%s/index/%s/%s.db", cfg->state_dir, org, app);
	r = catalog_open(idx->who, idx->path, &idx->cat);
	if (r == 0)
		r = load(idx);
	if (r == -EBADMSG) {
		log_warn("index of \"%s/%s\": the file was damaged; made anew", org, app);
		catalog_close(idx->cat);
		idx->cat = NULL;
		catalog_remove(idx->path);
		r = catalog_open(idx->who, idx->path, &idx->cat);
		if (r == 0)
			r = load(idx);
	}
	if (r < 0)
		goto fail;
	/* its thread starts at the first look (start_locked): index_open
	 * runs before fuse_daemonize, whose fork a thread does not survive */
	*ret = idx;
	return 0;
fail:
	index_free(idx);
	return r;
}

void index_free(struct index *idx)
{
	if (!idx)
		return;
	if (idx->thread_started) {
		pthread_mutex_lock(&idx->lock);
		idx->stop = true;
		pthread_cond_broadcast(&idx->wake);
		pthread_cond_broadcast(&idx->changed);
		pthread_mutex_unlock(&idx->lock);
		pthread_join(idx->thread, NULL);
	}
	idx_prefetch_drop(idx);
	catalog_close(idx->cat);
	idx_lru_free(idx->lru);
	idx_loop_reset(&idx->walk_loop);
	pthread_rwlock_destroy(&idx->cat_lock);
	pthread_mutex_destroy(&idx->lock);
	pthread_cond_destroy(&idx->changed);
	pthread_cond_destroy(&idx->wake);
	free(idx->org);
	free(idx->app);
	free(idx->who);
	free(idx->path);
	free(idx);
}

/* With idx->lock held: the thread that walks and refreshes, started at
 * the first look, which comes after the mount left the terminal (a
 * thread started before fuse_daemonize's fork would be missing in the
 * daemon, and its wait would hang index_free's pthread_cond_destroy). */
static void start_locked(struct index *idx)
{
	if (idx->thread_started || idx->stop)
		return;
	if (pthread_create(&idx->thread, NULL, run, idx) != 0) {
		log_warn("index of \"%s/%s\": cannot start its thread", idx->org, idx->app);
		return;
	}
	idx->thread_started = true;
}

void index_start(struct index *idx)
{
	pthread_mutex_lock(&idx->lock);
	start_locked(idx);
	pthread_mutex_unlock(&idx->lock);
}

int index_ready(struct index *idx, bool wait, bool *ret_complete)
{
	int64_t deadline = idx_mono_ms() + (int64_t)idx->cfg->timeout * 1000;
	int r = 0;

	pthread_mutex_lock(&idx->lock);
	start_locked(idx);
	if (wait && (idx->state == IDX_IDLE || idx->state == IDX_FAILED)) {
		if (idx->state == IDX_IDLE) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			idx->started_ns = idx_ns(&now);
		}
		idx->state = IDX_WALKING;
		pthread_cond_signal(&idx->wake);
	}
	while (wait && idx->state == IDX_WALKING && !idx->stop) {
		int64_t now = idx_mono_ms();

		if (idx->pages > 0 && now >= deadline)
			break;
		timed_wait(&idx->changed, &idx->lock, 200);
	}
	if (idx->state == IDX_FAILED && wait)
		r = idx->walk_err;
	else if (idx->state == IDX_COMPLETE_STATE &&
		 (idx->refreshed_mono_ms == 0 ||
		  idx_mono_ms() - idx->refreshed_mono_ms >= (int64_t)idx->ttl_s * 1000)) {
		/* an outage serves what is indexed (status.json tells); a
		 * platform that refuses our credentials is said, as a listing
		 * without the index would say it: the operator must see it */
		int rr = refresh_locked(idx);

		if (rr == -EACCES || rr == -EPERM)
			r = rr;
	}
	if (idx->stop)
		r = -ECANCELED;
	*ret_complete = idx->state == IDX_COMPLETE_STATE;
	pthread_mutex_unlock(&idx->lock);
	return r;
}

bool index_authoritative(struct index *idx)
{
	bool yes;

	pthread_mutex_lock(&idx->lock);
	yes = idx->state == IDX_COMPLETE_STATE && idx->since_ns == 0 && !idx->damaged &&
	      idx->refreshed_mono_ms != 0 &&
	      idx_mono_ms() - idx->refreshed_mono_ms < (int64_t)idx->ttl_s * 1000;
	pthread_mutex_unlock(&idx->lock);
	return yes;
}

void index_invalidate(struct index *idx, const char *party, const char *guid)
{
	if (party && guid) {
		char *id = xasprintf("%s/%s", party, guid);

		idx_lru_drop(idx->lru, id);
		free(id);
	}
	pthread_mutex_lock(&idx->lock);
	idx->refreshed_mono_ms = 0;
	pthread_mutex_unlock(&idx->lock);
}

void index_set_floor(struct index *idx, const struct timespec *floor)
{
	pthread_mutex_lock(&idx->lock);
	idx->floor_ns = idx_ns(floor);
	pthread_mutex_unlock(&idx->lock);
}

static const char *state_name(enum idx_state s)
{
	switch (s) {
	case IDX_IDLE:
		return "idle";
	case IDX_WALKING:
		return "walking";
	case IDX_COMPLETE_STATE:
		return "complete";
	case IDX_FAILED:
		return "failed";
	}
	return "?";
}

void index_status(struct index *idx, struct alt_status_index *ret)
{
	uint64_t n = idx_count(idx);

	pthread_mutex_lock(&idx->lock);
	ret->on = true;
	ret->state = state_name(idx->state);
	ret->partial = idx->state != IDX_COMPLETE_STATE;
	ret->instances = n;
	ret->pages = idx->pages;
	ret->refreshes = idx->refreshes;
	ret->refresh_pages = idx->refresh_pages;
	ret->started_at = idx_ts(idx->started_ns);
	ret->completed_at = idx_ts(idx->state == IDX_COMPLETE_STATE ? idx->completed_ns : 0);
	ret->refreshed_at = idx_ts(idx->refreshed_wall_ns);
	ret->newest = idx_ts(idx->newest_ns);
	ret->estimated_completion = idx_ts(0);
	if (idx->state == IDX_WALKING && idx->started_ns) {
		/* the walk goes from the newest lastChanged down to the floor */
		int64_t floor = idx->since_ns ? idx->since_ns : idx->floor_ns;
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		if (floor > 0 && idx->newest_ns > floor && idx->oldest_walked_ns > floor) {
			double done = (double)(idx->newest_ns - idx->oldest_walked_ns) /
				      (double)(idx->newest_ns - floor);
			double spent = (double)(idx_ns(&now) - idx->started_ns);

			if (done > 0.001 && done < 1.0)
				ret->estimated_completion =
					idx_ts(idx->started_ns + (int64_t)(spent / done));
		}
	}
	snprintf(ret->last_error, sizeof(ret->last_error), "%s", idx->last_error);
	ret->since = idx->cfg->index_since;
	pthread_mutex_unlock(&idx->lock);
}
