/* uploader.h - the outbox's uploader threads (uploader.c): which item
 * next, backoff, retries and give-up. */
#ifndef ALTINNFS_OUTBOX_UPLOADER_H
#define ALTINNFS_OUTBOX_UPLOADER_H

#include "outbox_i.h"

/* Sets up ob->uploaders (a pool of core/worker.c); no thread yet. */
void uploader_init(struct outbox *ob);
/* Starts outbox_uploaders threads. */
int uploader_start(struct outbox *ob);
/* An item may be due now (a new one, a release): look. ob->lock may be held. */
void uploader_wake(struct outbox *ob);
/* Asks the threads to stop after the item under way; no waiting. */
void uploader_stop(struct outbox *ob);
/* Joins them and frees the pool; fine when never started. */
void uploader_join(struct outbox *ob);

#endif
