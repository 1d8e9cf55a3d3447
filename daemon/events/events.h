/* events.h - platform events become files in apps/<org>/<app>/events/.
 *
 * Owns the events/ areas: a poller per app following the persisted
 * cursor, the optional webhook, the seen-id memory that makes every event
 * exactly one file, and retention. Event files are written through the
 * mount (mountio.h) so inotify watchers see them; instance events tell
 * the tree to drop its cached listings. See docs/events.md. */
#ifndef ALTINNFS_EVENTS_H
#define ALTINNFS_EVENTS_H

#include <stdbool.h>

#include "family.h"

/* The family, for main.c's table (family.h); the rest of the module
 * is private to its folder (events_i.h). */
int events_family(const struct family_deps *deps, struct fs_family *ret);

#endif
