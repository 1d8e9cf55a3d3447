/* tree.h - what is at each place of the tree (private to fs/).
 *
 * Resolves a name in a folder to its kind, keys and attributes, and lists
 * a folder, from the cached views. The FUSE glue in ops.c turns these
 * answers into replies; nothing here knows about requests. */
#ifndef ALTINNFS_TREE_H
#define ALTINNFS_TREE_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "entry.h"
#include "fs_i.h"
#include "node.h"

/* The entry called name in folder dir; -ENOENT, -ENOTDIR or a platform
 * error otherwise. */
int tree_lookup(struct fs *fs, struct node *dir, const char *name, struct entry *ret);
/* Every entry of folder dir, in a stable order. */
int tree_list(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n);
/* A folder too large to list at once (instances/ of an indexed app,
 * millions of parties) is read a page at a time: tree_stream_open() says
 * whether dir is one (1; 0: list it whole with tree_list) and readies it,
 * tree_stream_page() puts up to max entries into into (cleared ones), in
 * tree_list's order: those after the entry named after, or when after is
 * NULL from position skip.
 * Entries added or removed while it is read may or may not be listed;
 * the others are listed once each. */
int tree_stream_open(struct fs *fs, struct node *dir);
int tree_stream_page(struct fs *fs, struct node *dir, const char *after, uint64_t skip,
		     size_t max, struct entry *into, size_t *ret_n);
/* Attributes of n itself (st_ino not set). */
int tree_getattr(struct fs *fs, struct node *n, struct stat *ret);

#endif
