/* evpoll.c - one poller thread per app: the cursor is the truth.
 *
 * Each round asks for the events after the persisted cursor, page after
 * page until an empty one, hands every event to ev_deliver and moves the
 * cursor past what became files. Then it applies retention and sleeps
 * until the next round, poll_interval after the last one began. The
 * webhook only brings events sooner; whatever it missed (an outage, a
 * subscription not yet validated, a delivery given up) the next round
 * brings, and what it already brought is not made twice.
 *
 * A failed round is retried with exponential backoff, from poll_interval
 * up to max(poll_interval, 60 s), with jitter so that many daemons do
 * not come back in step. With push on, the same thread makes sure the
 * subscription exists, retrying with the same backoff until it does. */
#include "evpoll.h"

#include "evfiles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_events.h"
#include "config.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

#define BACKOFF_CAP_MS 60000L

bool ev_sleep(struct events *ev, long ms)
{
	struct timespec until;

	if (ms <= 0)
		return !atomic_load(&ev->stopping);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev->sleep_lock);
	while (!atomic_load(&ev->stopping))
		if (pthread_cond_timedwait(&ev->sleep_cond, &ev->sleep_lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&ev->sleep_lock);
	return !atomic_load(&ev->stopping);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long interval_ms(const struct events *ev)
{
	return (ev->cfg->poll_interval > 0 ? ev->cfg->poll_interval : 10) * 1000L;
}

/* The wait after the n-th failure in a row: doubling from the poll
 * interval to the cap, then a random point in its upper half. */
static long backoff_ms(const struct events *ev, unsigned failures, unsigned *seed)
{
	long cap = interval_ms(ev) > BACKOFF_CAP_MS ? interval_ms(ev) : BACKOFF_CAP_MS;
	long d = interval_ms(ev);

	for (unsigned i = 1; i < failures && d < cap; i++)
		d *= 2;
	d = d < cap ? d : cap;
	return d / 2 + (long)(rand_r(seed) % (unsigned)(d / 2 + 1));
}

/* Did the cursor move on from before (NULL: none yet)? */
static bool cursor_moved(struct ev_app *ea, const char *before)
{
	bool moved;

	pthread_mutex_lock(&ea->lock);
	moved = ea->after && (!before || strcmp(ea->after, before) != 0);
	pthread_mutex_unlock(&ea->lock);
	return moved;
}

/* Every page after the cursor; 0 when an empty page ends the round, or a
 * page that does not move the cursor. */
static int poll_round(struct ev_app *ea)
{
	struct events *ev = ea->ev;

	for (int pages = 0; pages < ALT_MAX_PAGES; pages++) {
		struct json_event *evs = NULL;
		char *after, *from, *before;
		size_t n = 0, done = 0;
		int r;

		pthread_mutex_lock(&ea->lock);
		after = ea->after ? xstrdup(ea->after) : NULL;
		from = ea->from ? xstrdup(ea->from) : NULL;
		pthread_mutex_unlock(&ea->lock);
		r = altinn_events_poll(ev->deps.a, ea->org, ea->name, after, from, ALT_EVENTS_PAGE,
				       &ev->stopping, &evs, &n);
		before = after;
		free(from);
		if (r < 0) {
			free(before);
			return r;
		}
		pthread_mutex_lock(&ea->status_lock);
		clock_gettime(CLOCK_REALTIME, &ea->last_poll_at);
		pthread_mutex_unlock(&ea->status_lock);
		if (n == 0) {
			json_events_free(evs, n);
			free(before);
			return 0;
		}
		r = ev_deliver(ea, evs, n, true, &done);
		json_events_free(evs, n);
		if (r < 0)
			return r;
		if (!cursor_moved(ea, before)) {
			/* a page of events we have, after the cursor we sent: the
			 * platform is not paging, and asking again brings the same */
			log_warn("events of \"%s\": the page after the cursor brought nothing new; "
				 "round ended", ea->id);
			free(before);
			return 0;
		}
		free(before);
		if (atomic_load(&ev->stopping))
			return -ECANCELED;
	}
	log_warn("events of \"%s\": more than %d pages in one round", ea->id, ALT_MAX_PAGES);
	return 0;
}

/* How long a posted subscription may stay unvalidated before it is
 * looked at (and posted) again: the platform tries its validation for
 * about eight minutes (altinn-events ValidationQueuePolicy). */
#define SUB_RECHECK_MS (10 * 60 * 1000L)

static void subscribe(struct ev_app *ea, unsigned *seed)
{
	struct events *ev = ea->ev;
	bool created = false, validated = false;
	int64_t id = 0;
	long delay;
	int r;

	if (now_ms() < ea->sub_retry_ms)
		return;
	r = altinn_events_subscribe(ev->deps.a, ev->cfg->webhook_url, ea->source, &ev->stopping,
				    &id, &created, &validated);
	if (r == 0) {
		ea->subscribed = true;
		ea->sub_failures = 0;
		atomic_store(&ea->sub_id, id);
		if (validated || atomic_load(&ev->last_validated_id) == id) {
			atomic_store(&ea->validated, true);
			log_info("events of \"%s\" are pushed by %s subscription %lld", ea->id,
				 created ? "new" : "existing", (long long)id);
			return;
		}
		ea->sub_retry_ms = now_ms() + SUB_RECHECK_MS;
		log_info("subscription %lld for the events of \"%s\" is %s; it pushes once the "
			 "platform validated the endpoint", (long long)id, ea->id,
			 created ? "posted" : "listed");
		return;
	}
	if (r == -ECANCELED)
		return;
	delay = backoff_ms(ev, ++ea->sub_failures, seed);
	ea->sub_retry_ms = now_ms() + delay;
	log_errno(r, "cannot subscribe to the events of \"%s\" (again in %ld s)", ea->id,
		  delay / 1000);
}

void *ev_poller(void *arg)
{
	struct ev_app *ea = arg;
	struct events *ev = ea->ev;
	unsigned seed = (unsigned)ev_now_us() ^ (unsigned)(uintptr_t)ea;
	unsigned failures = 0;

	ev_retain(ea, true);
	while (!atomic_load(&ev->stopping)) {
		long began = now_ms(), wait;
		int r;

		if (ev->secret && !atomic_load(&ea->validated))
			subscribe(ea, &seed);
		r = poll_round(ea);
		if (atomic_load(&ev->stopping))
			break;
		if (r < 0) {
			if (failures++ == 0)
				log_errno(r, "cannot poll the events of \"%s\"; retrying with backoff",
					  ea->id);
		} else if (failures) {
			log_info("polling the events of \"%s\" works again", ea->id);
			failures = 0;
		}
		ev_retain(ea, true);
		wait = failures ? backoff_ms(ev, failures, &seed)
				: began + interval_ms(ev) - now_ms();
		if (ev->secret && !atomic_load(&ea->validated) && ea->sub_retry_ms - now_ms() < wait)
			wait = ea->sub_retry_ms - now_ms();
		ev_sleep(ev, wait);
	}
	return NULL;
}
