/* index_walk.c - filling the index: the walk and the refresh.
 *
 * The walk asks the instance query for the app's live instances (newest
 * first, as Storage orders by default) one page at a time, and asks for
 * the next page (its link read ahead of the parse, json_scan.c) while it
 * stores this one: the platform's time and ours overlap. A row keeps the
 * instance's text as the platform sent it (altinn_page_deliver_raw: no
 * parse and no re-serialising on the walk; the tree parses a document
 * when it looks at the instance), so storing a page costs less than the
 * platform spends making it. Each page's
 * rows and the page's `next` link are one commit, so a walk killed at any
 * point resumes at the next start from the first page it had not stored:
 * only the two pages in flight are asked for again. `next` links are checked as api.c checks a
 * listing's: a loop (Brent's cycle finding), more than ALT_MAX_PAGES
 * pages, or more than max_listed rows end the walk with an error.
 *
 * A refresh asks for what changed since the newest lastChanged the index
 * has seen, less ALT_INDEX_OVERLAP_S: Storage's clocks may differ by a
 * little, and several instances may share one stamp, of which a page may
 * have carried only some. It includes hard-deleted instances (their rows
 * leave the index) and pages through its own `next` links. An instance
 * that changed during the walk has a lastChanged after the first page's,
 * so the first refresh after the walk brings it. */
#include "index_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caps.h"
#include "config.h"
#include "log.h"
#include "xalloc.h"

/* One page's instances as catalog rows (puts) and ids to drop (dels). */
struct page_rows {
	struct catalog_row *put;
	char **del;
	size_t n_put, n_del, cap_put, cap_del;
	int64_t newest, oldest;
	bool with_deleted;
};

static int page_cb(const struct alt_raw_instance *ri, void *ctx)
{
	struct page_rows *p = ctx;
	int64_t changed = idx_ns(&ri->last_changed);
	char *id = xasprintf("%s/%s", ri->party_id, ri->guid);

	if (changed > p->newest)
		p->newest = changed;
	if (p->oldest == 0 || changed < p->oldest)
		p->oldest = changed;
	if (ri->hard_deleted) {
		if (p->n_del == p->cap_del) {
			p->cap_del = p->cap_del ? p->cap_del * 2 : 16;
			p->del = xrealloc(p->del, p->cap_del * sizeof(*p->del));
		}
		p->del[p->n_del++] = id;
	} else {
		struct catalog_row *row;

		if (p->n_put == p->cap_put) {
			p->cap_put = p->cap_put ? p->cap_put * 2 : 128;
			p->put = xrealloc(p->put, p->cap_put * sizeof(*p->put));
		}
		row = &p->put[p->n_put++];
		row->id = id;
		row->grp = xstrdup(ri->party_id);
		row->changed = changed;
		row->created = idx_ns(&ri->created);
		row->flags = ri->is_complete ? IDX_COMPLETE : 0;
		/* the platform's bytes: parsed (and indented) when looked at */
		row->doc = xmalloc(ri->doc_len + 1);
		memcpy(row->doc, ri->doc, ri->doc_len);
		row->doc[ri->doc_len] = '\0';
		row->doc_len = ri->doc_len;
	}
	return 0;
}

static void page_rows_clear(struct page_rows *p)
{
	catalog_rows_free(p->put, p->n_put);
	for (size_t i = 0; i < p->n_del; i++)
		free(p->del[i]);
	free(p->del);
	memset(p, 0, sizeof(*p));
}

/* Stores a page's rows with the meta pairs, and drops their parsed
 * documents. */
static int store_page(struct index *idx, struct page_rows *p, const char *const *keys,
		      const char *const *vals, size_t n_meta)
{
	struct catalog_change ch = {
		.put = p->put, .n_put = p->n_put, .del = (const char *const *)p->del,
		.n_del = p->n_del, .keys = keys, .vals = vals, .n_meta = n_meta,
	};
	int r;

	pthread_rwlock_rdlock(&idx->cat_lock);
	r = idx->cat ? catalog_apply(idx->cat, &ch) : -EIO;
	pthread_rwlock_unlock(&idx->cat_lock);
	if (r < 0)
		return idx_catalog_failed(idx, r);
	for (size_t i = 0; i < p->n_put; i++)
		idx_lru_drop(idx->lru, p->put[i].id);
	for (size_t i = 0; i < p->n_del; i++)
		idx_lru_drop(idx->lru, p->del[i]);
	return 0;
}

static char *meta(struct index *idx, const char *key)
{
	char *v = NULL;

	pthread_rwlock_rdlock(&idx->cat_lock);
	if (!idx->cat || catalog_meta(idx->cat, key, &v) < 0)
		v = NULL;
	pthread_rwlock_unlock(&idx->cat_lock);
	return v;
}

static void *prefetch_run(void *arg)
{
	struct idx_prefetch *pre = arg;
	struct alt_query q = { .org = pre->idx->org, .app = pre->idx->app, .is_complete = -1 };

	pre->err = altinn_page_fetch(pre->idx->a, &q, pre->from, &pre->page);
	return NULL;
}

/* The prefetched page when it is the one from names (else dropped). */
static struct alt_page *prefetched(struct index *idx, const char *from)
{
	struct idx_prefetch *pre = &idx->pre;
	struct alt_page *page = NULL;

	if (!pre->running)
		return NULL;
	pthread_join(pre->thread, NULL);
	pre->running = false;
	if (from && pre->err == 0 && strcmp(pre->from, from) == 0) {
		page = pre->page;
		pre->page = NULL;
	}
	altinn_page_free(pre->page);
	pre->page = NULL;
	free(pre->from);
	pre->from = NULL;
	return page;
}

void idx_prefetch_drop(struct index *idx)
{
	prefetched(idx, NULL);
}

/* Asks for the page after this one while it is parsed, unless the walk
 * would stop before it: a link seen before, too many pages or rows. */
static void prefetch(struct index *idx, struct alt_page *page, uint64_t pages)
{
	struct idx_prefetch *pre = &idx->pre;
	long long count;
	char *next;

	altinn_page_peek(page, &next, &count);
	if (!next || count < 0 || pages + 1 >= ALT_MAX_PAGES ||
	    (idx->walk_loop.saved && strcmp(idx->walk_loop.saved, next) == 0) ||
	    idx_count(idx) + (uint64_t)count > (uint64_t)idx->cfg->max_listed) {
		free(next);
		return;
	}
	pre->idx = idx;
	pre->from = next;
	pre->page = NULL;
	pre->err = 0;
	if (pthread_create(&pre->thread, NULL, prefetch_run, pre) != 0) {
		free(pre->from);
		pre->from = NULL;
		return;
	}
	pre->running = true;
}

int idx_walk_page(struct index *idx)
{
	char since[40], *from = meta(idx, "walk_next"), *next = NULL;
	char pages_s[24], newest_s[24], started_s[24], done_s[24];
	struct alt_query q = {
		.org = idx->org, .app = idx->app, .is_complete = -1,
	};
	struct page_rows p = { 0 };
	struct alt_page *page;
	uint64_t pages;
	int64_t newest, started;
	int r;

	if (idx->since_ns) {
		idx_iso(idx->since_ns, since, sizeof(since));
		q.last_changed_gt = since;
	}
	if (!from)
		idx_loop_reset(&idx->walk_loop);
	page = prefetched(idx, from);
	r = page ? 0 : altinn_page_fetch(idx->a, &q, from, &page);
	free(from);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&idx->lock);
	pages = idx->pages + 1;
	pthread_mutex_unlock(&idx->lock);
	prefetch(idx, page, pages);
	r = altinn_page_deliver_raw(idx->a, page, page_cb, &p, &next);
	altinn_page_free(page);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&idx->lock);
	newest = p.newest > idx->newest_ns ? p.newest : idx->newest_ns;
	started = idx->started_ns;
	pthread_mutex_unlock(&idx->lock);
	if (next && (idx_loop_seen(&idx->walk_loop, next) || pages >= ALT_MAX_PAGES)) {
		log_warn("index of \"%s/%s\": the walk stopped: %s", idx->org, idx->app,
			 pages >= ALT_MAX_PAGES ? "too many pages" : "the next links go round in a loop");
		r = -EIO;
		goto out;
	}
	if (idx_count(idx) + p.n_put > (uint64_t)idx->cfg->max_listed) {
		log_warn("index of \"%s/%s\": the walk stopped: more than max_listed (%d) instances",
			 idx->org, idx->app, idx->cfg->max_listed);
		r = -EFBIG;
		goto out;
	}
	snprintf(pages_s, sizeof(pages_s), "%llu", (unsigned long long)pages);
	snprintf(newest_s, sizeof(newest_s), "%lld", (long long)newest);
	snprintf(started_s, sizeof(started_s), "%lld", (long long)started);
	{
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(done_s, sizeof(done_s), "%lld", (long long)idx_ns(&now));
	}
	{
		const char *keys[] = { "walk_next", "walk_pages", "newest", "walk_started",
				       "walk_done" };
		const char *vals[] = { next, pages_s, newest_s, started_s, next ? NULL : done_s };

		r = store_page(idx, &p, keys, vals, 5);
	}
	if (r < 0)
		goto out;
	pthread_mutex_lock(&idx->lock);
	idx->pages = pages;
	idx->newest_ns = newest;
	if (p.oldest)
		idx->oldest_walked_ns = p.oldest;
	if (!next) {
		idx->state = IDX_COMPLETE_STATE;
		idx->completed_ns = strtoll(done_s, NULL, 10);
		idx->refreshed_mono_ms = idx_mono_ms();
		idx->refreshed_wall_ns = idx->completed_ns;
		log_info("index of \"%s/%s\": walk complete, %llu instances in %llu pages",
			 idx->org, idx->app, (unsigned long long)idx_count(idx),
			 (unsigned long long)pages);
	}
	idx->last_error[0] = '\0';
	pthread_cond_broadcast(&idx->changed);
	pthread_mutex_unlock(&idx->lock);
out:
	free(next);
	page_rows_clear(&p);
	return r;
}

int idx_refresh(struct index *idx)
{
	char gt[40], newest_s[24], *from = NULL, *next = NULL;
	struct alt_query q = {
		.org = idx->org, .app = idx->app, .is_complete = -1, .with_deleted = true,
	};
	struct idx_loop lc = { .power = 1 };
	int64_t newest, mark;
	uint64_t pages = 0;
	int r;

	pthread_mutex_lock(&idx->lock);
	newest = idx->newest_ns;
	pthread_mutex_unlock(&idx->lock);
	mark = newest - (int64_t)ALT_INDEX_OVERLAP_S * 1000000000ll;
	if (mark < idx->since_ns)
		mark = idx->since_ns;
	if (mark > 0) {
		idx_iso(mark, gt, sizeof(gt));
		q.last_changed_gt = gt;
	}
	for (;;) {
		struct page_rows p = { 0 };
		struct alt_page *page = NULL;

		r = altinn_page_fetch(idx->a, &q, from, &page);
		if (r == 0)
			r = altinn_page_deliver_raw(idx->a, page, page_cb, &p, &next);
		altinn_page_free(page);
		free(from);
		from = NULL;
		if (r < 0) {
			page_rows_clear(&p);
			break;
		}
		pages++;
		if (p.newest > newest)
			newest = p.newest;
		snprintf(newest_s, sizeof(newest_s), "%lld", (long long)newest);
		{
			const char *keys[] = { "newest" };
			const char *vals[] = { newest_s };

			r = store_page(idx, &p, keys, vals, 1);
		}
		page_rows_clear(&p);
		if (r < 0 || !next)
			break;
		if (idx_loop_seen(&lc, next) || pages >= ALT_MAX_PAGES) {
			log_warn("index of \"%s/%s\": a refresh stopped: the next links go round",
				 idx->org, idx->app);
			r = -EIO;
			break;
		}
		from = next;
		next = NULL;
	}
	free(next);
	free(from);
	idx_loop_reset(&lc);
	pthread_mutex_lock(&idx->lock);
	idx->refreshes++;
	idx->refresh_pages += pages;
	if (newest > idx->newest_ns)
		idx->newest_ns = newest;
	pthread_mutex_unlock(&idx->lock);
	return r;
}

int idx_rebuild(struct index *idx)
{
	struct catalog *cat = NULL;
	int r;

	pthread_rwlock_wrlock(&idx->cat_lock);
	catalog_close(idx->cat);
	idx->cat = NULL;
	catalog_remove(idx->path);
	r = catalog_open(idx->who, idx->path, &cat);
	idx->cat = cat;
	pthread_rwlock_unlock(&idx->cat_lock);
	idx_lru_drop(idx->lru, NULL);
	if (r < 0)
		return r;
	log_warn("index of \"%s/%s\": the file was damaged; made anew, the walk starts again",
		 idx->org, idx->app);
	pthread_mutex_lock(&idx->lock);
	idx->damaged = false;
	idx->state = IDX_WALKING;
	idx->pages = 0;
	idx->newest_ns = 0;
	idx->completed_ns = 0;
	idx->refreshed_mono_ms = 0;
	idx_loop_reset(&idx->walk_loop);
	{
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		idx->started_ns = idx_ns(&now);
	}
	pthread_cond_broadcast(&idx->changed);
	pthread_mutex_unlock(&idx->lock);
	return 0;
}
