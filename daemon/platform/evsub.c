/* evsub.c - one webhook subscription kept for a family (see evsub.h).
 *
 * The requests are api_events.c's (altinn_events_subscribe_for: list,
 * then post when there is none or it is not validated); this holds the
 * when: after a success that is not validated yet, ten minutes; after a
 * failure, core's backoff; once validated, never again in this run (the
 * platform keeps a validated subscription until it is deleted). */
#include "evsub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_events.h"
#include "json.h"
#include "log.h"
#include "pushbus.h"
#include "retry.h"
#include "xalloc.h"

/* a posted subscription not validated by then is posted again */
#define EVSUB_RECHECK_MS (10 * 60 * 1000L)
#define EVSUB_BACKOFF_CAP_MS (60 * 1000L)

void evsub_init(struct evsub *s, const char *label, const char *resource_urn,
		struct pushbus *bus)
{
	memset(s, 0, sizeof(*s));
	s->label = xstrdup(label);
	s->resource = xstrdup(resource_urn);
	s->bus = bus;
	pthread_mutex_init(&s->lock, NULL);
}

void evsub_clear(struct evsub *s)
{
	if (!s || !s->label)
		return;
	free(s->label);
	free(s->resource);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

static void subscribe(struct evsub *s, struct altinn *a, const char *endpoint,
		      const char *subject, const atomic_bool *cancel)
{
	const struct json_sub_filter f = { .resource = s->resource, .subject = subject };
	bool created = false, validated = false;
	int64_t id = 0;
	int r = altinn_events_subscribe_for(a, endpoint, &f, cancel, &id, &created, &validated);

	if (r < 0) {
		int64_t wait = retry_backoff_ms(++s->failures, EVSUB_BACKOFF_CAP_MS, -1);

		s->retry_ms = retry_mono_ms() + wait;
		if (r != -ECANCELED)
			log_errno(r, "%s: cannot subscribe (again in %lld s)", s->label,
				  (long long)(wait / 1000));
		return;
	}
	s->failures = 0;
	validated = validated || pushbus_was_validated(s->bus, id);
	pthread_mutex_lock(&s->lock);
	s->id = id;
	s->validated = validated;
	pthread_mutex_unlock(&s->lock);
	if (validated) {
		log_info("%s are pushed by %s subscription %lld", s->label,
			 created ? "new" : "existing", (long long)id);
		return;
	}
	s->retry_ms = retry_mono_ms() + EVSUB_RECHECK_MS;
	log_info("%s: subscription %lld is %s; it pushes once the platform validated the "
		 "endpoint", s->label, (long long)id, created ? "posted" : "listed");
}

/* A validation heard of after the post's answer (s->lock held). */
static void hear(struct evsub *s)
{
	if (!s->validated && s->id > 0 && pushbus_was_validated(s->bus, s->id)) {
		s->validated = true;
		log_info("%s are pushed by subscription %lld", s->label, (long long)s->id);
	}
}

bool evsub_keep(struct evsub *s, struct altinn *a, const char *endpoint, const char *subject,
		const atomic_bool *cancel)
{
	bool validated;

	pthread_mutex_lock(&s->lock);
	hear(s);
	validated = s->validated;
	pthread_mutex_unlock(&s->lock);
	if (validated || retry_mono_ms() < s->retry_ms)
		return validated;
	subscribe(s, a, endpoint, subject, cancel);
	pthread_mutex_lock(&s->lock);
	validated = s->validated;
	pthread_mutex_unlock(&s->lock);
	return validated;
}

void evsub_state(struct evsub *s, int64_t *ret_id, bool *ret_validated)
{
	pthread_mutex_lock(&s->lock);
	hear(s);
	*ret_id = s->id;
	*ret_validated = s->validated;
	pthread_mutex_unlock(&s->lock);
}
