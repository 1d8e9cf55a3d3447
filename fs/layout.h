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

/* Builds the layout of inst, which must outlive it. */
void layout_build(const struct alt_instance *inst, struct layout *ret);
void layout_free(struct layout *l);
const struct layout_type *layout_find_type(const struct layout *l, const char *name);
const struct layout_file *layout_find_file(const struct layout_type *t, const char *name);

#endif
