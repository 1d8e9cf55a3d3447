/* pending.h - pending instance writes in the tree's answers (private to fs/).
 *
 * The overlay of what the instance-writes module journals but the
 * platform does not have yet, for the resolver (tree.c) and the write
 * operations (dwrite.c). Nothing here writes. */
#ifndef ALTINNFS_PENDING_H
#define ALTINNFS_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

struct alt_dw_key;
struct entry;
struct fs;
struct node;

bool dw_enabled(struct fs *fs);
/* A NODE_DATA_TYPE listing: pending deletes hidden, pending writes
 * shown (sizes from their staging files). */
void dw_merge(struct fs *fs, struct node *dir, struct entry **e, size_t *n);
/* A data type folder that holds no element yet but may be written. */
bool dw_type_known(struct fs *fs, struct node *data_dir, const char *name);
/* Entry e (in dir) when a write or delete of it is pending: -ESRCH for
 * a delete (the name is gone), 0 otherwise (e updated). */
int dw_lookup(struct fs *fs, struct node *dir, struct entry *e);
/* The attributes of a pending write of size bytes. */
void dw_pending_stat(struct fs *fs, struct stat *st, uint64_t size, struct timespec mtime);
/* The key of name in dir (a data type folder); name may be NULL. */
void dw_key_init(struct node *dir, const char *name, struct alt_dw_key *k);

#endif
