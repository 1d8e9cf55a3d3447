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

#include "family.h"

/* The family, for main.c's table (family.h); the rest of the module
 * is private to its folder (instwrite_i.h). */
int instwrite_family(const struct family_deps *deps, struct fs_family *ret);

#endif
