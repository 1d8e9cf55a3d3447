/* layout.h - the data/ folder of one instance: data type folders and the
 * file name of every data element in them, by the rules of names.h. */
#ifndef ALTINNFS_LAYOUT_H
#define ALTINNFS_LAYOUT_H

#include <stddef.h>
#include <time.h>

#include "altinn.h"

struct layout_file {
	char *name;
	const struct alt_data_element *el; /* points into the instance */
};

struct layout_type {
	char *name; /* the folder: the sanitized data type id */
	struct timespec mtime; /* newest lastChanged of its elements */
	struct timespec ctime; /* oldest created */
	struct layout_file *files;
	size_t n_files;
};

struct layout {
	struct layout_type *types; /* sorted by name */
	size_t n_types;
};

/* Builds the layout of inst, which must outlive it: O(n log n) in its
 * elements, whatever number of data types they have. */
void layout_build(const struct alt_instance *inst, struct layout *ret);
void layout_free(struct layout *l);

/* The layouts of the instances looked at lately, so that a lookup or a
 * stat of one of an instance's 10,000 files does not name all of them
 * again. Keyed by the instance object, which is immutable: a changed
 * instance is a new object, so an entry is never stale. Thread-safe. */
struct layout_cache;
struct layout_cache *layout_cache_new(void);
void layout_cache_free(struct layout_cache *c); /* NULL is fine */
/* inst's layout, held until layout_cache_put; the cache keeps inst. */
const struct layout *layout_cache_get(struct layout_cache *c, struct alt_instance *inst);
void layout_cache_put(struct layout_cache *c, const struct layout *l);
const struct layout_type *layout_find_type(const struct layout *l, const char *name);
const struct layout_file *layout_find_file(const struct layout_type *t, const char *name);

#endif
