/* layout.c - data type folders and file names of one instance.
 *
 * Built on demand from the instance document: it is cheap (a handful of
 * elements) and deriving it keeps no second copy of platform state that
 * could disagree with the first. The same document always gives the same
 * names, whatever order the platform lists the elements in. */
#include "layout.h"

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

void layout_build(const struct alt_instance *inst, struct layout *ret)
{
	char **folder = xcalloc(inst->n_data ? inst->n_data : 1, sizeof(*folder));
	size_t *idx = xcalloc(inst->n_data ? inst->n_data : 1, sizeof(*idx));
	struct layout l = { 0 };

	for (size_t i = 0; i < inst->n_data; i++)
		folder[i] = type_folder(inst->data[i].data_type);
	for (size_t i = 0; i < inst->n_data; i++) {
		struct layout_type *t;
		size_t n = 0;
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(folder[i], folder[j]) == 0;
		if (seen)
			continue;
		l.types = xrealloc(l.types, (l.n_types + 1) * sizeof(*l.types));
		t = &l.types[l.n_types++];
		memset(t, 0, sizeof(*t));
		t->name = xstrdup(folder[i]);
		for (size_t j = i; j < inst->n_data; j++) {
			if (strcmp(folder[i], folder[j]) != 0)
				continue;
			idx[n++] = j;
			if (ts_after(inst->data[j].last_changed, t->mtime))
				t->mtime = inst->data[j].last_changed;
			if (n == 1 || ts_after(t->ctime, inst->data[j].created))
				t->ctime = inst->data[j].created;
		}
		name_files(inst, t, idx, n);
	}
	for (size_t i = 0; i < inst->n_data; i++)
		free(folder[i]);
	free(folder);
	free(idx);
	if (l.n_types)
		qsort(l.types, l.n_types, sizeof(*l.types), cmp_type);
	*ret = l;
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
