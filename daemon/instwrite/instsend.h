/* instsend.h - the worker that sends journaled instance writes
 * (instsend.c), and the module's start, stop and free around it. */
#ifndef ALTINNFS_INSTSEND_H
#define ALTINNFS_INSTSEND_H

#include <stdint.h>

#include "instwrite_i.h"

/* Works one due item (core/worker.h). */
int iw_work_one(void *ctx, int64_t *ret_wait_ms);
void iw_row_clear(struct iw_row *row);

/* Resumes what a restart left and starts the worker, once the mount
 * serves requests. */
int instwrite_start(struct instwrite *iw);
/* Asks the worker to stop, and waits for an invalidation under way (the
 * fs session is destroyed next); call before unmounting. */
void instwrite_stop(struct instwrite *iw);
void instwrite_free(struct instwrite *iw); /* joins it; NULL is fine */

#endif
