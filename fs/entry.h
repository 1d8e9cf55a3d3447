/* entry.h - one folder entry as the tree answers it (private to fs/).
 *
 * What tree_lookup and tree_list return, and what the pending writes
 * merge into a listing: a name, its kind, its keys (owned copies) and its
 * attributes. */
#ifndef ALTINNFS_ENTRY_H
#define ALTINNFS_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "node.h"

struct view_app;

/* One folder entry: name, kind, keys (owned copies) and attributes. */
struct entry {
	char *name;
	enum node_kind kind;
	struct view_app *app;
	char *org, *party, *guid, *data_type, *data_guid;
	int area;
	int family, scope; /* as in struct node_key */
	bool pending; /* NODE_DATA_FILE: a write not yet on the platform */
	struct stat st;
};

void entry_clear(struct entry *e);
void entries_free(struct entry *e, size_t n);
/* e's keys as a node_key (pointers into e) */
struct node_key entry_key(const struct entry *e);

#endif
