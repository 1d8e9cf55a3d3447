/* layout.c - data type folders and file names of one instance.
 *
 * Derived from the instance document, so it keeps no second copy of
 * platform state that could disagree with the first; the same document
 * always gives the same names, whatever order the platform lists the
 * elements in. Building it is O(n log n) in the elements, and the
 * layouts of recent instances are kept (layout_cache), since a platform
 * may send an instance with 10,000 elements and every lookup and stat of
 * one of its files needs the names of all. */
#include "layout.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "names.h"
#include "xalloc.h"

static bool ts_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static int cmp_type(const void *a, const void *b)
{
	return strcmp(((const struct layout_type *)a)->name, ((const struct layout_type *)b)->name);
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct layout_file *)a)->name, ((const struct layout_file *)b)->name);
}

static char *type_folder(const char *data_type)
{
	char *name = names_sanitize(data_type, 255);

	if (!*name) {
		free(name);
		name = xstrdup("_");
	}
	return name;
}

/* Names the elements of one folder and drops exact duplicates (only a
 * platform repeating a data guid can cause them). */
static void name_files(const struct alt_instance *inst, struct layout_type *t, size_t *idx, size_t n)
{
	struct names_entry *e = xcalloc(n, sizeof(*e));
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		const struct alt_data_element *el = &inst->data[idx[i]];

		e[i].data_guid = el->id;
		e[i].filename = el->filename;
		e[i].content_type = el->content_type;
	}
	names_assign(e, n);
	t->files = xcalloc(n, sizeof(*t->files));
	for (size_t i = 0; i < n; i++) {
		t->files[o].name = e[i].name;
		t->files[o].el = &inst->data[idx[i]];
		o++;
	}
	qsort(t->files, o, sizeof(*t->files), cmp_file);
	t->n_files = 0;
	for (size_t i = 0; i < o; i++) {
		if (t->n_files && strcmp(t->files[t->n_files - 1].name, t->files[i].name) == 0) {
			log_warn("instance \"%s\": data element \"%s\" repeats a name, not shown",
				 inst->id, t->files[i].el->id);
			free(t->files[i].name);
			continue;
		}
		t->files[t->n_files++] = t->files[i];
	}
	free(e);
}

struct by_folder {
	char *folder;
	size_t idx;
};

static int cmp_folder(const void *a, const void *b)
{
	const struct by_folder *x = a, *y = b;
	int c = strcmp(x->folder, y->folder);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

void layout_build(const struct alt_instance *inst, struct layout *ret)
{
	size_t n = inst->n_data;
	struct by_folder *order = xcalloc(n ? n : 1, sizeof(*order));
	size_t *idx = xcalloc(n ? n : 1, sizeof(*idx));
	struct layout l = { 0 };

	for (size_t i = 0; i < n; i++)
		order[i] = (struct by_folder){ type_folder(inst->data[i].data_type), i };
	if (n > 1)
		qsort(order, n, sizeof(*order), cmp_folder);
	l.types = xcalloc(n ? n : 1, sizeof(*l.types));
	for (size_t i = 0; i < n;) {
		struct layout_type *t = &l.types[l.n_types++];
		size_t k = 0, j = i;

		t->name = xstrdup(order[i].folder);
		for (; j < n && strcmp(order[j].folder, order[i].folder) == 0; j++) {
			const struct alt_data_element *el = &inst->data[order[j].idx];

			idx[k++] = order[j].idx;
			if (ts_after(el->last_changed, t->mtime))
				t->mtime = el->last_changed;
			if (k == 1 || ts_after(t->ctime, el->created))
				t->ctime = el->created;
		}
		name_files(inst, t, idx, k);
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		free(order[i].folder);
	free(order);
	free(idx);
	*ret = l; /* types are in name order: the groups came sorted */
}

void layout_free(struct layout *l)
{
	for (size_t i = 0; i < l->n_types; i++) {
		for (size_t j = 0; j < l->types[i].n_files; j++)
			free(l->types[i].files[j].name);
		free(l->types[i].files);
		free(l->types[i].name);
	}
	free(l->types);
	l->types = NULL;
	l->n_types = 0;
}

const struct layout_type *layout_find_type(const struct layout *l, const char *name)
{
	struct layout_type key = { .name = (char *)name };

	if (!l->n_types)
		return NULL; /* no element yet: types is NULL, which bsearch may not get */
	return bsearch(&key, l->types, l->n_types, sizeof(*l->types), cmp_type);
}

const struct layout_file *layout_find_file(const struct layout_type *t, const char *name)
{
	struct layout_file key = { .name = (char *)name };

	if (!t->n_files)
		return NULL;
	return bsearch(&key, t->files, t->n_files, sizeof(*t->files), cmp_file);
}

/* ---- the cache */

#define LAYOUT_CACHE_SLOTS 64

struct cached {
	struct layout l;            /* first: a layout is its entry */
	struct alt_instance *inst;  /* one reference */
	unsigned refs;              /* the slot's one, plus each get */
	uint64_t used;
};

struct layout_cache {
	pthread_mutex_t lock;
	struct cached *slots[LAYOUT_CACHE_SLOTS]; /* protected by lock */
	uint64_t clock;                           /* protected by lock */
};

struct layout_cache *layout_cache_new(void)
{
	struct layout_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void cached_unref(struct cached *e)
{
	if (e && --e->refs == 0) {
		layout_free(&e->l);
		alt_instance_unref(e->inst);
		free(e);
	}
}

void layout_cache_free(struct layout_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < LAYOUT_CACHE_SLOTS; i++)
		cached_unref(c->slots[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const struct layout *layout_cache_get(struct layout_cache *c, struct alt_instance *inst)
{
	struct cached *e = NULL, *made;
	size_t victim = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < LAYOUT_CACHE_SLOTS && !e; i++) {
		if (c->slots[i] && c->slots[i]->inst == inst)
			e = c->slots[i];
		else if (!c->slots[i] || (c->slots[victim] && c->slots[i]->used < c->slots[victim]->used))
			victim = i;
	}
	if (e) {
		e->refs++;
		e->used = ++c->clock;
		pthread_mutex_unlock(&c->lock);
		return &e->l;
	}
	pthread_mutex_unlock(&c->lock);
	/* built unlocked: two threads may both build it, one is kept */
	made = xcalloc(1, sizeof(*made));
	layout_build(inst, &made->l);
	made->inst = alt_instance_ref(inst);
	made->refs = 2;
	pthread_mutex_lock(&c->lock);
	made->used = ++c->clock;
	cached_unref(c->slots[victim]);
	c->slots[victim] = made;
	pthread_mutex_unlock(&c->lock);
	return &made->l;
}

void layout_cache_put(struct layout_cache *c, const struct layout *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&c->lock);
	cached_unref((struct cached *)(uintptr_t)l);
	pthread_mutex_unlock(&c->lock);
}
