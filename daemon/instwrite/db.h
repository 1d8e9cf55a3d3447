/* db.h - the helpers of the instance writes journal (db.c): its queue
 * and what an earlier version left, state names, time, keys, staging
 * names. Both instwrite.c and instsend.c use them. */
#ifndef ALTINNFS_IW_DB_H
#define ALTINNFS_IW_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "instwrite_i.h"

const char *iw_state_name(enum iw_state st);
/* false for a name that is not a state (a journal from a newer version) */
bool iw_state_parse(const char *name, enum iw_state *ret);
int64_t iw_now_ms(void);
/* The queue key of k's name, and of its folder (ending in "/"). */
char *iw_key(const struct alt_dw_key *k);
char *iw_folder_key(const struct alt_dw_key *k);
/* A row from a queue item (taking its strings), and an item from a row
 * (with copies), done_at set when the row's state is final. */
void iw_row_take(struct iw_row *row, struct queue_item *it);
void iw_item_of(struct queue_item *it, const struct iw_row *row, int64_t due_at,
		const char *error);
/* Opens the journal at path, importing an earlier version's table. */
int iw_journal_open(struct instwrite *iw, const char *path);
char *iw_stage_name(int64_t id); /* the staging file of row id */
void iw_stage_unlink(struct instwrite *iw, int64_t id);
/* Is row id's file still held open (see held_open)? Caller holds lock. */
bool iw_held_open(struct instwrite *iw, int64_t id);
/* Marks it held open (a flush while the kernel keeps the file) or not
 * (its release). Caller holds lock. */
void iw_set_held_open(struct instwrite *iw, int64_t id, bool open);

#endif
