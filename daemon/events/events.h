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

#include "altinn.h"

struct config;
struct events;

struct events_deps {
	const struct config *cfg;
	struct altinn *a;
	const char *mountpoint;
	/* an event about an instance arrived (party/guid may be NULL) */
	void (*instance_changed)(void *ctx, const char *org, const char *app, const char *party,
				 const char *guid);
	void *ctx;
};

/* Opens the state (cursors, seen ids) under cfg->state_dir; starts no
 * thread. */
int events_new(const struct events_deps *deps, struct events **ret);
/* The hooks for the events/ areas; false when events are off. */
bool events_hooks(struct events *ev, struct local_hooks *ret);
/* Starts pollers and the webhook, once the mount serves requests. */
int events_start(struct events *ev);
/* Fills the events fields of one app for status.json. */
void events_status(struct events *ev, const char *org, const char *app, struct alt_status_app *st);
/* Asks every thread to stop (no waiting); then unmount; then free. */
void events_stop(struct events *ev);
void events_free(struct events *ev); /* joins the threads; NULL is fine */

#endif
