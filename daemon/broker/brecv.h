/* brecv.h - receiving Broker transfers into broker/<resourceId>/inbox/
 * (brecv.c); private to daemon/broker/. */
#ifndef ALTINNFS_BRECV_H
#define ALTINNFS_BRECV_H

#include "family.h"
#include "queue.h"
#include "worker.h"

struct brecv;
struct broker_status;
struct journal;

/* Its own queue in the family's journal j; resources (NULL-ended) must
 * outlive it. */
int brecv_new(const struct family_deps *deps, struct journal *j, char **resources,
	      struct brecv **ret);
int brecv_start(struct brecv *rx);
void brecv_stop(struct brecv *rx);
void brecv_free(struct brecv *rx); /* NULL is fine */

/* inbox/'s hooks (family.h): only rm is the user's; it confirms */
int brecv_check(struct brecv *rx, const struct local_call *c);
void brecv_done(struct brecv *rx, const struct local_call *c);
int brecv_fill(struct brecv *rx, const struct local_call *c);

/* fn is called (from the events thread, with the transfer's id) for each
 * Broker event about us that is taken; the sending side's hook
 * (bwatch.c). Set before brecv_start. */
void brecv_on_event(struct brecv *rx,
		    void (*fn)(void *ctx, const char *resource, const char *type,
			       const char *transfer_id),
		    void *ctx);

/* The inbox's figures of status.json (st->inbox_error malloc'd). */
void brecv_status(struct brecv *rx, const char *resource, struct broker_status *st);

#endif
