/* api_app.c - the App API writes and Storage looks of the outbox.
 *
 * Every call here is one request whose outcome is sorted into done,
 * refused, not done, or unknown (see api_app.h): the outbox's journal
 * needs to know which, because a step whose outcome is unknown must be
 * looked up on the platform before it is tried again. A 5xx answer to a
 * POST or PUT counts as unknown (a gateway may time out after the app
 * did the work); a 429 as not done (rate limits refuse before work). */
#include "api_app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

/* Query pages read while looking for an instance: at 100 a page, more
 * than anyone creates for one owner in the window we look at. */
#define APP_MAX_FIND_PAGES 50

void app_answer_clear(struct app_answer *ans)
{
	if (!ans)
		return;
	free(ans->title);
	free(ans->detail);
	memset(ans, 0, sizeof(*ans));
	ans->retry_after_ms = -1;
}

/* Sorts a finished request into an outcome and fills *ans. mutating:
 * the request changes something, so a lost answer leaves it unknown. */
static int conclude(int r, const struct http_result *res, bool mutating, const char *what,
		    struct app_answer *ans)
{
	long st = res->status;
	char *msg;

	app_answer_clear(ans);
	ans->status = st;
	ans->retry_after_ms = res->retry_after_ms;
	if (r == 0) {
		ans->outcome = APP_OK;
		snprintf(ans->summary, sizeof(ans->summary), "%s: %ld", what, st);
		return 0;
	}
	if (st >= 400 && st < 600)
		json_outbox_problem(res->body, res->body_len, &ans->title, &ans->detail);
	if (st == 429 || st == 401 || (!mutating && (st == 0 || st >= 500 || st == 408)))
		ans->outcome = APP_LATER;
	else if (st >= 400 && st < 500 && st != 408)
		ans->outcome = APP_REFUSED;
	else
		ans->outcome = APP_UNKNOWN;
	if (r == -ECANCELED)
		ans->outcome = mutating ? APP_UNKNOWN : APP_LATER;
	msg = ans->title && ans->detail ? xasprintf("%s: %s", ans->title, ans->detail)
	      : xstrdup(ans->title ? ans->title : ans->detail ? ans->detail : "");
	if (st)
		snprintf(ans->summary, sizeof(ans->summary), "%s: HTTP %ld%s%s", what, st,
			 *msg ? ": " : "", msg);
	else
		snprintf(ans->summary, sizeof(ans->summary), "%s: %s", what, strerror(-r));
	free(msg);
	return r;
}

int app_conclude(int r, const struct http_result *res, bool mutating, const char *what,
		 struct app_answer *ans)
{
	return conclude(r, res, mutating, what, ans);
}

static char *app_url(struct altinn *a, const char *org, const char *app, const char *tail)
{
	char *base = config_app_base(a->cfg, org);
	char *url = xasprintf("%s/%s/%s/%s", base, org, app, tail);

	free(base);
	return url;
}

int app_create_instance(struct altinn *a, const char *org, const char *app, const char *owner_key,
			const char *owner_value, struct json_outbox_instance *ret,
			struct app_answer *ans)
{
	char *body = json_outbox_template(owner_key, owner_value);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = app_url(a, org, app, "instances"),
		.method = "POST",
		.stall_timeout = a->cfg->write_timeout,
		.content_type = "application/json",
		.body = body,
		.body_len = strlen(body),
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = conclude(r, &res, true, "create instance", ans);
	if (r == 0 && json_outbox_parse_instance(res.body, res.body_len, ret) < 0) {
		/* created, but we cannot tell which: the same as no answer */
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary),
			 "create instance: HTTP %ld with an answer that is not an instance", res.status);
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	free(body);
	return r;
}

/* The name as the app must be given it so that Storage keeps the
 * original: Storage URL-decodes the name it gets twice (altinn-storage
 * DataElementHelper.GetStream and DataController, POST and PUT), so '%'
 * and '+' are encoded twice. '"' is too: app-lib hands the name to a
 * .NET header setter that throws on an inner quote (the app answers 500),
 * and encoded it is no quote until Storage decodes it. */
static char *storage_encode(const char *name)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = name; *p; p++)
		n += strchr("%+\"", *p) ? 7 : 1;
	out = o = xmalloc(n + 1);
	for (const char *p = name; *p; p++) {
		if (*p == '%')
			o += sprintf(o, "%%2525");
		else if (*p == '+')
			o += sprintf(o, "%%252B");
		else if (*p == '"')
			o += sprintf(o, "%%2522");
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

static char *base64(const char *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i;
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = tab[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = tab[p[i + 2] & 63];
	}
	if (i < n) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[(p[i] & 3) << 4 | (i + 1 < n ? p[i + 1] >> 4 : 0)];
		*o++ = i + 1 < n ? tab[(p[i + 1] & 15) << 2] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* The plain filename= value for a name: quoted as is when it is
 * printable ASCII without '\\', else one RFC 2047 B-encoded word. The
 * replace (PUT) path reads only this parameter, through
 * Microsoft.Net.Http.Headers' ContentDispositionHeaderValue.FileName,
 * whose getter decodes "=?utf-8?B?...?=" (GetName -> TryDecodeMime in
 * dotnet/aspnetcore src/Http/Headers/src/ContentDispositionHeaderValue.cs)
 * and otherwise only removes the quotes. */
static char *plain_filename(const char *enc)
{
	bool plain = strncmp(enc, "=?", 2) != 0;
	char *b64, *v;

	for (const char *p = enc; *p && plain; p++)
		plain = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '\\';
	if (plain)
		return xasprintf("\"%s\"", enc);
	b64 = base64(enc);
	v = xasprintf("\"=?utf-8?B?%s?=\"", b64);
	free(b64);
	return v;
}

/* The extension table is a subset of app-lib's MimeTypeMap
 * (Helpers/MimeTypeMap.cs): an upload whose Content-Type is neither
 * application/octet-stream nor the type of its extension is refused
 * (DataRestrictionValidation). Extensions the map lacks (.log, .md, .msg
 * among them) are application/octet-stream there, and so here. */
#define OCTET_STREAM "application/octet-stream"

static const struct {
	const char *ext, *type;
} mime_types[] = {
	{ "7z", "application/x-7z-compressed" }, { "bmp", "image/bmp" }, { "csv", "text/csv" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "dot", "application/msword" }, { "eml", "message/rfc822" }, { "gif", "image/gif" },
	{ "gz", "application/x-gzip" }, { "htm", "text/html" }, { "html", "text/html" },
	{ "ico", "image/x-icon" }, { "jpe", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "jpg", "image/jpeg" }, { "js", "application/javascript" },
	{ "json", "application/json" }, { "m4a", "audio/m4a" },
	{ "mp3", "audio/mpeg" }, { "mp4", "video/mp4" },
	{ "odp", "application/vnd.oasis.opendocument.presentation" },
	{ "ods", "application/vnd.oasis.opendocument.spreadsheet" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "p7s", "application/pkcs7-signature" }, { "pdf", "application/pdf" },
	{ "png", "image/png" }, { "ppt", "application/vnd.ms-powerpoint" },
	{ "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
	{ "rtf", "application/rtf" }, { "svg", "image/svg+xml" }, { "tar", "application/x-tar" },
	{ "tif", "image/tiff" }, { "tiff", "image/tiff" }, { "txt", "text/plain" },
	{ "wav", "audio/wav" }, { "webp", "image/webp" }, { "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "xml", "application/xml" }, { "xsd", "text/xml" }, { "xsl", "text/xml" },
	{ "zip", "application/zip" },
};

bool app_contributor(const struct alt_data_type *t, const char *org)
{
	char **list = t->allowed_contributors;

	if (!list || !list[0])
		return true;
	/* app-lib's AllowedContributorsHelper: an "org:" entry naming the
	 * service owner, or "orgno:" its number (which the daemon does not
	 * know, so such a type counts as not ours: the stricter reading);
	 * "app:owned" matches no caller */
	for (size_t i = 0; list[i]; i++)
		if (strncasecmp(list[i], "org:", 4) == 0 && strcasecmp(list[i] + 4, org) == 0)
			return true;
	return false;
}

const char *app_content_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');

	/* as the platform's Path.GetExtension: "a." and "a" have none */
	if (!dot || dot[1] == '\0')
		return NULL;
	for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
		if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return OCTET_STREAM;
}

/* RFC 6266: the platform takes ASCII headers only. The upload (POST)
 * path prefers filename* (RFC 8187, percent-encoded UTF-8); the replace
 * (PUT) path reads only filename; both get the name encoded for Storage
 * (storage_encode), so the element keeps the file's name. */
char *app_content_disposition(const char *filename)
{
	char *enc = storage_encode(filename), *star = http_escape(enc);
	char *plain = plain_filename(enc);
	char *v = xasprintf("attachment; filename=%s; filename*=UTF-8''%s", plain, star);

	free(plain);
	free(star);
	free(enc);
	return v;
}

/* One file as the body of a data request (POST new, PUT replace), with
 * its Content-Disposition; the answer is left in *res for the caller. */
static int send_file(struct altinn *a, const char *org, const char *app, const char *tail,
		     const char *method, bool once, const char *filename,
		     const char *content_type, int fd, uint64_t size,
		     void (*on_send)(void *ctx, uint64_t off, const char *p, size_t n),
		     void *send_ctx, const char *step, struct http_result *res,
		     struct app_answer *ans)
{
	char *disp = app_content_disposition(filename);
	char *header = xasprintf("Content-Disposition: %s", disp);
	const char *headers[] = { header, NULL };
	struct http_request req = {
		.url = app_url(a, org, app, tail),
		.method = method,
		.stall_timeout = a->cfg->write_timeout,
		.content_type = content_type,
		.has_body_fd = true,
		.body_fd = fd,
		.body_len = size,
		.on_send = on_send,
		.send_ctx = send_ctx,
		.headers = headers,
		.bulk = true,
		.once = once,
		.result = res,
	};
	int r = http_request(a->http, &req);

	r = conclude(r, res, true, step, ans);
	free((char *)req.url);
	free(header);
	free(disp);
	return r;
}

/* The name the platform stored, when it is not the one sent (NULL). */
static char *stored_name(char *got, const char *filename)
{
	if (got && strcmp(got, filename) != 0) {
		log_warn("the platform stored \"%s\" as \"%s\"", filename, got);
		return got;
	}
	free(got);
	return NULL;
}

int app_upload(struct altinn *a, const char *org, const char *app, const char *instance_id,
	       const char *data_type, const char *filename, const char *content_type, int fd,
	       uint64_t size, void (*on_send)(void *ctx, uint64_t off, const char *p, size_t n),
	       void *send_ctx, char **ret_id, char **ret_stored, struct app_answer *ans)
{
	char *got = NULL;
	char *type = http_escape(data_type);
	char *tail = xasprintf("instances/%s/data?dataType=%s", instance_id, type);
	struct http_result res = { .retry_after_ms = -1 };
	int r = send_file(a, org, app, tail, "POST", false, filename, content_type, fd, size,
			  on_send, send_ctx, "upload", &res, ans);

	if (r == 0 && json_outbox_parse_element_id(res.body, res.body_len, ret_id, &got) < 0) {
		ans->outcome = APP_UNKNOWN;
		snprintf(ans->summary, sizeof(ans->summary),
			 "upload: HTTP %ld with an answer that is not a data element", res.status);
		r = -EIO;
	}
	got = r == 0 ? stored_name(got, filename) : (free(got), NULL);
	if (ret_stored)
		*ret_stored = got;
	else
		free(got);
	http_result_clear(&res);
	free(tail);
	free(type);
	return r;
}

int app_process_next(struct altinn *a, const char *org, const char *app, const char *instance_id,
		     char **ret_task, struct app_answer *ans)
{
	char *tail = xasprintf("instances/%s/process/next", instance_id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = app_url(a, org, app, tail),
		.method = "PUT",
		.stall_timeout = a->cfg->write_timeout,
		.once = true, /* a second next would move the process twice */
		.result = &res,
	};
	bool ended = false;
	char *task = NULL;
	int r = http_request(a->http, &req);

	r = conclude(r, &res, true, "process/next", ans);
	if (r == 0 && json_outbox_parse_process(res.body, res.body_len, &task, &ended) == 0)
		*ret_task = task; /* an unreadable 200 still moved the process */
	else if (r == 0)
		*ret_task = NULL;
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int app_get_instance(struct altinn *a, const char *instance_id, struct json_outbox_instance *ret,
		     struct app_answer *ans)
{
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = xasprintf("%s/instances/%s", a->storage, instance_id),
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = conclude(r, &res, false, "look up instance", ans);
	if (r == 0 && json_outbox_parse_instance(res.body, res.body_len, ret) < 0) {
		ans->outcome = APP_LATER;
		snprintf(ans->summary, sizeof(ans->summary), "look up instance: unreadable answer");
		r = -EIO;
	}
	http_result_clear(&res);
	free((char *)req.url);
	return r;
}

/* A `next` link on our own platform: its path and query after the
 * Storage base, so the token never goes to another host. */
static char *rebase(struct altinn *a, const char *next)
{
	const char *p = strstr(next, "/storage/api/v1/");

	return p ? xasprintf("%s%s", a->storage, p + strlen("/storage/api/v1")) : NULL;
}

static char *find_url(struct altinn *a, const char *org, const char *app, const char *party_id,
		      int64_t since_ms)
{
	struct timespec ts = { (time_t)(since_ms / 1000), 0 };
	char when[40], *gte, *app_id, *e_app, *e_gte, *url;

	json_format_time(&ts, when, sizeof(when));
	gte = xasprintf("gte:%s", when);
	app_id = xasprintf("%s/%s", org, app);
	e_app = http_escape(app_id);
	e_gte = http_escape(gte);
	url = xasprintf("%s/instances?appId=%s&created=%s&size=100%s%s", a->storage, e_app, e_gte,
			party_id ? "&instanceOwner.partyId=" : "", party_id ? party_id : "");
	free(e_gte);
	free(e_app);
	free(app_id);
	free(gte);
	return url;
}

int app_find_instances(struct altinn *a, const char *org, const char *app, const char *party_id,
		       int64_t since_ms, int (*cb)(void *ctx, struct json_outbox_instance *oi),
		       void *ctx, struct app_answer *ans)
{
	char *url = find_url(a, org, app, party_id, since_ms);
	int r = 0;

	for (int page = 0; url && page < APP_MAX_FIND_PAGES; page++) {
		struct http_result res = { .retry_after_ms = -1 };
		struct http_request req = { .url = url, .result = &res };
		struct json_outbox_instance *list = NULL;
		char *next = NULL;
		size_t n = 0;

		r = conclude(http_request(a->http, &req), &res, false, "find instances", ans);
		if (r == 0 && json_outbox_parse_page(res.body, res.body_len, &list, &n, &next) < 0) {
			ans->outcome = APP_LATER;
			snprintf(ans->summary, sizeof(ans->summary), "find instances: unreadable answer");
			r = -EIO;
		}
		http_result_clear(&res);
		for (size_t i = 0; i < n; i++) {
			if (r == 0)
				r = cb(ctx, &list[i]);
			json_outbox_instance_clear(&list[i]);
		}
		free(list);
		free(url);
		url = r == 0 && next ? rebase(a, next) : NULL;
		free(next);
		if (r != 0)
			break;
	}
	free(url);
	return r;
}

int app_replace_data(struct altinn *a, const char *org, const char *app, const char *instance_id,
		     const char *data_id, const char *filename, const char *content_type, int fd,
		     uint64_t size, char **ret_stored, struct app_answer *ans)
{
	char *tail = xasprintf("instances/%s/data/%s", instance_id, data_id);
	struct http_result res = { .retry_after_ms = -1 };
	int r = send_file(a, org, app, tail, "PUT", true, filename, content_type, fd, size, NULL,
			  NULL, "replace", &res, ans);
	char *id = NULL, *got = NULL;

	if (r == 0 && json_outbox_parse_element_id(res.body, res.body_len, &id, &got) == 0)
		got = stored_name(got, filename);
	free(id);
	if (ret_stored)
		*ret_stored = got;
	else
		free(got);

	http_result_clear(&res);
	free(tail);
	return r;
}

int app_delete_data(struct altinn *a, const char *org, const char *app, const char *instance_id,
		    const char *data_id, struct app_answer *ans)
{
	char *tail = xasprintf("instances/%s/data/%s", instance_id, data_id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = app_url(a, org, app, tail),
		.method = "DELETE",
		.stall_timeout = a->cfg->write_timeout,
		.once = true,
		.result = &res,
	};
	int r = http_request(a->http, &req);

	r = conclude(r, &res, true, "delete", ans);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}

int app_complete_instance(struct altinn *a, const char *org, const char *app,
			  const char *instance_id, struct app_answer *ans)
{
	char *tail = xasprintf("instances/%s/complete", instance_id);
	struct http_result res = { .retry_after_ms = -1 };
	struct http_request req = {
		.url = app_url(a, org, app, tail),
		.method = "POST",
		.result = &res,
	};
	int r = http_request(a->http, &req);

	/* confirming is idempotent: a lost answer is only "try again" */
	r = conclude(r, &res, false, "complete", ans);
	http_result_clear(&res);
	free((char *)req.url);
	free(tail);
	return r;
}
