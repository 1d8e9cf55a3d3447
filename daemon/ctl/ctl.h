/* ctl.h - the ctl family: each instance's console.
 *
 * `echo next > .../<guid>/ctl` performs one of the service owner's
 * actions on the instance (daemon/platform's altinn_instance_action) and
 * answers the write with its result as an errno; reading ctl shows the
 * last command's report. Commands:
 *   next [action]                   PUT .../process/next
 *   complete                        POST .../complete
 *   substatus <label> [description] PUT .../substatus
 * Reports are kept in memory for the most recent instances only: ctl is
 * a console, not a journal (docs/tree.md). */
#ifndef ALTINNFS_CTL_H
#define ALTINNFS_CTL_H

#include "family.h"

/* The family for fs/ and main.c (family.h). */
int ctl_family(const struct family_deps *deps, struct fs_family *ret);

#endif
