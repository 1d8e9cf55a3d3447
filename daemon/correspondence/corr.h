/* corr.h - Altinn Correspondence messages as folders (docs/correspondence.md).
 *
 * MOUNT/correspondence/<resourceId>/outbox/<name>/: a folder renamed
 * into outbox/ (message.md, recipients, meta.json) becomes one
 * correspondence per recipient, sent exactly once through a journal;
 * its receipt goes to sent/<name>.json, a refusal to failed/. */
#ifndef ALTINNFS_CORR_H
#define ALTINNFS_CORR_H

#include "family.h"

/* The family for fs/ and main.c (family.h); turned off (ret->ctx NULL)
 * when correspondence_resources is not set. */
int corr_family(const struct family_deps *deps, struct fs_family *ret);

#endif
