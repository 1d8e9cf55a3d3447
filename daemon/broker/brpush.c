/* brpush.c - Broker's events pushed by the webhook: a transfer published
 * to us is in inbox/ at once, not at the next poll.
 *
 * With push on (webhook_listen and webhook_url), each resource of
 * broker_resources gets a subscription of its own: resourceFilter
 * urn:altinn:resource:<id> and subjectFilter our organisation's URN, as
 * Events requires of a resource that is not an app (a party subscribes
 * to the events about itself), no source or type filter. The events
 * family serves the endpoint and hands Broker's events here through the
 * push bus (core/pushbus.h), by resource and the "no.altinn.broker."
 * type prefix.
 *
 * A pushed `published` event only names a transfer: its id is put on a
 * short list in memory and the worker wakes and shows it (brshow.c), in
 * the one thread that shows entries, so a push and a search never show
 * one transfer twice, and a push delivered twice finds it known. The
 * webhook answers 200 as soon as the id is listed: the pushes make
 * entries sooner, they are not the truth. Whatever a push misses (the
 * webhook down, a restart, a full list answered 503) the events poll
 * (brevents.c, every poll_interval while every subscription is
 * validated) and the reconciling search bring.
 *
 * Subscribing runs in the worker too, each resource's subscription kept
 * by platform/evsub.c: listed and reused when it exists, else posted;
 * posted again while not validated; failures retried with backoff. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_brecv.h"
#include "brecv_i.h"
#include "caps.h"
#include "config.h"
#include "evsub.h"
#include "log.h"
#include "pushbus.h"
#include "xalloc.h"

#define TYPE_PREFIX "no.altinn.broker."
#define RESOURCE_URN "urn:altinn:resource:"
#define ORG_URN "urn:altinn:organization:identifier-no:"
struct br_sub {
	char *resource; /* the resource id */
	struct evsub sub;
};

struct brpush {
	struct brecv *rx;
	struct pushbus *bus;
	struct br_sub *subs;
	size_t n_subs;
	pthread_mutex_t lock;
	char *waiting[ALT_MAX_PUSHED_WAITING]; /* protected by lock: "<resource>/<id>" */
	size_t n_waiting;                      /* protected by lock */
	atomic_bool stopping;
};

/* ---- the webhook's side */

static struct br_sub *sub_of(struct brpush *bp, const char *urn)
{
	for (size_t i = 0; i < bp->n_subs; i++)
		if (strcmp(bp->subs[i].sub.resource, urn) == 0)
			return &bp->subs[i];
	return NULL;
}

/* Lists "<resource>/<id>" for the worker: 0, or -EAGAIN when full. */
static int list_waiting(struct brpush *bp, const char *resource, const char *id)
{
	char *key = brecv_key(resource, id);
	int r = 0;

	pthread_mutex_lock(&bp->lock);
	for (size_t i = 0; i < bp->n_waiting && key; i++)
		if (strcmp(bp->waiting[i], key) == 0) { /* delivered again */
			free(key);
			key = NULL;
		}
	if (key && bp->n_waiting == ALT_MAX_PUSHED_WAITING) {
		r = -EAGAIN;
	} else if (key) {
		bp->waiting[bp->n_waiting++] = key;
		key = NULL;
	}
	pthread_mutex_unlock(&bp->lock);
	free(key);
	return r;
}

static int on_push(void *ctx, const char *resource, const char *body, size_t len)
{
	struct brpush *bp = ctx;
	struct json_event e;
	struct br_sub *s;
	char *id;
	int r = 0;

	if (atomic_load(&bp->stopping))
		return -EAGAIN;
	if (json_parse_event(body, len, &e) < 0)
		return -EINVAL;
	s = sub_of(bp, resource);
	id = s ? brecv_event_transfer(&e) : NULL;
	if (id && bp->rx->on_event) /* the sending side: a receipt looks again */
		bp->rx->on_event(bp->rx->on_event_ctx, s->resource, e.type, id);
	if (!s || strcmp(e.type, TYPE_PREFIX "published") != 0 || brecv_event_as_sender(&e)) {
		free(id);
		json_event_clear(&e); /* the events poll makes its file */
		return 0;
	}
	if (id) {
		log_info("broker: pushed: transfer %s published (event %s)", id, e.id);
		r = list_waiting(bp, s->resource, id);
		if (r == 0)
			worker_wake(&bp->rx->worker);
		else
			log_warn("broker: %d pushed transfers wait already; %s comes by the poll",
				 ALT_MAX_PUSHED_WAITING, id);
	}
	free(id);
	json_event_clear(&e);
	return r;
}

/* ---- the worker's side */

bool brpush_take(struct brpush *bp, char **ret_resource, char **ret_id)
{
	char *key = NULL, *slash;

	if (!bp)
		return false;
	pthread_mutex_lock(&bp->lock);
	if (bp->n_waiting > 0) {
		key = bp->waiting[0];
		memmove(bp->waiting, bp->waiting + 1, --bp->n_waiting * sizeof(char *));
	}
	pthread_mutex_unlock(&bp->lock);
	if (!key)
		return false;
	slash = strrchr(key, '/');
	*ret_resource = xstrndup(key, (size_t)(slash - key));
	*ret_id = xstrdup(slash + 1);
	free(key);
	return true;
}

bool brpush_round(struct brpush *bp)
{
	char *subject;
	bool all = true;

	if (!bp || !bp->rx->me)
		return false;
	subject = xasprintf(ORG_URN "%s", bp->rx->me);
	for (size_t i = 0; i < bp->n_subs; i++)
		all &= evsub_keep(&bp->subs[i].sub, bp->rx->a, bp->rx->cfg->webhook_url, subject,
				  &bp->stopping);
	free(subject);
	return all;
}

void brpush_status(struct brpush *bp, const char *resource, int64_t *ret_id,
		   bool *ret_validated)
{
	for (size_t i = 0; bp && i < bp->n_subs; i++)
		if (strcmp(bp->subs[i].resource, resource) == 0)
			evsub_state(&bp->subs[i].sub, ret_id, ret_validated);
}

/* ---- life */

struct brpush *brpush_new(struct brecv *rx, struct pushbus *bus)
{
	struct brpush *bp;
	size_t n = 0;

	if (!bus || !rx->cfg->webhook_url || !rx->cfg->webhook_listen)
		return NULL;
	while (rx->resources[n])
		n++;
	bp = xcalloc(1, sizeof(*bp));
	bp->rx = rx;
	bp->bus = bus;
	bp->subs = xcalloc(n ? n : 1, sizeof(*bp->subs));
	bp->n_subs = n;
	pthread_mutex_init(&bp->lock, NULL);
	atomic_init(&bp->stopping, false);
	for (size_t i = 0; i < n; i++) {
		char *urn = xasprintf(RESOURCE_URN "%s", rx->resources[i]);
		char *label = xasprintf("broker: the events of \"%s\"", rx->resources[i]);

		bp->subs[i].resource = xstrdup(rx->resources[i]);
		evsub_init(&bp->subs[i].sub, label, urn, bus);
		pushbus_add(bus, urn, TYPE_PREFIX, on_push, bp);
		free(label);
		free(urn);
	}
	return bp;
}

void brpush_stop(struct brpush *bp)
{
	if (bp)
		atomic_store(&bp->stopping, true);
}

void brpush_free(struct brpush *bp)
{
	if (!bp)
		return;
	pushbus_remove(bp->bus, bp); /* waits for the deliveries under way */
	for (size_t i = 0; i < bp->n_subs; i++) {
		free(bp->subs[i].resource);
		evsub_clear(&bp->subs[i].sub);
	}
	for (size_t i = 0; i < bp->n_waiting; i++)
		free(bp->waiting[i]);
	free(bp->subs);
	pthread_mutex_destroy(&bp->lock);
	free(bp);
}
