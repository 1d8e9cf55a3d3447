/* broker.h - Altinn Broker file transfers as folders (docs/broker.md).
 *
 * MOUNT/broker/<resourceId>/outbox/<recipient>/<name>: a file dropped
 * there becomes one Broker file transfer to that organisation, sent
 * exactly once through a journal; its receipt goes to sent/, a refusal
 * to failed/. */
#ifndef ALTINNFS_BROKER_H
#define ALTINNFS_BROKER_H

#include "family.h"

/* The family for fs/ and main.c (family.h); turned off (ret->ctx NULL)
 * when broker_resources is not set. */
int broker_family(const struct family_deps *deps, struct fs_family *ret);

#endif
