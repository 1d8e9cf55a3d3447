/* brecv_i.h - what brecv.c (the inbox: searches, reads, confirmations)
 * and brevents.c (Broker's events about us: sooner entries, events/)
 * share; private to daemon/broker/. */
#ifndef ALTINNFS_BRECV_I_H
#define ALTINNFS_BRECV_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "brecv.h"

#define MAX_BACKOFF_MS (300 * 1000)
/* Broker's limit on searches (APIM): calls per minute */
#define SEARCHES_PER_MINUTE 10

/* RX_CURSOR: not a transfer but a resource's place in Broker's events,
 * key "~events/<resourceId>", RF_ID the last event id, RF_SIZE the
 * number of the last event file */
/* RX_TIDY: confirmed, the rest of its folder removed a little later (a
 * user's rm -r may still be removing it) */
enum rx_state { RX_SHOWN, RX_CONFIRMING, RX_CONFIRMED, RX_GONE, RX_CURSOR, RX_TIDY,
		RX_N_STATES };
enum rx_field { RF_RESOURCE, RF_ID, RF_NAME, RF_SIZE, RF_CHECKSUM, RF_FETCHED, RF_PROBED,
		RF_SENDER, RF_N_FIELDS };

#define RX_LIVE (QUEUE_STATE(RX_SHOWN) | QUEUE_STATE(RX_CONFIRMING))

struct brecv {
	const struct config *cfg;
	struct altinn *a;
	char *mountpoint;
	char **resources; /* the family's */
	struct queue *q;
	struct worker worker;
	char *(*safe_name)(const char *name, size_t max);
	pthread_mutex_t fill_lock; /* one download into the inbox at a time */
	pthread_mutex_t lock;      /* what follows */
	char *me;                  /* our organisation number, once known */
	int64_t searches[SEARCHES_PER_MINUTE]; /* monotonic ms of the last ones, a ring */
	unsigned n_searches;
	int64_t next_poll_ms;      /* monotonic */
	int64_t last_poll_ms;      /* wall: the last complete round */
	char *last_error;          /* of the last round, NULL when it went well */
	/* Broker's events (brevents.c) */
	int64_t next_events_ms;    /* monotonic */
	char *events_off;          /* why events are not used, or NULL */
	struct brpush *push;       /* NULL without push (webhook_url) */
	/* set before start: the sending side's hook */
	void (*on_event)(void *ctx, const char *resource, const char *type, const char *id);
	void *on_event_ctx;
};


#define FILL_NAME ".altinnfs-fill" /* a download under way, beside the file */

/* The journal key of a transfer: "<resourceId>/<fileTransferId>" */
char *brecv_key(const char *resource, const char *id);
/* rel "<id>[/<name>[/...]]": its depth (0-3), and id copied to id */
int brecv_split(const char *rel, char *id, size_t cap);

/* brshow.c: */
/* A transfer an answer named (a search, an event) that the journal does
 * not know yet: its overview, folder and item. 0, or -EAGAIN with
 * *ret_wait (ms) after a 429. */
int brecv_show(struct brecv *rx, const char *resource, const char *id, long *ret_wait);
/* Does the journal know the transfer (an entry, or one ended)? */
bool brecv_known(struct brecv *rx, const char *resource, const char *id);
/* Removes what the mount shows of an entry, and its bytes in the content
 * cache unless a reader holds them (worker thread). */
void brecv_remove_entry(struct brecv *rx, const struct queue_item *it);

/* brevents.c: one round over every resource's events; the ms until the
 * next. */
int64_t brevents_round(struct brecv *rx);

/* brpush.c: Broker's events pushed by the webhook, when push is on. */
struct pushbus;
/* Subscribes to each resource's events and takes their pushes from bus
 * at once; NULL when push is off. */
struct brpush *brpush_new(struct brecv *rx, struct pushbus *bus);
void brpush_stop(struct brpush *bp);  /* pushes are answered 503 from now */
void brpush_free(struct brpush *bp);  /* waits for pushes under way; NULL is fine */
/* The worker's: makes sure each subscription exists; true when every
 * one is validated (the platform pushes), false also when bp is NULL. */
bool brpush_round(struct brpush *bp);
/* The worker's: a pushed transfer to show (both malloc'd), or false. */
bool brpush_take(struct brpush *bp, char **ret_resource, char **ret_id);
/* A resource's subscription for status.json (untouched without one). */
void brpush_status(struct brpush *bp, const char *resource, int64_t *ret_id,
		   bool *ret_validated);

#endif
