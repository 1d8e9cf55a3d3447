/* brevents.c - Broker's events about us: sooner inbox entries, and
 * broker/<resourceId>/events/ as files.
 *
 * Broker publishes a CloudEvent to the Events API for each step of a
 * transfer, one per party it concerns, with that party's organisation as
 * its subject (../shared/altinn-broker-correspondence.md 2.4). Polling
 * them (GET events/api/v1/events?resource=&subject=&after=, scope
 * altinn:events.subscribe) every few seconds shows a transfer published
 * to us long before the next search is allowed: a `published` event for
 * a transfer the journal does not know is looked up and shown at once.
 * The searches stay the truth (an event may be lost or late); events
 * only make the inbox sooner.
 *
 * Each event is also written to events/ as
 * <number>_<type>_<eventId>.json (the event as Events gave it; the
 * number counts up per resource, the type without "no.altinn.broker."),
 * like an app's events/; the newest events_keep are kept. The cursor
 * (the last event id and file number) is a journal item of its own, so a
 * restart goes on where it stopped. The first run starts at the end of
 * what Events holds: the search shows what waits already. A token
 * without the scope (401, 403) turns events off for ten minutes, said in
 * status.json.
 *
 * With push on, the same round makes sure each resource's subscription
 * exists (brpush.c); once every one is validated, pushes bring the
 * transfers at once and this poll is only the catch-up for what a push
 * missed, every poll_interval seconds as apps' events are, and the only
 * writer of events/ (so each event is one file, in Events' order). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "api_brecv.h"
#include "api_broker.h"
#include "brecv_i.h"
#include "config.h"
#include "log.h"
#include "mountio.h"
#include "retry.h"
#include "xalloc.h"

#define EVENTS_EVERY_MS 3000
#define EVENTS_OFF_MS (600 * 1000)
#define EVENTS_PAGE 100
#define EVENTS_PAGES_PER_ROUND 20
#define TYPE_PREFIX "no.altinn.broker."

static void name_part(const char *s, size_t max, char *out)
{
	size_t n = 0;

	for (; s && *s && n < max; s++) {
		unsigned char c = (unsigned char)*s;

		out[n++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_') ? (char)c
											: '-';
	}
	if (n == 0)
		out[n++] = '-';
	out[n] = '\0';
}

static char *event_name(uint64_t seq, const char *type, const char *id)
{
	char t[65], i[65];

	if (type && strncmp(type, TYPE_PREFIX, strlen(TYPE_PREFIX)) == 0)
		type += strlen(TYPE_PREFIX);
	name_part(type, 64, t);
	name_part(id, 64, i);
	return xasprintf("%012" PRIu64 "_%s_%s.json", seq, t, i);
}

/* Removes event files numbered below first (through the mount). */
static void retain(const char *dir, uint64_t first)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char *end;
		unsigned long long n = strtoull(de->d_name, &end, 10);

		if (end == de->d_name + 12 && *end == '_' && n < first) {
			char *p = xasprintf("%s/%s", dir, de->d_name);

			if (unlink(p) < 0 && errno != ENOENT)
				log_warn("broker: cannot remove \"%s\": %s", p, strerror(errno));
			free(p);
		}
	}
	if (d)
		closedir(d);
}

/* One event of ours: its file, and a published transfer shown. */
static void deliver(struct brecv *rx, const char *resource, const struct json_event *ev,
		    uint64_t seq)
{
	char *dir = xasprintf("%s/broker/%s/events", rx->mountpoint, resource);
	char *name = event_name(seq, ev->type, ev->id), *id;
	int r = mountio_write(dir, name, ev->doc, ev->doc_len, false, NULL);

	if (r < 0)
		log_errno(r, "broker: cannot write event \"%s\"", name);
	id = brecv_event_transfer(ev);
	if (id && rx->on_event)
		rx->on_event(rx->on_event_ctx, resource, ev->type, id);
	if (id && ev->type && strcmp(ev->type, TYPE_PREFIX "published") == 0 &&
	    !brecv_event_as_sender(ev) && !brecv_known(rx, resource, id)) {
		long w = -1;

		log_info("broker: event: transfer %s published to us", id);
		brecv_show(rx, resource, id, &w);
	}
	free(id);
	free(name);
	free(dir);
}

/* Follows one resource's events from its cursor; 0, or -errno. */
static int follow(struct brecv *rx, const char *resource)
{
	char *key = xasprintf("~events/%s", resource), seqbuf[32];
	struct queue_item it = { 0 };
	bool first = queue_find(rx->q, key, QUEUE_STATE(RX_CURSOR), &it) < 0;
	uint64_t seq = 0, kept_from;
	int r = 0;

	if (first) {
		it = (struct queue_item){ .state = RX_CURSOR, .key = xstrdup(key) };
		queue_set(&it.f[RF_RESOURCE], resource);
	} else if (it.f[RF_SIZE]) {
		seq = strtoull(it.f[RF_SIZE], NULL, 10);
	}
	kept_from = seq;
	for (int page = 0; page < EVENTS_PAGES_PER_ROUND; page++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		struct json_event *evs = NULL;
		size_t n = 0;

		r = brecv_events(rx->a, resource, rx->me, it.f[RF_ID] ? it.f[RF_ID] : "0",
				 EVENTS_PAGE, &evs, &n, &ans);
		if (r < 0) {
			if (ans.status == 401 || ans.status == 403) {
				pthread_mutex_lock(&rx->lock);
				if (!rx->events_off)
					log_warn("broker: Broker's events cannot be read (%s): the "
						 "inbox relies on its searches", ans.summary);
				free(rx->events_off);
				rx->events_off = xstrdup(ans.summary);
				pthread_mutex_unlock(&rx->lock);
			}
			app_answer_clear(&ans);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (!first)
				deliver(rx, resource, &evs[i], ++seq);
			queue_set(&it.f[RF_ID], evs[i].id);
		}
		json_events_free(evs, n);
		app_answer_clear(&ans);
		if (n > 0 || first) {
			snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, seq);
			queue_set(&it.f[RF_SIZE], seqbuf);
			r = it.id ? queue_save(rx->q, &it) : queue_add(rx->q, &it);
			if (r < 0)
				break;
		}
		if (n < EVENTS_PAGE)
			break;
	}
	if (seq > kept_from && seq > (uint64_t)rx->cfg->events_keep) {
		char *dir = xasprintf("%s/broker/%s/events", rx->mountpoint, resource);

		retain(dir, seq - (uint64_t)rx->cfg->events_keep + 1);
		free(dir);
	}
	queue_item_clear(&it);
	free(key);
	return r;
}

void brecv_on_event(struct brecv *rx,
		    void (*fn)(void *ctx, const char *resource, const char *type,
			       const char *transfer_id),
		    void *ctx)
{
	rx->on_event = fn;
	rx->on_event_ctx = ctx;
}

int64_t brevents_round(struct brecv *rx)
{
	bool off, pushed;

	pthread_mutex_lock(&rx->lock);
	off = rx->events_off != NULL;
	pthread_mutex_unlock(&rx->lock);
	if (off) {
		/* a while later: the token may have the scope by now */
		pthread_mutex_lock(&rx->lock);
		free(rx->events_off);
		rx->events_off = NULL;
		pthread_mutex_unlock(&rx->lock);
	}
	if (!rx->me && broker_sender(rx->a, &rx->me) < 0)
		return EVENTS_EVERY_MS;
	pushed = brpush_round(rx->push);
	for (size_t i = 0; rx->resources[i] && !worker_stopping(&rx->worker); i++)
		follow(rx, rx->resources[i]);
	pthread_mutex_lock(&rx->lock);
	off = rx->events_off != NULL;
	pthread_mutex_unlock(&rx->lock);
	if (pushed) /* the poll only catches up what a push missed */
		return (rx->cfg->poll_interval > 0 ? rx->cfg->poll_interval : 10) * 1000L;
	return off ? EVENTS_OFF_MS : EVENTS_EVERY_MS;
}
