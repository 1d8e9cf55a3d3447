/* mountio.h - the daemon writing into its own mount.
 *
 * inotify sees only what happens through the mount, so files that
 * watchers wait for (event files, receipts, dead letters) are made with
 * ordinary file calls on the mount's path, from a thread that is not
 * serving a FUSE request (one that is would deadlock on the folder's
 * lock). Files appear complete: they are written under a dot-name and
 * renamed into place, so a watcher sees one IN_MOVED_TO for the name. */
#ifndef ALTINNFS_MOUNTIO_H
#define ALTINNFS_MOUNTIO_H

#include <stdbool.h>
#include <stddef.h>

/* Writes len bytes of data as dir/name. With unique, a taken name gets
 * a numeric suffix before its extension ("a.json" -> "a-1.json") instead
 * of being replaced; *ret_name (if not NULL) gets the name used. */
int mountio_write(const char *dir, const char *name, const void *data, size_t len, bool unique,
		  char **ret_name);

/* Moves path to dir/name, with a numeric suffix when the name is taken;
 * *ret_name (if not NULL) gets the name used. */
int mountio_move(const char *path, const char *dir, const char *name, char **ret_name);

/* "a.pdf" with suffix n: "a-n.pdf" (n 0: the name itself). */
char *mountio_suffixed(const char *name, unsigned n);

#endif
