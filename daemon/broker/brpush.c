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
 * Subscribing runs in the worker too: listed and reused when it exists
 * (GET /subscriptions), else posted; a subscription the platform has not
 * validated is posted again ten minutes later (it gives its validation
 * up after about eight); a failure is retried with backoff. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_brecv.h"
#include "api_events.h"
#include "brecv_i.h"
#include "caps.h"
#include "config.h"
#include "log.h"
#include "pushbus.h"
#include "retry.h"
#include "xalloc.h"

#define TYPE_PREFIX "no.altinn.broker."
#define RESOURCE_URN "urn:altinn:resource:"
#define ORG_URN "urn:altinn:organization:identifier-no:"
/* a posted subscription not validated by then is posted again */
#define SUB_RECHECK_MS (10 * 60 * 1000L)
#define SUB_BACKOFF_CAP_MS (60 * 1000L)

struct br_sub {
	char *resource;   /* the resource id */
	char *urn;        /* urn:altinn:resource:<id> */
	int64_t id;       /* protected by brpush.lock: 0 before one is known */
	bool validated;   /* protected by brpush.lock */
	unsigned failures;   /* the worker's own */
	int64_t retry_ms;    /* the worker's own: monotonic */
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
		if (strcmp(bp->subs[i].urn, urn) == 0)
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
	if (key && bp->n_waiting == ALT_MAX_PUSHED_WAITING)
		r = -EAGAIN;
	else if (key)
		bp->waiting[bp->n_waiting++] = key, key = NULL;
	pthread_mutex_unlock(&bp->lock);
	free(key);
	return r;
}

static int on_push(void *ctx, const char *body, size_t len)
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
	s = sub_of(bp, e.resource);
	if (!s || strcmp(e.type, TYPE_PREFIX "published") != 0) {
		json_event_clear(&e); /* the events poll makes its file */
		return 0;
	}
	id = brecv_event_transfer(&e);
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

static void subscribe(struct brpush *bp, struct br_sub *s)
{
	const struct config *cfg = bp->rx->cfg;
	char *subject = xasprintf(ORG_URN "%s", bp->rx->me);
	const struct json_sub_filter f = { .resource = s->urn, .subject = subject };
	bool created = false, validated = false;
	int64_t id = 0;
	int r = altinn_events_subscribe_for(bp->rx->a, cfg->webhook_url, &f, &bp->stopping, &id,
					    &created, &validated);

	free(subject);
	if (r < 0) {
		int64_t wait = retry_backoff_ms(++s->failures, SUB_BACKOFF_CAP_MS, -1);

		s->retry_ms = retry_mono_ms() + wait;
		if (r != -ECANCELED)
			log_errno(r, "broker: cannot subscribe to the events of \"%s\" (again in "
				  "%lld s)", s->resource, (long long)(wait / 1000));
		return;
	}
	s->failures = 0;
	validated = validated || pushbus_was_validated(bp->bus, id);
	pthread_mutex_lock(&bp->lock);
	s->id = id;
	s->validated = validated;
	pthread_mutex_unlock(&bp->lock);
	if (validated) {
		log_info("broker: the events of \"%s\" are pushed by %s subscription %lld",
			 s->resource, created ? "new" : "existing", (long long)id);
		return;
	}
	s->retry_ms = retry_mono_ms() + SUB_RECHECK_MS;
	log_info("broker: subscription %lld for the events of \"%s\" is %s; it pushes once "
		 "the platform validated the endpoint", (long long)id, s->resource,
		 created ? "posted" : "listed");
}

bool brpush_round(struct brpush *bp)
{
	bool all = true;

	if (!bp || !bp->rx->me)
		return false;
	for (size_t i = 0; i < bp->n_subs; i++) {
		struct br_sub *s = &bp->subs[i];
		bool validated;

		pthread_mutex_lock(&bp->lock);
		if (!s->validated && s->id > 0 && pushbus_was_validated(bp->bus, s->id))
			s->validated = true; /* its validation came after the post's answer */
		validated = s->validated;
		pthread_mutex_unlock(&bp->lock);
		if (!validated && retry_mono_ms() >= s->retry_ms)
			subscribe(bp, s);
		pthread_mutex_lock(&bp->lock);
		all = all && s->validated;
		pthread_mutex_unlock(&bp->lock);
	}
	return all;
}

void brpush_status(struct brpush *bp, const char *resource, int64_t *ret_id,
		   bool *ret_validated)
{
	for (size_t i = 0; bp && i < bp->n_subs; i++)
		if (strcmp(bp->subs[i].resource, resource) == 0) {
			pthread_mutex_lock(&bp->lock);
			*ret_id = bp->subs[i].id;
			*ret_validated = bp->subs[i].validated;
			pthread_mutex_unlock(&bp->lock);
		}
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
		bp->subs[i].resource = xstrdup(rx->resources[i]);
		bp->subs[i].urn = xasprintf(RESOURCE_URN "%s", rx->resources[i]);
		pushbus_add(bus, bp->subs[i].urn, TYPE_PREFIX, on_push, bp);
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
		free(bp->subs[i].urn);
	}
	for (size_t i = 0; i < bp->n_waiting; i++)
		free(bp->waiting[i]);
	free(bp->subs);
	pthread_mutex_destroy(&bp->lock);
	free(bp);
}
