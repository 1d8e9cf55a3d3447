/* evpoll.h - the pollers of the events module (evpoll.c). */
#ifndef ALTINNFS_EVPOLL_H
#define ALTINNFS_EVPOLL_H

#include <stdbool.h>

#include "events_i.h"

/* The poller of one app (a thread's body; arg is its struct ev_app). */
void *ev_poller(void *arg);
/* Waits ms milliseconds or until stop; false when stopping. */
bool ev_sleep(struct events *ev, long ms);

#endif
