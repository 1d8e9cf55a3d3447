/* outcome.h - how an outbox item ends: a receipt in sent/, or a dead
 * letter in failed/ (outcome.c, through core/receipt.h). */
#ifndef ALTINNFS_OUTBOX_OUTCOME_H
#define ALTINNFS_OUTBOX_OUTCOME_H

#include "api_app.h"
#include "outbox_i.h"

/* The receipt or dead letter, and the item gone from outbox/. Returns 0
 * when the item is DONE or FAILED. */
int outcome_finish(struct outbox *ob, struct ob_item *it);
/* Decides the dead letter of a refused item and sets FAILING. */
int outcome_refuse(struct outbox *ob, struct ob_item *it, const char *step,
		   const struct app_answer *ans, const char *reason);

#endif
