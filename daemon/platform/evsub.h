/* evsub.h - one webhook subscription kept for a family that subscribes
 * to a resource of its own (Broker, Correspondence).
 *
 * Kept as apps' subscriptions are (events/evpoll.c): the token's
 * subscriptions are listed and one with exactly these filters and this
 * endpoint is reused, else it is posted; one the platform has not
 * validated is posted again ten minutes later (the platform gives a
 * validation up after about eight, altinn-events ValidationQueuePolicy,
 * and posting the same subscription validates it again); a failure is
 * retried with backoff (1 s doubling to a minute). The validation event
 * comes to the webhook, which tells the push bus (core/pushbus.h); it may
 * come before the answer to the POST.
 *
 * evsub_keep is called by one thread only, the family's worker; the
 * state may be read from any thread (evsub_state). */
#ifndef ALTINNFS_EVSUB_H
#define ALTINNFS_EVSUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct altinn;
struct pushbus;

struct evsub {
	char *label;       /* for logs: "broker: the events of \"r1\"" */
	char *resource;    /* urn:altinn:resource:<id> */
	struct pushbus *bus; /* where validation events are heard of */
	pthread_mutex_t lock;
	int64_t id;        /* protected by lock: 0 before one is known */
	bool validated;    /* protected by lock: the platform pushes to it */
	unsigned failures; /* the keeper's own: failed tries in a row */
	int64_t retry_ms;  /* the keeper's own: monotonic, when to look again */
};

void evsub_init(struct evsub *s, const char *label, const char *resource_urn,
		struct pushbus *bus);
void evsub_clear(struct evsub *s); /* NULL is fine */

/* Makes sure the subscription of resource (and subject, our
 * organisation's URN, or NULL for none) to endpoint exists, when it is
 * time to look; true once the platform validated it. */
bool evsub_keep(struct evsub *s, struct altinn *a, const char *endpoint, const char *subject,
		const atomic_bool *cancel);
/* What is known of it, for status.json (a validation heard of since the
 * last keep counts). */
void evsub_state(struct evsub *s, int64_t *ret_id, bool *ret_validated);

#endif
