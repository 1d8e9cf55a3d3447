/* api_broker.c - the calls of Altinn Broker, v1 (see api_broker.h).
 *
 * Every call is one request, sorted by api_app.c's one classifier: a
 * POST (initialize, upload) whose answer is lost or 5xx is unknown,
 * since Broker may have done it; a 429 is "later", with its
 * Retry-After. The sender of a transfer is the organisation of the
 * token in hand, read from the token's own claims (Broker takes the
 * caller's organisation the same way: ClaimsPrincipalExtensions.cs). */
#include "api_broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "altinn_i.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "json_broker.h"
#include "secretfile.h"
#include "xalloc.h"

/* {broker_url or platform/broker/api/v1}/filetransfer{tail} */
static char *url_of(struct altinn *a, const char *tail)
{
	if (a->cfg->broker_url)
		return xasprintf("%s/filetransfer%s", a->cfg->broker_url, tail);
	return xasprintf("%s/broker/api/v1/filetransfer%s", a->cfg->platform, tail);
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

/* The payload of a JWT, decoded (malloc'd, *ret_len bytes), or NULL. */
static char *jwt_payload(const char *token, size_t *ret_len)
{
	const char *p = strchr(token, '.'), *end;
	unsigned bits = 0, nbits = 0;
	size_t n = 0;
	char *out;

	if (!p)
		return NULL;
	end = strchr(++p, '.');
	if (!end)
		return NULL;
	out = xmalloc((size_t)(end - p) + 1);
	for (; p < end; p++) {
		int v = b64url_value(*p);

		if (v < 0)
			break;
		bits = bits << 6 | (unsigned)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[n++] = (char)(bits >> nbits & 0xff);
		}
	}
	out[n] = '\0';
	*ret_len = n;
	return out;
}

int broker_sender(struct altinn *a, char **ret)
{
	char *token = NULL, *payload;
	uint64_t gen;
	size_t len;
	int r = auth_token(a->auth, &token, &gen);

	if (r < 0)
		return r;
	if (!token)
		return -EACCES;
	payload = jwt_payload(token, &len);
	r = payload ? jsn_broker_token_org(payload, len, ret) : -EACCES;
	free(payload);
	secretfile_free(token);
	return r;
}

int broker_initialize(struct altinn *a, const struct broker_init *in, char **ret_id,
		      struct app_answer *ans)
{
	char *body = jsn_broker_init_body(in);
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
	if (r == 0 && jsn_broker_id(res.body, res.body_len, ret_id) < 0) {
		/* made, but we cannot tell which: the same as no answer */
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary),
			 "initialize: HTTP %ld without a fileTransferId", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(body);
	return r;
}

int broker_upload(struct altinn *a, const char *id, int fd, uint64_t size,
		  struct app_answer *ans)
{
	char *tail = xasprintf("/%s/upload", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = url_of(a, tail),
		.method = "POST",
		.content_type = "application/octet-stream",
		.has_body_fd = true,
		.body_fd = fd,
		.body_len = (size_t)size,
		.stall_timeout = a->cfg->write_timeout,
		.bulk = true,
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, true, "upload", ans);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int broker_overview(struct altinn *a, const char *id, char **ret_doc, char **ret_status,
		    char **ret_text, struct app_answer *ans)
{
	char *tail = xasprintf("/%s", id), *name = NULL, *ref = NULL;
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "overview", ans);
	if (r == 0 && (!res.body || jsn_broker_overview(res.body, res.body_len, ret_status,
							ret_text, &name, &ref) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "overview: not an overview");
		r = -EIO;
	}
	if (r == 0) {
		*ret_doc = res.body;
		res.body = NULL;
	}
	free(name);
	free(ref);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

/* Unix ms as Broker's DateTimeOffset query value (UTC) */
static void iso_ms(int64_t ms, char buf[64])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Is transfer id the one want describes? 1, 0, or -errno. */
static int matches(struct altinn *a, const char *id, const struct broker_match *want,
		   struct app_answer *ans)
{
	char *tail = xasprintf("/%s", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "overview", ans);
	if (r == 0)
		r = res.body ? jsn_broker_matches(res.body, res.body_len, want) : -EIO;
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int broker_find(struct altinn *a, const char *resource, int64_t from_ms, int64_t to_ms,
		const struct broker_match *want, char **ret_id, struct app_answer *ans)
{
	char from[64], to[64], *res_e = http_escape(resource), *tail, **ids = NULL;
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .result = &res };
	const char *found = NULL;
	int r;

	iso_ms(from_ms, from);
	iso_ms(to_ms, to);
	tail = xasprintf("?resourceId=%s&role=Sender&from=%s&to=%s", res_e, from, to);
	req.url = url_of(a, tail);
	r = http_request(a->http, &req);
	r = app_conclude(r, &res, false, "search", ans);
	if (r == 0 && (!res.body || jsn_broker_ids(res.body, res.body_len, &ids) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "search: not a list of ids");
		r = -EIO;
	}
	/* newest first: the last match is the oldest */
	for (size_t i = 0; r == 0 && ids[i]; i++) {
		int m = want->taken && want->taken(want->ctx, ids[i]) ? 0
								       : matches(a, ids[i], want, ans);

		if (m == 1)
			found = ids[i];
		else if (m < 0)
			r = m;
	}
	if (r == 0 && !found)
		r = -ENOENT;
	if (r == 0)
		*ret_id = xstrdup(found);
	for (size_t i = 0; ids && ids[i]; i++)
		free(ids[i]);
	free(ids);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	free(res_e);
	return r;
}
