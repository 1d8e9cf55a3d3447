/* api_events.h - the Events API calls the events module makes.
 *
 * Polling an app's events (GET {platform}/events/api/v1/app/{org}/{app})
 * and making sure a webhook subscription exists (GET and POST
 * {platform}/events/api/v1/subscriptions). Like altinn.h: 0 or -errno
 * from the one table, ret_* untouched on failure. A set cancel flag ends
 * a request under way with -ECANCELED. */
#ifndef ALTINNFS_API_EVENTS_H
#define ALTINNFS_API_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

struct altinn;

/* One page of at most size events of org/app, in the platform's order:
 * after the event id `after`, or (after NULL) from the ISO time `from`. */
int altinn_events_poll(struct altinn *a, const char *org, const char *app, const char *after,
		       const char *from, unsigned size, const atomic_bool *cancel,
		       struct json_event **ret, size_t *ret_n);

/* Finds our validated subscription that pushes events of source (the
 * app's URL) to endpoint, or posts it: new, or one the platform has not
 * validated (a post sends the validation event again). *ret_created
 * tells whether it posted, *ret_validated what the platform says. */
int altinn_events_subscribe(struct altinn *a, const char *endpoint, const char *source,
			    const atomic_bool *cancel, int64_t *ret_id, bool *ret_created,
			    bool *ret_validated);

/* The same for any filter (json.h): a resource's events, as Broker's and
 * Correspondence's are subscribed to (resourceFilter, subjectFilter). */
int altinn_events_subscribe_for(struct altinn *a, const char *endpoint,
				const struct json_sub_filter *f, const atomic_bool *cancel,
				int64_t *ret_id, bool *ret_created, bool *ret_validated);

/* The doctor's calls (altinnfs --check), one request each. On an error
 * answer err gets its status and the platform's words ("400 Missing or
 * invalid endpoint ..."); it is left alone otherwise. */
/* Our subscription pushing every event of source to endpoint, from GET
 * /subscriptions; -ENOENT when there is none. */
int altinn_events_find_subscription(struct altinn *a, const char *endpoint, const char *source,
				    int64_t *ret_id, bool *ret_validated, char *err, size_t errlen);
/* POST /subscriptions: a new one, or the identical one there is; either
 * way the platform sends its validation event to endpoint again. */
int altinn_events_post_subscription(struct altinn *a, const char *endpoint, const char *source,
				    int64_t *ret_id, bool *ret_validated, char *err, size_t errlen);
/* The same two for any filter (a Broker resource's). */
int altinn_events_find_subscription_for(struct altinn *a, const char *endpoint,
					const struct json_sub_filter *f, int64_t *ret_id,
					bool *ret_validated, char *err, size_t errlen);
int altinn_events_post_subscription_for(struct altinn *a, const char *endpoint,
					const struct json_sub_filter *f, int64_t *ret_id,
					bool *ret_validated, char *err, size_t errlen);
/* DELETE /subscriptions/{id}. */
int altinn_events_delete_subscription(struct altinn *a, int64_t id, char *err, size_t errlen);

#endif
