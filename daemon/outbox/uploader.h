/* uploader.h - the outbox's uploader threads (uploader.c): which item
 * next, backoff, retries and give-up. */
#ifndef ALTINNFS_OUTBOX_UPLOADER_H
#define ALTINNFS_OUTBOX_UPLOADER_H

#include "outbox_i.h"

int uploader_start(struct outbox *ob);
void uploader_join(struct outbox *ob);

#endif
