/* api_corr.c - the calls of Altinn Correspondence, v1 (see api_corr.h).
 *
 * Every call is one request, sorted by api_app.c's one classifier: an
 * initialize whose answer is lost or 5xx is unknown, since the platform
 * may have made it; the caller then asks again with the same
 * idempotentKey, and a 409 sends it to corr_find_by_key. */
#include "api_corr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "json_corr.h"
#include "xalloc.h"

/* {platform}/correspondence/api/v1/correspondence{tail} */
static char *url_of(struct altinn *a, const char *tail)
{
	return xasprintf("%s/correspondence/api/v1/correspondence%s", a->cfg->platform, tail);
}

int corr_initialize(struct altinn *a, const char *prepared, const char *recipient_urn,
		    const char *key, char **ret_id, char **ret_status, struct app_answer *ans)
{
	char *body = jsn_corr_init_body(prepared, recipient_urn, key);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = url_of(a, ""),
		.method = "POST",
		.content_type = "application/json",
		.body = body,
		.body_len = strlen(body),
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, true, "initialize", ans);
	if (r == 0 && (!res.body ||
		       jsn_corr_initialized(res.body, res.body_len, ret_id, ret_status) < 0)) {
		/* made, but we cannot tell which: the same as no answer */
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary),
			 "initialize: HTTP %ld without a correspondenceId", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(body);
	return r;
}

int corr_find_by_key(struct altinn *a, const char *resource, const char *key, char **ret_id,
		     struct app_answer *ans)
{
	char *res_e = http_escape(resource), *key_e = http_escape(key);
	char *tail = xasprintf("?resourceId=%s&role=Sender&idempotentKey=%s", res_e, key_e);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "list by idempotentKey", ans);
	if (r == 0) {
		r = res.body ? jsn_corr_first_id(res.body, res.body_len, ret_id) : -EIO;
		if (r == -EIO) {
			ans->outcome = APP_LATER;
			snprintf(ans->summary, sizeof(ans->summary), "list: not a list of ids");
		}
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	free(res_e);
	free(key_e);
	return r;
}

int corr_status(struct altinn *a, const char *id, char **ret_status, struct app_answer *ans)
{
	char *tail = xasprintf("/%s", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "overview", ans);
	if (r == 0 && (!res.body || jsn_corr_status(res.body, res.body_len, ret_status) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "overview: no status");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}
