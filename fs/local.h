/* local.h - areas of the tree kept on local disk under state_dir.
 *
 * events/, outbox/, sent/ and failed/ of each app are real files in
 * state_dir/apps/<org>/<app>/<area>/, served through the mount so that
 * inotify watchers see what happens in them. What may be created, and
 * what happens when a file is closed, renamed or removed, is decided by
 * the hooks of the family that owns the area (family.h). */
#ifndef ALTINNFS_LOCAL_H
#define ALTINNFS_LOCAL_H

#include <stdbool.h>

#include "family.h"

/* The folder name of an area ("events"), or NULL. */
const char *local_area_name(enum local_area area);

#endif
