/* deliver.h - one outbox item's steps on the platform, and the look-ups
 * after an answer that was lost (deliver.c). */
#ifndef ALTINNFS_OUTBOX_DELIVER_H
#define ALTINNFS_OUTBOX_DELIVER_H

#include "api_app.h"
#include "outbox_i.h"

/* Runs an item until it needs to wait, succeeds or fails. Returns 0 when
 * the item reached SUBMITTED or FAILING (outcome next), or the answer of
 * the step that must be retried (in *ans). */
int deliver_item(struct outbox *ob, struct ob_item *it, struct app_answer *ans);
/* The metadata of an app, fetched when older than a minute; the caller
 * holds meta_lock while using it. */
int deliver_app_meta(struct outbox *ob, struct ob_app *oa);

#endif
