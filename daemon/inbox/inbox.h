/* inbox.h - confirming received instances, durably.
 *
 * `rm inbox/<party>-<guid>` records a confirmation in SQLite (committed
 * and synced before rm returns), hides the entry at once, and a worker
 * thread performs POST .../complete with retries until the platform
 * takes it, across outages and restarts. Confirming is idempotent on the
 * platform, so a retry after a crash is harmless. See docs/inbox.md. */
#ifndef ALTINNFS_INBOX_H
#define ALTINNFS_INBOX_H

#include <stdbool.h>

#include "family.h"

struct config;
struct inbox;

/* Opens (creating) state_dir/inbox.db; starts no thread. */
int inbox_new(const struct config *cfg, struct altinn *a, struct inbox **ret);
/* The fs_inbox_hooks callbacks; ctx is the struct inbox. */
bool inbox_hidden(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid);
int inbox_confirm(void *ctx, const char *org, const char *app, const char *party,
		  const char *guid);
/* Confirmations not yet taken by the platform, and refused ones. */
void inbox_counts(struct inbox *ib, unsigned long *ret_pending, unsigned long *ret_failed);
int inbox_start(struct inbox *ib);
void inbox_stop(struct inbox *ib);  /* asks the worker to stop; no waiting */
void inbox_free(struct inbox *ib);  /* joins it; NULL is fine */

/* The family for fs/ and main.c (family.h). */
int inbox_family(const struct family_deps *deps, struct fs_family *ret);

#endif
