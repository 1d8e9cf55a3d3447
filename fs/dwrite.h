/* dwrite.h - writes into instances' data folders, private to fs/.
 *
 * instances/<party>/<guid>/data/<type>/<name> may be created,
 * overwritten (opened with O_TRUNC) and removed; the bytes go to a
 * staging file the daemon's instance-writes module hands out, and the
 * module sends them (docs/instance-writes.md). A pending write shows in
 * its folder with the staged size; a pending delete hides its element.
 * Every function returns 0 or -errno. */
#ifndef ALTINNFS_DWRITE_H
#define ALTINNFS_DWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct fs;
struct node;
struct entry;

/* What an open staging file needs at write, flush and release. */
struct dw_open {
	int fd;
	int64_t id;   /* the module's item */
	uint64_t max; /* bytes a write may reach; 0: no limit */
};

int dw_create(struct fs *fs, struct node *dir, const char *name, struct dw_open *ret,
	      struct stat *ret_st);
/* n a NODE_DATA_FILE opened for writing: only with O_TRUNC */
int dw_open_write(struct fs *fs, struct node *n, int flags, struct dw_open *ret);
/* n a pending write: its staged bytes read-only (1), or 0 when n is
 * on the platform (*ret_guid: the element to read, malloc'd). */
int dw_open_read(struct fs *fs, struct node *n, int *ret_fd, char **ret_guid);
/* The write is complete (at close(2)): error, its errno, drops it; open
 * says the kernel still holds the file, so it waits for dw_release. */
void dw_commit(struct fs *fs, const struct dw_open *o, int error, bool open);
/* A write after dw_commit (a dup, a child): writing again, or -EBUSY. */
int dw_reopen(struct fs *fs, const struct dw_open *o);
/* The file is closed for good (after a dw_commit with open). */
void dw_release(struct fs *fs, const struct dw_open *o);
int dw_remove(struct fs *fs, struct node *dir, const char *name);
int dw_xattr(struct fs *fs, struct node *n, const char *name, char **ret);

#endif
