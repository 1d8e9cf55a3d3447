/* api_corr.c - the calls of Altinn Correspondence, v1 (see api_corr.h).
 *
 * Every call is one request, sorted by api_app.c's one classifier: an
 * initialize whose answer is lost or 5xx is unknown, since the platform
 * may have made it; the caller then asks again with the same
 * idempotentKey, and a 409 sends it to corr_find_by_key. */
#include "api_corr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
		    const char *key, const char *const *attachments, char **ret_id,
		    char **ret_status, struct app_answer *ans)
{
	char *body = jsn_corr_init_body(prepared, recipient_urn, key, attachments);
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

int corr_details(struct altinn *a, const char *id, char **ret_status, char **ret_changed,
		 struct app_answer *ans)
{
	char *tail = xasprintf("/%s/details", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = url_of(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "details", ans);
	if (r == 0 && (!res.body ||
		       jsn_corr_details(res.body, res.body_len, ret_status, ret_changed) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "details: no status");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int corr_events_poll(struct altinn *a, const char *resource, const char *after, unsigned size,
		     struct corr_event **ret, size_t *ret_n, struct app_answer *ans)
{
	char *urn = xasprintf("urn:altinn:resource:%s", resource);
	char *urn_e = http_escape(urn), *after_e = http_escape(after ? after : "0");
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = xasprintf("%s/events/api/v1/events?resource=%s&after=%s&size=%u",
				 a->cfg->platform, urn_e, after_e, size),
		.accept = "application/cloudevents+json, application/json",
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "events", ans);
	if (r == 0 && (!res.body || jsn_corr_events(res.body, res.body_len, ret, ret_n) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "events: not a list of events");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(urn);
	free(urn_e);
	free(after_e);
	return r;
}

/* {platform}/correspondence/api/v1/attachment{tail} */
static char *att_url(struct altinn *a, const char *tail)
{
	return xasprintf("%s/correspondence/api/v1/attachment%s", a->cfg->platform, tail);
}

int corr_attachment_name_ok(const char *name, char *err, size_t errlen)
{
	static const char *const types[] = { ".doc", ".xls", ".docx", ".xlsx", ".ppt", ".pps",
					     ".zip", ".pdf", ".html", ".txt", ".xml", ".jpg",
					     ".jpeg", ".gif", ".bmp", ".png", ".json", ".csv",
					     ".dcm", ".dicom" };
	static const char *const devices[] = { "CON", "PRN", "AUX", "NUL" };
	const char *dot = strrchr(name, '.');
	size_t base = dot ? (size_t)(dot - name) : strlen(name);
	bool typed = false;

	if (strlen(name) > 255) {
		snprintf(err, errlen, "attachments/%.60s...: a name longer than 255", name);
		return -EINVAL;
	}
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		typed |= strcasecmp(dot, types[i]) == 0;
	if (!typed) {
		snprintf(err, errlen,
			 "attachments/%s: the platform takes no such file type (pdf, txt, xml, "
			 "json, csv, png, jpg, docx, xlsx, zip, html ... as docs/correspondence.md "
			 "lists)", name);
		return -EINVAL;
	}
	for (const char *p = name; *p; p++)
		if (strchr("<>:\"/\\|?*", *p) || (unsigned char)*p < 0x20) {
			snprintf(err, errlen, "attachments/%s: the character '%c' is not allowed",
				 name, isprint((unsigned char)*p) ? *p : '?');
			return -EINVAL;
		}
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (base == 3 && strncasecmp(name, devices[i], 3) == 0)
			goto device;
	if (base == 4 && (strncasecmp(name, "COM", 3) == 0 || strncasecmp(name, "LPT", 3) == 0) &&
	    name[3] >= '1' && name[3] <= '9')
		goto device;
	return 0;
device:
	snprintf(err, errlen, "attachments/%s: a Windows device name", name);
	return -EINVAL;
}

int corr_attachment_create(struct altinn *a, const char *resource, const char *file_name,
			   const char *reference, const char *md5, char **ret_id,
			   struct app_answer *ans)
{
	char *body = jsn_corr_attachment_body(resource, file_name, reference, md5);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = att_url(a, ""),
		.method = "POST",
		.content_type = "application/json",
		.body = body,
		.body_len = strlen(body),
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, true, "attachment", ans);
	if (r == 0 && (!res.body || jsn_corr_string_id(res.body, res.body_len, ret_id) < 0)) {
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary),
			 "attachment: HTTP %ld without an id", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(body);
	return r;
}

int corr_attachment_upload(struct altinn *a, const char *id, int fd, uint64_t size,
			   struct app_answer *ans)
{
	char *tail = xasprintf("/%s/upload", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = att_url(a, tail),
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

	r = app_conclude(r, &res, true, "attachment upload", ans);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int corr_attachment_status(struct altinn *a, const char *id, char **ret_status, char **ret_text,
			   struct app_answer *ans)
{
	char *tail = xasprintf("/%s", id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = { .url = att_url(a, tail), .result = &res };
	int r = http_request(a->http, &req);

	r = app_conclude(r, &res, false, "attachment overview", ans);
	if (r == 0 && (!res.body ||
		       jsn_corr_status_text(res.body, res.body_len, ret_status, ret_text) < 0)) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "attachment overview: no status");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}
