/* outbox.h - files dropped into outbox/<owner>/ become submissions.
 *
 * Owns the outbox/, sent/ and failed/ areas: accepts a closed or renamed
 * file (or folder) into the durable spool, delivers it (create instance,
 * upload, process/next) with retries across outages and restarts, and
 * reports the outcome as a receipt in sent/ or a dead letter in failed/,
 * written through the mount. See docs/outbox.md. */
#ifndef ALTINNFS_OUTBOX_H
#define ALTINNFS_OUTBOX_H

#include <stdbool.h>

#include "altinn.h"

struct config;
struct outbox;

struct outbox_deps {
	const struct config *cfg;
	struct altinn *a;
	const char *mountpoint;
};

/* Opens the spool under cfg->state_dir; starts no thread. */
int outbox_new(const struct outbox_deps *deps, struct outbox **ret);
/* The hooks of an area this module owns (AREA_OUTBOX, AREA_SENT,
 * AREA_FAILED); false when it does not own it or the outbox is off. */
bool outbox_hooks(struct outbox *ob, enum local_area area, struct local_hooks *ret);
/* Starts the uploaders and resumes what a restart left, once the mount
 * serves requests. */
int outbox_start(struct outbox *ob);
void outbox_status(struct outbox *ob, struct alt_status_outbox *st);
/* Asks every thread to stop (no waiting); then unmount; then free. */
void outbox_stop(struct outbox *ob);
void outbox_free(struct outbox *ob); /* joins the threads; NULL is fine */

#endif
