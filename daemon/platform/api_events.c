/* api_events.c - the Events API endpoints as plain calls (see api_events.h).
 *
 * The polling URL is always built here from the cursor, never taken
 * from the platform's `next` header: the platform appends the other
 * parameters to it without re-encoding them (altinn-api.md 4.3), and the
 * cursor is what the events module persists anyway. */
#include "api_events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

#define EVENTS_ACCEPT "application/json, application/cloudevents+json"

/* GET, POST or DELETE url; the 2xx body in *ret_body (malloc'd,
 * NUL-terminated). On an error answer, err (when not NULL) gets its
 * status and the start of its body, the platform's reason in words. */
static int call_why(struct altinn *a, const char *method, const char *url, const char *body,
		    const atomic_bool *cancel, char **ret_body, size_t *ret_len, char *err,
		    size_t errlen)
{
	struct http_result res = { 0 };
	struct http_request req = {
		.url = url,
		.accept = EVENTS_ACCEPT,
		.restartable = true,
		.cancel = cancel,
		.method = method,
		.content_type = body ? "application/json" : NULL,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.result = &res,
	};
	int r = http_request(a->http, &req);

	if (r < 0) {
		if (res.status >= 400 && res.body && res.body_len)
			log_warn("%s \"%s\": %ld %.200s", method ? method : "GET", url, res.status,
				 res.body);
		if (err && res.status)
			snprintf(err, errlen, "%ld%s%.200s", res.status,
				 res.body && res.body_len ? " " : "", res.body ? res.body : "");
		http_result_clear(&res);
		return r;
	}
	*ret_len = res.body ? res.body_len : 0;
	*ret_body = res.body ? res.body : xstrdup("");
	res.body = NULL;
	http_result_clear(&res);
	return 0;
}

static int call(struct altinn *a, const char *method, const char *url, const char *body,
		const atomic_bool *cancel, char **ret_body, size_t *ret_len)
{
	return call_why(a, method, url, body, cancel, ret_body, ret_len, NULL, 0);
}

int altinn_events_poll(struct altinn *a, const char *org, const char *app, const char *after,
		       const char *from, unsigned size, const atomic_bool *cancel,
		       struct json_event **ret, size_t *ret_n)
{
	char *org_e = http_escape(org), *app_e = http_escape(app);
	char *pos = http_escape(after ? after : from ? from : "0");
	char *url, *body;
	size_t len;
	int r;

	url = xasprintf("%s/events/api/v1/app/%s/%s?%s=%s&size=%u", a->cfg->platform, org_e,
			app_e, after || !from ? "after" : "from", pos, size);
	free(org_e);
	free(app_e);
	free(pos);
	r = call(a, NULL, url, NULL, cancel, &body, &len);
	if (r == 0) {
		r = json_parse_events(body, len, ret, ret_n);
		free(body);
	}
	free(url);
	return r;
}

int altinn_events_subscribe(struct altinn *a, const char *endpoint, const char *source,
			    const atomic_bool *cancel, int64_t *ret_id, bool *ret_created,
			    bool *ret_validated)
{
	const struct json_sub_filter f = { .source = source };

	return altinn_events_subscribe_for(a, endpoint, &f, cancel, ret_id, ret_created,
					   ret_validated);
}

int altinn_events_subscribe_for(struct altinn *a, const char *endpoint,
				const struct json_sub_filter *f, const atomic_bool *cancel,
				int64_t *ret_id, bool *ret_created, bool *ret_validated)
{
	char *url = xasprintf("%s/events/api/v1/subscriptions", a->cfg->platform);
	char *body, *req;
	bool validated = false;
	int64_t id;
	size_t len;
	int r;

	r = call(a, NULL, url, NULL, cancel, &body, &len);
	if (r < 0)
		goto out_free_url;
	r = json_find_subscription_for(body, len, endpoint, f, &id, &validated);
	free(body);
	if (r == 0 && validated) {
		*ret_id = id;
		*ret_created = false;
		*ret_validated = true;
		goto out_free_url;
	}
	/* None, or one the platform never validated: it sends the validation
	 * event only when a subscription is posted, and gives up after about
	 * eight minutes (altinn-events SubscriptionService
	 * CompleteSubscriptionCreation, ValidationQueuePolicy). Posting the
	 * same one again returns it and validates it again. */
	if (r != 0 && r != -ENOENT)
		goto out_free_url;
	req = json_subscription_request_for(endpoint, f);
	r = call(a, "POST", url, req, cancel, &body, &len);
	free(req);
	if (r < 0)
		goto out_free_url;
	r = json_subscription_id(body, len, &id, &validated);
	free(body);
	if (r == 0) {
		*ret_id = id;
		*ret_created = true;
		*ret_validated = validated;
	}
out_free_url:
	free(url);
	return r;
}

int altinn_events_find_subscription(struct altinn *a, const char *endpoint, const char *source,
				    int64_t *ret_id, bool *ret_validated, char *err, size_t errlen)
{
	const struct json_sub_filter f = { .source = source };

	return altinn_events_find_subscription_for(a, endpoint, &f, ret_id, ret_validated, err,
						   errlen);
}

int altinn_events_find_subscription_for(struct altinn *a, const char *endpoint,
					const struct json_sub_filter *f, int64_t *ret_id,
					bool *ret_validated, char *err, size_t errlen)
{
	char *url = xasprintf("%s/events/api/v1/subscriptions", a->cfg->platform), *body;
	size_t len;
	int r;

	r = call_why(a, NULL, url, NULL, NULL, &body, &len, err, errlen);
	free(url);
	if (r < 0)
		return r;
	r = json_find_subscription_for(body, len, endpoint, f, ret_id, ret_validated);
	free(body);
	return r;
}

int altinn_events_post_subscription(struct altinn *a, const char *endpoint, const char *source,
				    int64_t *ret_id, bool *ret_validated, char *err, size_t errlen)
{
	const struct json_sub_filter f = { .source = source };

	return altinn_events_post_subscription_for(a, endpoint, &f, ret_id, ret_validated, err,
						   errlen);
}

int altinn_events_post_subscription_for(struct altinn *a, const char *endpoint,
					const struct json_sub_filter *f, int64_t *ret_id,
					bool *ret_validated, char *err, size_t errlen)
{
	char *url = xasprintf("%s/events/api/v1/subscriptions", a->cfg->platform);
	char *req = json_subscription_request_for(endpoint, f), *body;
	size_t len;
	int r;

	r = call_why(a, "POST", url, req, NULL, &body, &len, err, errlen);
	free(req);
	free(url);
	if (r < 0)
		return r;
	r = json_subscription_id(body, len, ret_id, ret_validated);
	free(body);
	return r;
}

int altinn_events_delete_subscription(struct altinn *a, int64_t id, char *err, size_t errlen)
{
	char *url = xasprintf("%s/events/api/v1/subscriptions/%lld", a->cfg->platform,
			      (long long)id), *body;
	size_t len;
	int r;

	r = call_why(a, "DELETE", url, NULL, NULL, &body, &len, err, errlen);
	free(url);
	if (r == 0)
		free(body);
	return r;
}
