/* fs.h - the filesystem: FUSE low-level operations over the tree.
 *
 * fs_new() builds the state the operations share; fs_ops() is the table
 * handed to fuse_session_new() with that state as userdata. */
#ifndef ALTINNFS_FS_H
#define ALTINNFS_FS_H

#include <fuse_lowlevel.h>

#include "local.h"

struct altinn;
struct config;
struct fs;

struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint);
/* Shows area (events/, outbox/, ...) in every app, run by hooks; before
 * fs_start. */
void fs_set_area(struct fs *fs, enum local_area area, const struct local_hooks *hooks);
/* Opens the local areas and starts the background work (after
 * fuse_daemonize: threads do not survive its fork). 0 or -errno. */
int fs_start(struct fs *fs);
void fs_free(struct fs *fs);
const struct fuse_lowlevel_ops *fs_ops(void);

#endif
