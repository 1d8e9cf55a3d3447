/* evfiles.h - events become files, and retention (evfiles.c). */
#ifndef ALTINNFS_EVFILES_H
#define ALTINNFS_EVFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "events_i.h"

struct json_event;

/* Events, in the platform's order, become one file each (or nothing,
 * when they did already). With update_cursor the cursor moves past what
 * was handled. *ret_done: how many of evs, from the first, were handled
 * (all, unless an error comes back). Takes app->lock; never call it
 * holding a lock. */
int ev_deliver(struct ev_app *ea, const struct json_event *evs, size_t n, bool update_cursor,
	       size_t *ret_done);
/* Retention: removes the oldest files beyond events_keep and those
 * older than events_keep_days; forgets the oldest ids beyond
 * ALT_EVENTS_SEEN. */
void ev_retain(struct ev_app *ea, bool check_age);

/* The number of an event file's name; false for any other. */
bool ev_name_seq(const char *name, uint64_t *ret);
/* Microseconds since the epoch, now and of a time. */
int64_t ev_now_us(void);
int64_t ev_ts_us(const struct timespec *ts);

#endif
