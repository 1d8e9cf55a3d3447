/* item.h - one outbox item: its names, its journal row and its state
 * (item.c). Every file of the outbox that moves an item uses these. */
#ifndef ALTINNFS_OUTBOX_ITEM_H
#define ALTINNFS_OUTBOX_ITEM_H

#include <stdbool.h>
#include <stdint.h>

#include "outbox_i.h"

int64_t outbox_now_ms(void);
void outbox_item_free(struct ob_item *it); /* NULL is fine */
/* "<owner>" of an item's rel, and its name below the owner folder */
char *outbox_item_owner(const struct ob_item *it);
const char *outbox_item_name(const struct ob_item *it);
/* Saves the item's row (and its elements); logs and returns -errno. */
int outbox_save(struct outbox *ob, struct ob_item *it, bool elements);
/* Sets the state (and, with fmt, last_error) under the lock, then saves. */
int outbox_set_state(struct outbox *ob, struct ob_item *it, enum spool_state st, bool elements);
void outbox_set_error(struct outbox *ob, struct ob_item *it, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
