/* api_action.c - the service owner's actions on one instance, as calls.
 *
 * Three App API calls that the ctl family offers as commands: move the
 * process on (PUT process/next, with an optional action), confirm the
 * instance (POST complete) and set its substatus (PUT substatus). Each is
 * one request with write_timeout as its deadline; process/next is never
 * repeated, because a retry after a lost answer could move the process
 * twice. What the commands look like, and what is remembered of them, is
 * the family's (daemon/ctl/); here is only what goes over the wire. */
#include "altinn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "xalloc.h"

static char *instance_url(struct altinn *a, const char *org, const char *app, const char *party,
			  const char *guid, const char *tail)
{
	char *base = config_app_base(a->cfg, org);
	char *url = xasprintf("%s/%s/%s/instances/%s/%s/%s", base, org, app, party, guid, tail);

	free(base);
	return url;
}

/* One App API call; 0 or -errno, with the answer in *res. */
static int call(struct altinn *a, const char *method, char *url, const char *json_body,
		bool once, struct http_result *res)
{
	struct http_request req = {
		.url = url,
		.method = method,
		.content_type = json_body ? "application/json" : NULL,
		.body = json_body,
		.body_len = json_body ? strlen(json_body) : 0,
		.stall_timeout = a->cfg->write_timeout,
		.result = res,
		.once = once,
	};
	int r = http_request(a->http, &req);

	free(url);
	return r;
}

int altinn_instance_action(struct altinn *a, const struct alt_action *act,
			   struct alt_action_reply *ret)
{
	struct http_result res = { 0 };
	const char *method = "PUT", *tail;
	char *body = NULL;
	bool once = false;
	int r;

	memset(ret, 0, sizeof(*ret));
	switch (act->verb) {
	case ALT_ACTION_NEXT:
		body = act->arg ? json_action_body(act->arg) : NULL;
		if (act->arg && !body)
			return -EINVAL;
		tail = "process/next";
		once = true;
		break;
	case ALT_ACTION_COMPLETE:
		method = "POST";
		tail = "complete";
		break;
	case ALT_ACTION_SUBSTATUS:
		body = act->arg ? json_substatus_body(act->arg, act->description) : NULL;
		if (!body)
			return -EINVAL;
		tail = "substatus";
		break;
	default:
		return -EINVAL;
	}
	r = call(a, method, instance_url(a, act->org, act->app, act->party, act->guid, tail), body,
		 once, &res);
	ret->status = res.status;
	if (r == 0 && act->verb == ALT_ACTION_NEXT)
		json_process_summary(res.body, res.body_len, ret->what, sizeof(ret->what));
	if (res.status >= 300 || (r < 0 && res.status == 0))
		json_problem_text(res.body, res.body_len, ret->message, sizeof(ret->message));
	http_result_clear(&res);
	free(body);
	return r;
}
