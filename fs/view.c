/* view.c - cached directory views of each app (see view.h).
 *
 * Each app's instances come from its index (daemon/index/, docs/index.md)
 * once the index can answer: parties, a party's instances and one
 * instance are read from it with no request. While its first walk runs,
 * instances/ shows what is indexed so far, and a party or instance not
 * indexed yet is asked for directly, through the caches below. Without
 * an index (its file could not be opened) the whole-app listing of
 * earlier versions is used.
 *
 * Freshness is judged on the monotonic clock against cache_ttl. Requests
 * are made without holding an app's lock, so a slow platform never
 * blocks readers of what is already cached; only callers wanting the
 * same whole listing wait, for the one fetch already under way. */
#include "view.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "index.h"
#include "log.h"
#include "xalloc.h"

#define PARTY_CACHE 64
#define INSTANCE_CACHE 256

struct party_entry {
	char *party;
	struct alt_instance **list;
	size_t n;
	struct timespec at;
};

struct instance_entry {
	struct alt_instance *inst;
	struct timespec at;
};

struct view_app {
	struct view *v;
	char *org;
	char *app;
	struct index *idx; /* NULL: the whole-app listing below */
	pthread_mutex_t lock;
	pthread_cond_t done;
	/* everything below is protected by lock */
	struct alt_app *meta;
	struct timespec meta_at;
	struct alt_instance **all; /* sorted by party, then guid */
	size_t n_all;
	struct timespec listed_at;      /* monotonic; zero = never */
	struct timespec listed_wall;    /* for status.json */
	bool listing;                   /* a whole listing is being fetched */
	uint64_t listing_gen;           /* bumped when a fetch ends */
	int listing_err;                /* result of the last fetch */
	struct party_entry parties[PARTY_CACHE];
	size_t party_next;
	struct instance_entry instances[INSTANCE_CACHE];
	size_t instance_next;
	struct alt_instance **inbox; /* by completion time */
	size_t n_inbox;
	struct timespec inbox_at;
};

struct view {
	struct altinn *a;
	int ttl;
	int max_listed;
	struct view_app *apps;
	size_t n_apps;
};

static struct timespec now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static bool fresh(const struct view_app *va, struct timespec at)
{
	struct timespec now = now_mono();

	if (at.tv_sec == 0 && at.tv_nsec == 0)
		return false;
	return (now.tv_sec - at.tv_sec) * 1000000000ll + (now.tv_nsec - at.tv_nsec) <
	       (long long)va->v->ttl * 1000000000ll;
}

struct view *view_new(struct altinn *a, const struct config *cfg)
{
	struct view *v = xcalloc(1, sizeof(*v));

	v->a = a;
	v->ttl = cfg->cache_ttl;
	v->max_listed = cfg->max_listed;
	v->n_apps = cfg->n_apps;
	v->apps = xcalloc(cfg->n_apps, sizeof(*v->apps));
	for (size_t i = 0; i < cfg->n_apps; i++) {
		struct view_app *va = &v->apps[i];

		va->v = v;
		va->org = xstrdup(cfg->apps[i].org);
		va->app = xstrdup(cfg->apps[i].app);
		pthread_mutex_init(&va->lock, NULL);
		pthread_cond_init(&va->done, NULL);
		if (cfg->state_dir && index_open(a, cfg, va->org, va->app, &va->idx) < 0)
			log_warn("\"%s/%s\" is listed without an index (see above)", va->org,
				 va->app);
	}
	return v;
}

void view_instances_free(struct alt_instance **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		alt_instance_unref(list[i]);
	free(list);
}

static void drop_caches(struct view_app *va)
{
	view_instances_free(va->inbox, va->n_inbox);
	va->inbox = NULL;
	va->n_inbox = 0;
	view_instances_free(va->all, va->n_all);
	va->all = NULL;
	va->n_all = 0;
	va->listed_at = (struct timespec){ 0, 0 };
	for (size_t i = 0; i < PARTY_CACHE; i++) {
		free(va->parties[i].party);
		view_instances_free(va->parties[i].list, va->parties[i].n);
		memset(&va->parties[i], 0, sizeof(va->parties[i]));
	}
	for (size_t i = 0; i < INSTANCE_CACHE; i++) {
		alt_instance_unref(va->instances[i].inst);
		memset(&va->instances[i], 0, sizeof(va->instances[i]));
	}
}

void view_app_start(struct view_app *va)
{
	if (va->idx)
		index_start(va->idx);
}

void view_free(struct view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_apps; i++) {
		struct view_app *va = &v->apps[i];

		index_free(va->idx);
		drop_caches(va);
		alt_app_free(va->meta);
		free(va->org);
		free(va->app);
		pthread_mutex_destroy(&va->lock);
		pthread_cond_destroy(&va->done);
	}
	free(v->apps);
	free(v);
}

size_t view_n_apps(struct view *v)
{
	return v->n_apps;
}

struct view_app *view_app_at(struct view *v, size_t i)
{
	return i < v->n_apps ? &v->apps[i] : NULL;
}

size_t view_app_index(struct view *v, struct view_app *va)
{
	return (size_t)(va - v->apps);
}

const char *view_app_org(struct view_app *va)
{
	return va->org;
}

const char *view_app_name(struct view_app *va)
{
	return va->app;
}

int view_app_doc(struct view_app *va, char **ret_doc, size_t *ret_len,
		 struct timespec *ret_mtime, struct timespec *ret_ctime)
{
	struct alt_app *meta = NULL;
	int r;

	pthread_mutex_lock(&va->lock);
	if (!va->meta || !fresh(va, va->meta_at)) {
		pthread_mutex_unlock(&va->lock);
		r = altinn_get_app(va->v->a, va->org, va->app, &meta);
		if (r < 0)
			return r;
		if (va->idx)
			index_set_floor(va->idx, &meta->created);
		pthread_mutex_lock(&va->lock);
		alt_app_free(va->meta);
		va->meta = meta;
		va->meta_at = now_mono();
	}
	*ret_doc = xmalloc(va->meta->doc_len + 1);
	memcpy(*ret_doc, va->meta->doc, va->meta->doc_len + 1);
	*ret_len = va->meta->doc_len;
	*ret_mtime = va->meta->last_changed;
	*ret_ctime = va->meta->created;
	pthread_mutex_unlock(&va->lock);
	return 0;
}

/* Party ids are digit strings: shorter is smaller, then by bytes. */
static int cmp_party(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

static int cmp_instances(const void *x, const void *y)
{
	const struct alt_instance *a = *(struct alt_instance *const *)x;
	const struct alt_instance *b = *(struct alt_instance *const *)y;
	int c = cmp_party(a->party_id, b->party_id);

	return c ? c : strcmp(a->guid, b->guid);
}

struct collect {
	struct alt_instance **list;
	size_t n;
	size_t cap;
};

static int collect_cb(struct alt_instance *inst, void *ctx)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->list = xrealloc(c->list, c->cap * sizeof(*c->list));
	}
	c->list[c->n++] = inst;
	return 0;
}

/* Sorted and without duplicates: a page boundary that moved while we
 * paged (an instance changed) may deliver one instance twice. */
static void sort_unique(struct collect *c)
{
	size_t o = 0;

	if (c->n > 1) /* an empty listing may have no array: qsort's is nonnull */
		qsort(c->list, c->n, sizeof(*c->list), cmp_instances);
	for (size_t i = 0; i < c->n; i++) {
		if (o > 0 && cmp_instances(&c->list[o - 1], &c->list[i]) == 0) {
			/* keep the newer document */
			struct alt_instance *keep = c->list[o - 1], *other = c->list[i];

			if (other->last_changed.tv_sec > keep->last_changed.tv_sec ||
			    (other->last_changed.tv_sec == keep->last_changed.tv_sec &&
			     other->last_changed.tv_nsec > keep->last_changed.tv_nsec)) {
				c->list[o - 1] = other;
				other = keep;
			}
			alt_instance_unref(other);
			continue;
		}
		c->list[o++] = c->list[i];
	}
	c->n = o;
}

/* A party's query answered with other parties' instances would list
 * folders that are not there when entered: keep only the party's own. */
static void only_party(struct collect *c, const char *party)
{
	size_t o = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->list[i]->party_id, party) == 0)
			c->list[o++] = c->list[i];
		else
			alt_instance_unref(c->list[i]);
	}
	if (o < c->n)
		log_warn("a query for party %s answered with %zu instance(s) of others: dropped",
			 party, c->n - o);
	c->n = o;
}

static int fetch(struct view_app *va, const char *party, struct collect *ret)
{
	struct alt_query q = {
		.org = va->org, .app = va->app, .party_id = party, .is_complete = -1,
	};
	struct collect c = { 0 };
	int r = altinn_list_instances(va->v->a, &q, collect_cb, &c);

	if (r < 0) {
		view_instances_free(c.list, c.n);
		return r;
	}
	if (party)
		only_party(&c, party);
	sort_unique(&c);
	*ret = c;
	return 0;
}

/* With va->lock held: makes va->all usable, fetching it once for all
 * waiting callers. Returns 0 or the fetch's error. */
static int ensure_listing(struct view_app *va)
{
	struct collect c;
	uint64_t gen;
	int r;

	if (fresh(va, va->listed_at))
		return 0;
	if (va->listing) {
		gen = va->listing_gen;
		while (va->listing && gen == va->listing_gen)
			pthread_cond_wait(&va->done, &va->lock);
		return va->listing_err;
	}
	va->listing = true;
	pthread_mutex_unlock(&va->lock);
	r = fetch(va, NULL, &c);
	pthread_mutex_lock(&va->lock);
	va->listing = false;
	va->listing_gen++;
	va->listing_err = r;
	if (r == 0) {
		view_instances_free(va->all, va->n_all);
		va->all = c.list;
		va->n_all = c.n;
		va->listed_at = now_mono();
		clock_gettime(CLOCK_REALTIME, &va->listed_wall);
	}
	pthread_cond_broadcast(&va->done);
	return r;
}

/* [*ret_lo, *ret_hi) of party's instances in a sorted list */
static void party_range(struct alt_instance **list, size_t n, const char *party,
			size_t *ret_lo, size_t *ret_hi)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_party(list[mid]->party_id, party) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_lo = lo;
	while (lo < n && cmp_party(list[lo]->party_id, party) == 0)
		lo++;
	*ret_hi = lo;
}

static void fill_party(struct view_party *p, const char *party, struct alt_instance **list, size_t n)
{
	p->party_id = xstrdup(party);
	p->n_instances = n;
	p->mtime = p->ctime = (struct timespec){ 0, 0 };
	for (size_t i = 0; i < n; i++) {
		struct timespec m = list[i]->last_changed, c = list[i]->created;

		if (m.tv_sec > p->mtime.tv_sec ||
		    (m.tv_sec == p->mtime.tv_sec && m.tv_nsec > p->mtime.tv_nsec))
			p->mtime = m;
		if (i == 0 || c.tv_sec < p->ctime.tv_sec ||
		    (c.tv_sec == p->ctime.tv_sec && c.tv_nsec < p->ctime.tv_nsec))
			p->ctime = c;
	}
}

/* The index's parties as the view's (p is consumed). */
static struct view_party *from_index(struct index_party *p, size_t n)
{
	struct view_party *out = xcalloc(n ? n : 1, sizeof(*out));

	for (size_t i = 0; i < n; i++) {
		out[i].party_id = p[i].party_id;
		p[i].party_id = NULL;
		out[i].n_instances = (size_t)p[i].n;
		out[i].mtime = p[i].mtime;
		out[i].ctime = p[i].ctime;
	}
	index_parties_free(p, n);
	return out;
}

/* The parties from the index: what is indexed so far while the walk runs. */
static int indexed_parties(struct view_app *va, struct view_party **ret, size_t *ret_n)
{
	struct index_party *p;
	bool complete;
	size_t n;
	int r = -EAGAIN;

	/* a damaged file (-EAGAIN) is made anew: look again, as in a walk */
	for (int tries = 0; r == -EAGAIN && tries < 2; tries++) {
		r = index_ready(va->idx, true, &complete);
		if (r == 0)
			r = index_parties(va->idx, &p, &n);
	}
	if (r < 0)
		return r == -EAGAIN ? -EIO : r;
	*ret = from_index(p, n);
	*ret_n = n;
	return 0;
}

int view_parties_open(struct view_app *va)
{
	bool complete;
	int r;

	if (!va->idx)
		return -ENOTSUP;
	r = index_ready(va->idx, true, &complete);
	return r == -EAGAIN ? -EIO : r;
}

int view_parties_page(struct view_app *va, const char *after, uint64_t skip, size_t max,
		      struct view_party **ret, size_t *ret_n)
{
	struct index_party *p;
	size_t n;
	int r;

	if (!va->idx)
		return -ENOTSUP;
	r = index_parties_page(va->idx, after, skip, max, &p, &n);
	if (r < 0)
		return r == -EAGAIN ? -EIO : r;
	*ret = from_index(p, n);
	*ret_n = n;
	return 0;
}

int view_parties(struct view_app *va, struct view_party **ret, size_t *ret_n)
{
	struct view_party *out = NULL;
	size_t n = 0;
	int r;

	if (va->idx)
		return indexed_parties(va, ret, ret_n);
	pthread_mutex_lock(&va->lock);
	r = ensure_listing(va);
	if (r < 0)
		goto out_unlock;
	out = xcalloc(va->n_all ? va->n_all : 1, sizeof(*out));
	for (size_t i = 0; i < va->n_all;) {
		size_t lo, hi;

		party_range(va->all, va->n_all, va->all[i]->party_id, &lo, &hi);
		fill_party(&out[n++], va->all[i]->party_id, va->all + lo, hi - lo);
		i = hi;
	}
	*ret = out;
	*ret_n = n;
out_unlock:
	pthread_mutex_unlock(&va->lock);
	return r;
}

void view_parties_free(struct view_party *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].party_id);
	free(p);
}

/* With va->lock held: a fresh party cache entry, or NULL. */
static struct party_entry *party_cached(struct view_app *va, const char *party)
{
	for (size_t i = 0; i < PARTY_CACHE; i++)
		if (va->parties[i].party && strcmp(va->parties[i].party, party) == 0 &&
		    fresh(va, va->parties[i].at))
			return &va->parties[i];
	return NULL;
}

/* The party's instances from a complete index: 1 when answered (0 or
 * -errno in *ret_r), 0 when the party must be asked for. */
static int party_from_index(struct view_app *va, const char *party, struct alt_instance ***ret,
			    size_t *ret_n, int *ret_r)
{
	bool complete;

	if (index_ready(va->idx, false, &complete) < 0 || !complete)
		return 0;
	*ret_r = index_party_instances(va->idx, party, (size_t)va->v->max_listed, ret, ret_n);
	if (*ret_r == -EAGAIN) /* the file is made anew: ask */
		return 0;
	if (*ret_r == 0 && *ret_n == 0 && !index_authoritative(va->idx)) {
		/* index_since leaves older instances out: ask */
		free(*ret);
		return 0;
	}
	return 1;
}

/* The party's instances as new references, from the freshest source. */
static int party_list(struct view_app *va, const char *party, struct alt_instance ***ret,
		      size_t *ret_n)
{
	struct alt_instance **src = NULL, **out;
	struct party_entry *pe;
	struct collect c;
	size_t n = 0;
	int r;

	if (va->idx && party_from_index(va, party, ret, ret_n, &r))
		return r;
	pthread_mutex_lock(&va->lock);
	if (!va->idx && fresh(va, va->listed_at)) {
		size_t lo, hi;

		party_range(va->all, va->n_all, party, &lo, &hi);
		src = va->all + lo;
		n = hi - lo;
	} else if ((pe = party_cached(va, party))) {
		src = pe->list;
		n = pe->n;
	} else {
		pthread_mutex_unlock(&va->lock);
		r = fetch(va, party, &c);
		if (r < 0)
			return r;
		pthread_mutex_lock(&va->lock);
		pe = &va->parties[va->party_next++ % PARTY_CACHE];
		free(pe->party);
		view_instances_free(pe->list, pe->n);
		pe->party = xstrdup(party);
		pe->list = c.list;
		pe->n = c.n;
		pe->at = now_mono();
		src = pe->list;
		n = pe->n;
	}
	out = xmalloc((n ? n : 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = alt_instance_ref(src[i]);
	pthread_mutex_unlock(&va->lock);
	*ret = out;
	*ret_n = n;
	return 0;
}

int view_party(struct view_app *va, const char *party, struct view_party *ret)
{
	struct alt_instance **list;
	struct index_party ip;
	bool complete;
	size_t n;
	int r;

	/* a party folder's facts from a complete index, no document parsed */
	if (va->idx && index_ready(va->idx, false, &complete) == 0 && complete) {
		r = index_party(va->idx, party, &ip);
		if (r == 0) {
			ret->party_id = ip.party_id;
			ret->n_instances = (size_t)ip.n;
			ret->mtime = ip.mtime;
			ret->ctime = ip.ctime;
			return 0;
		}
		if (r != -EAGAIN && (r != -ENOENT || index_authoritative(va->idx)))
			return r;
	}
	r = party_list(va, party, &list, &n);

	if (r < 0)
		return r;
	if (n == 0) {
		free(list);
		return -ENOENT;
	}
	fill_party(ret, party, list, n);
	view_instances_free(list, n);
	return 0;
}

int view_party_instances(struct view_app *va, const char *party, struct alt_instance ***ret,
			 size_t *ret_n)
{
	return party_list(va, party, ret, ret_n);
}

static struct alt_instance *find_in(struct alt_instance **list, size_t n, const char *party,
				    const char *guid)
{
	size_t lo, hi;

	party_range(list, n, party, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		if (strcmp(list[i]->guid, guid) == 0)
			return list[i];
	return NULL;
}

int view_instance(struct view_app *va, const char *party, const char *guid,
		  struct alt_instance **ret)
{
	struct alt_instance *inst = NULL;
	struct party_entry *pe;
	struct instance_entry *ie;
	bool complete;
	int r;

	if (va->idx) {
		index_ready(va->idx, false, &complete);
		r = index_instance(va->idx, party, guid, &inst);
		if (r == 0) {
			*ret = inst;
			return 0;
		}
		if (r != -EAGAIN && (r != -ENOENT || index_authoritative(va->idx)))
			return r;
	}
	pthread_mutex_lock(&va->lock);
	if (!va->idx && fresh(va, va->listed_at)) {
		inst = find_in(va->all, va->n_all, party, guid);
		pthread_mutex_unlock(&va->lock);
		if (!inst)
			return -ENOENT;
		*ret = alt_instance_ref(inst);
		return 0;
	}
	if ((pe = party_cached(va, party))) {
		inst = find_in(pe->list, pe->n, party, guid);
		pthread_mutex_unlock(&va->lock);
		if (!inst)
			return -ENOENT;
		*ret = alt_instance_ref(inst);
		return 0;
	}
	for (size_t i = 0; i < INSTANCE_CACHE; i++) {
		ie = &va->instances[i];
		if (ie->inst && strcmp(ie->inst->guid, guid) == 0 &&
		    strcmp(ie->inst->party_id, party) == 0 && fresh(va, ie->at)) {
			*ret = alt_instance_ref(ie->inst);
			pthread_mutex_unlock(&va->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&va->lock);
	r = altinn_get_instance(va->v->a, party, guid, &inst);
	if (r < 0)
		return r;
	/* another app's instance must not appear under this one */
	if (strcmp(inst->party_id, party) != 0 || strcmp(inst->guid, guid) != 0) {
		alt_instance_unref(inst);
		return -ENOENT;
	}
	pthread_mutex_lock(&va->lock);
	ie = &va->instances[va->instance_next++ % INSTANCE_CACHE];
	alt_instance_unref(ie->inst);
	ie->inst = alt_instance_ref(inst);
	ie->at = now_mono();
	pthread_mutex_unlock(&va->lock);
	*ret = inst;
	return 0;
}

static int cmp_ended(const void *x, const void *y)
{
	const struct alt_instance *a = *(struct alt_instance *const *)x;
	const struct alt_instance *b = *(struct alt_instance *const *)y;

	if (a->ended.tv_sec != b->ended.tv_sec)
		return a->ended.tv_sec < b->ended.tv_sec ? -1 : 1;
	if (a->ended.tv_nsec != b->ended.tv_nsec)
		return a->ended.tv_nsec < b->ended.tv_nsec ? -1 : 1;
	return cmp_instances(x, y);
}

int view_inbox(struct view_app *va, struct alt_instance ***ret, size_t *ret_n)
{
	struct alt_query q = {
		.org = va->org, .app = va->app, .is_complete = 1, .exclude_confirmed_by = va->org,
		.ascending = true,
	};
	struct alt_instance **out;
	struct collect c = { 0 };
	size_t n;
	int r;

	pthread_mutex_lock(&va->lock);
	if (!fresh(va, va->inbox_at)) {
		pthread_mutex_unlock(&va->lock);
		r = altinn_list_instances(va->v->a, &q, collect_cb, &c);
		if (r < 0) {
			view_instances_free(c.list, c.n);
			return r;
		}
		sort_unique(&c);
		if (c.n > 1)
			qsort(c.list, c.n, sizeof(*c.list), cmp_ended);
		pthread_mutex_lock(&va->lock);
		view_instances_free(va->inbox, va->n_inbox);
		va->inbox = c.list;
		va->n_inbox = c.n;
		va->inbox_at = now_mono();
	}
	n = va->n_inbox;
	out = xmalloc((n ? n : 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = alt_instance_ref(va->inbox[i]);
	pthread_mutex_unlock(&va->lock);
	*ret = out;
	*ret_n = n;
	return 0;
}

void view_app_status(struct view_app *va, struct alt_status_app *ret)
{
	pthread_mutex_lock(&va->lock);
	ret->metadata_loaded = va->meta != NULL;
	ret->instances_listed = va->n_all;
	ret->listed_at = va->listed_wall;
	pthread_mutex_unlock(&va->lock);
	if (va->idx) {
		index_status(va->idx, &ret->index);
		ret->instances_listed = ret->index.instances;
		ret->listed_at = ret->index.refreshed_at.tv_sec ? ret->index.refreshed_at
								  : ret->index.completed_at;
	}
}

void view_app_invalidate(struct view_app *va)
{
	view_invalidate(va, NULL, NULL);
}

void view_invalidate(struct view_app *va, const char *party, const char *guid)
{
	if (va->idx)
		index_invalidate(va->idx, party, guid);
	pthread_mutex_lock(&va->lock);
	va->listed_at = (struct timespec){ 0, 0 };
	va->inbox_at = (struct timespec){ 0, 0 };
	for (size_t i = 0; i < PARTY_CACHE; i++)
		va->parties[i].at = (struct timespec){ 0, 0 };
	for (size_t i = 0; i < INSTANCE_CACHE; i++)
		va->instances[i].at = (struct timespec){ 0, 0 };
	pthread_mutex_unlock(&va->lock);
}
