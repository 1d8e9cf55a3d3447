/* instwrite.h - writes into existing instances, durably.
 *
 * Creating or overwriting instances/<party>/<guid>/data/<type>/<name>
 * stages the bytes in state_dir/instwrite/ (fsynced before close()
 * returns) and journals one item in state_dir/instwrite.db: POST a new
 * element, PUT over an existing one. `rm` journals a DELETE. A worker
 * thread sends the items with retries across outages and restarts, never
 * twice (a POST whose answer was lost is looked up on the platform before
 * it is tried again), and reports each outcome like the outbox: a receipt
 * in sent/instance-<party>-<guid>/<type>/<name>.json or a dead letter in
 * failed/instance-<party>-<guid>/<type>/ with <name>.error.json. What the
 * daemon can know at once (a read-only or form data type, a locked
 * element, another task, an ended process) is refused at the call. See
 * docs/instance-writes.md. */
#ifndef ALTINNFS_INSTWRITE_H
#define ALTINNFS_INSTWRITE_H

#include "altinn.h"

struct config;
struct instwrite;

/* Opens (creating) the journal and the staging folder; starts no thread. */
int instwrite_new(const struct config *cfg, struct altinn *a, const char *mountpoint,
		  struct instwrite **ret);
/* The callbacks of struct alt_dw_hooks, ctx the struct instwrite. */
void instwrite_hooks(struct instwrite *iw, struct alt_dw_hooks *ret);
/* Resumes what a restart left and starts the worker, once the mount
 * serves requests. */
int instwrite_start(struct instwrite *iw);
/* After each outcome, so listings show the platform's new view. */
void instwrite_set_invalidate(struct instwrite *iw,
			      void (*cb)(void *ctx, const char *org, const char *app,
					 const char *party, const char *guid),
			      void *ctx);
/* Asks the worker to stop, and waits for an invalidation under way (the
 * fs session is destroyed next); call before unmounting. */
void instwrite_stop(struct instwrite *iw);
void instwrite_free(struct instwrite *iw); /* joins it; NULL is fine */

#endif
