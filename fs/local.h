/* local.h - areas of the tree kept on local disk under state_dir.
 *
 * The folders the families name in each app (events/, outbox/, sent/,
 * failed/) are real files in state_dir/apps/<org>/<app>/<area>/ (a
 * rooted family's in state_dir/<root>/<scope>/<area>/), served through
 * the mount so that
 * inotify watchers see what happens in them. What may be created, and
 * what happens when a file is closed, renamed or removed, is decided by
 * the hooks of the family that owns the area (family.h). Private to fs/. */
#ifndef ALTINNFS_LOCAL_H
#define ALTINNFS_LOCAL_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "entry.h"
#include "family.h"

struct fs;
struct node;

/* The folder name of an area (a node's key.area: 1 + its index in
 * fs->areas), or NULL. */
const char *local_area_name(struct fs *fs, int area);

/* Registers area (the index'th of family family) for every app, or, for
 * a rooted family, for each of its scopes; before fs_start. */
void local_add_area(struct fs *fs, size_t family, int index, const struct fs_area *area,
		    bool rooted);
/* Is area (1 + an index in fs->areas) one of family's (an index in
 * fs->families)? And one kept in apps (not rooted)? */
bool local_area_of_family(struct fs *fs, int area, size_t family);
bool local_area_in_apps(struct fs *fs, int area);
/* Creates and opens the areas' folders; 0 or -errno (logged). */
int local_open_dirs(struct fs *fs);
void local_close_dirs(struct fs *fs);

/* n is NODE_AREA or NODE_LOCAL */
bool local_is_local(const struct node *n);
/* Attributes of name in local folder dir (name NULL: dir itself). */
int local_stat(struct fs *fs, struct node *dir, const char *name, struct stat *ret);
int local_list(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n);

/* The changes. Each checks with the area's hook first and reports to it
 * after; self says the caller is one of our own threads. */
int local_create(struct fs *fs, struct node *dir, const char *name, mode_t mode, int flags,
		 bool self, int *ret_fd, struct stat *ret_st);
/* ret_reader (may be NULL): a user's open for reading of a file its
 * family serves as its bytes arrive gets a reader of them here, to read
 * through instead of *ret_fd (which is opened all the same, for its
 * attributes); else it is set to NULL. */
int local_open(struct fs *fs, struct node *n, int flags, bool self, int *ret_fd,
	       struct alt_reader **ret_reader);
int local_mkdir(struct fs *fs, struct node *dir, const char *name, mode_t mode, bool self,
		struct stat *ret_st);
int local_remove(struct fs *fs, struct node *dir, const char *name, bool is_dir, bool self);
int local_rename(struct fs *fs, struct node *dir, const char *name, struct node *newdir,
		 const char *newname, unsigned int flags, bool self);
int local_setattr(struct fs *fs, struct node *n, int fd, const struct stat *attr, int to_set,
		  bool self, struct stat *ret_st);
/* A file written to is closed: make it durable, then tell the hook,
 * with the errno a write or flush failed with (0: none); open says the
 * kernel still holds the file (a close(2) of one of its descriptors). */
int local_flush(struct fs *fs, struct node *n, int fd);
void local_closed(struct fs *fs, struct node *n, bool self, int error, bool open);
/* A write through a file told closed (open) before: checked again. */
int local_reopen(struct fs *fs, struct node *n, bool self);
/* The last close of a file told closed with open. */
void local_released(struct fs *fs, struct node *n, bool self);
int local_xattr(struct fs *fs, struct node *n, const char *name, char **ret);

#endif
