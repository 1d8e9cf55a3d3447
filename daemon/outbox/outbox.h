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

#include "family.h"

/* The family, for main.c's table (family.h); the rest of the module
 * is private to its folder (outbox_i.h). */
int outbox_family(const struct family_deps *deps, struct fs_family *ret);

#endif
