/* cpush.c - Correspondence's events pushed by the webhook: a recipient's
 * read or confirmation reaches the receipt at once, not at the next
 * poll of the events feed.
 *
 * With push on (webhook_listen and webhook_url) and correspondence_events
 * on, each resource of correspondence_resources gets a subscription of
 * its own, kept by platform/evsub.c: resourceFilter the resource and no
 * other filter, as Correspondence's service owner subscribes (the sender
 * is always the resource's owner). The events family serves the endpoint
 * and hands these events here through the push bus (core/pushbus.h), by
 * resource and the "no.altinn.correspondence." type prefix.
 *
 * A pushed event is parsed and put on a short list in memory, and the
 * worker takes it and applies it (cr_apply_events, as a polled page's), in
 * the family's one worker thread, so a receipt is never changed by two
 * at once. Statuses only move upwards, so an event pushed twice, or
 * pushed and then polled, changes nothing the second time. The feed's
 * poll stays the writer of events/ (each event one file, in the feed's
 * order) and the catch-up for whatever a push missed (the webhook down,
 * a restart, a full list answered 503). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api_corr.h"
#include "caps.h"
#include "config.h"
#include "corr_i.h"
#include "evsub.h"
#include "log.h"
#include "pushbus.h"
#include "xalloc.h"

#define TYPE_PREFIX "no.altinn.correspondence."
#define RESOURCE_URN "urn:altinn:resource:"

struct waiting {
	size_t resource; /* index in c->resources */
	struct corr_event *ev;
};

struct cpush {
	struct corr *c;
	struct pushbus *bus;
	struct evsub *subs; /* one per resource, in c->resources' order */
	size_t n_subs;
	pthread_mutex_t lock;
	struct waiting *waiting; /* protected by lock: ALT_MAX_PUSHED_WAITING */
	size_t n_waiting;        /* protected by lock */
	atomic_bool stopping;
};

static int on_push(void *ctx, const char *resource, const char *body, size_t len)
{
	struct cpush *cp = ctx;
	struct corr_event *ev;
	size_t res = cp->n_subs;
	int r = 0;

	if (atomic_load(&cp->stopping))
		return -EAGAIN;
	if (corr_event_parse(body, len, &ev) < 0)
		return -EINVAL;
	for (size_t i = 0; i < cp->n_subs && res == cp->n_subs; i++)
		if (strcmp(cp->subs[i].resource, resource) == 0)
			res = i;
	if (res == cp->n_subs || !ev->instance) {
		corr_events_free(ev, 1);
		return 0;
	}
	pthread_mutex_lock(&cp->lock);
	if (cp->n_waiting < ALT_MAX_PUSHED_WAITING) {
		cp->waiting[cp->n_waiting++] = (struct waiting){ res, ev };
		ev = NULL;
	} else {
		r = -EAGAIN;
	}
	pthread_mutex_unlock(&cp->lock);
	if (ev) {
		log_warn("correspondence: %d pushed events wait already; event %s comes by the "
			 "poll", ALT_MAX_PUSHED_WAITING, ev->id);
		corr_events_free(ev, 1);
	} else {
		worker_wake(&cp->c->worker);
	}
	return r;
}

bool cpush_take(struct cpush *cp, const char **ret_resource, struct corr_event **ret)
{
	struct waiting w = { 0 };

	if (!cp)
		return false;
	pthread_mutex_lock(&cp->lock);
	if (cp->n_waiting > 0) {
		w = cp->waiting[0];
		memmove(cp->waiting, cp->waiting + 1, --cp->n_waiting * sizeof(*cp->waiting));
	}
	pthread_mutex_unlock(&cp->lock);
	if (!w.ev)
		return false;
	*ret_resource = cp->c->resources[w.resource];
	*ret = w.ev;
	return true;
}

bool cpush_keep(struct cpush *cp, const char *resource)
{
	for (size_t i = 0; cp && i < cp->n_subs; i++)
		if (strcmp(cp->c->resources[i], resource) == 0)
			return evsub_keep(&cp->subs[i], cp->c->a, cp->c->cfg->webhook_url, NULL,
					  &cp->stopping);
	return false;
}

void cpush_status(struct cpush *cp, const char *resource, int64_t *ret_id,
		  bool *ret_validated)
{
	for (size_t i = 0; cp && i < cp->n_subs; i++)
		if (strcmp(cp->c->resources[i], resource) == 0)
			evsub_state(&cp->subs[i], ret_id, ret_validated);
}

/* ---- life */

struct cpush *cpush_new(struct corr *c, struct pushbus *bus)
{
	struct cpush *cp;
	size_t n = 0;

	if (!bus || !c->cfg->webhook_url || !c->cfg->webhook_listen ||
	    !c->cfg->correspondence_events)
		return NULL;
	while (c->resources[n])
		n++;
	cp = xcalloc(1, sizeof(*cp));
	cp->c = c;
	cp->bus = bus;
	cp->subs = xcalloc(n ? n : 1, sizeof(*cp->subs));
	cp->n_subs = n;
	cp->waiting = xcalloc(ALT_MAX_PUSHED_WAITING, sizeof(*cp->waiting));
	pthread_mutex_init(&cp->lock, NULL);
	atomic_init(&cp->stopping, false);
	for (size_t i = 0; i < n; i++) {
		char *urn = xasprintf(RESOURCE_URN "%s", c->resources[i]);
		char *label = xasprintf("correspondence: the events of \"%s\"", c->resources[i]);

		evsub_init(&cp->subs[i], label, urn, bus);
		pushbus_add(bus, urn, TYPE_PREFIX, on_push, cp);
		free(label);
		free(urn);
	}
	return cp;
}

void cpush_stop(struct cpush *cp)
{
	if (cp)
		atomic_store(&cp->stopping, true);
}

void cpush_free(struct cpush *cp)
{
	if (!cp)
		return;
	pushbus_remove(cp->bus, cp); /* waits for the deliveries under way */
	for (size_t i = 0; i < cp->n_subs; i++)
		evsub_clear(&cp->subs[i]);
	for (size_t i = 0; i < cp->n_waiting; i++)
		corr_events_free(cp->waiting[i].ev, 1);
	free(cp->waiting);
	free(cp->subs);
	pthread_mutex_destroy(&cp->lock);
	free(cp);
}
