/* json_msgs.c - the JSON of the modules' conversations: the Maskinporten
 * grant and token answers, CloudEvents and subscriptions, the App API's
 * answers to the outbox and its receipts and dead letters.
 *
 * Split from json.c (the documents of the platform's tree) for size only:
 * together they are the one module that includes jansson, under the same
 * rules: every field may be absent, null or of the wrong type. */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_i.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

/* ---- auth: the Maskinporten grant's JSON and the token endpoints' answers */

/* Compact, in this order, so the grant's bytes are predictable. */
static char *dump_compact(json_t *obj)
{
	char *s;

	if (!obj)
		abort(); /* json_pack fails only without memory or on a format bug */
	s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!s)
		abort();
	return s;
}

char *json_grant_header(const char *kid)
{
	return dump_compact(json_pack("{s:s, s:s}", "alg", "RS256", "kid", kid));
}

char *json_grant_claims(const char *aud, const char *iss, const char *scope, int64_t iat,
			int64_t exp, const char *jti)
{
	return dump_compact(json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "aud", aud, "iss", iss,
				      "scope", scope, "iat", (json_int_t)iat, "exp",
				      (json_int_t)exp, "jti", jti));
}

int json_parse_mp_token(const char *text, size_t len, char **ret_token, int64_t *ret_expires_in)
{
	json_t *root = json_loadb(text, len, 0, NULL);
	const char *token, *type;
	int64_t expires_in;

	if (!json_is_object(root)) {
		json_decref(root);
		return -EIO;
	}
	token = jsn_get_str(root, "access_token");
	type = jsn_get_str(root, "token_type");
	expires_in = jsn_get_int(root, "expires_in", 0);
	if (!token || !*token || strlen(token) > ALT_MAX_TOKEN ||
	    (type && strcasecmp(type, "bearer") != 0)) {
		json_decref(root);
		return -EIO;
	}
	*ret_token = xstrdup(token);
	*ret_expires_in = expires_in > 0 ? expires_in : 0;
	json_decref(root);
	return 0;
}

int json_parse_string_answer(const char *text, size_t len, char **ret)
{
	size_t start = 0;
	json_t *v;

	while (start < len && isspace((unsigned char)text[start]))
		start++;
	if (start == len || text[start] != '"') {
		*ret = xstrndup(text, len);
		return 0;
	}
	v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	if (!json_is_string(v)) {
		json_decref(v);
		return -EIO;
	}
	*ret = xstrdup(json_string_value(v));
	json_decref(v);
	return 0;
}

/* Printable ASCII only, cut to fit: a reason shown in the log. */
static void append_printable(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	for (; s && *s && n + 1 < size; s++)
		buf[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : ' ';
	buf[n] = '\0';
}

void json_oauth_error(const char *text, size_t len, char *buf, size_t size)
{
	json_t *root = text ? json_loadb(text, len, 0, NULL) : NULL;
	const char *code = jsn_get_str(root, "error"), *desc = jsn_get_str(root, "error_description");

	buf[0] = '\0';
	if (!code) {
		code = jsn_get_str(root, "title");
		desc = jsn_get_str(root, "detail");
	}
	append_printable(buf, size, code);
	if (code && desc)
		append_printable(buf, size, ": ");
	append_printable(buf, size, desc);
	json_decref(root);
}

/* ---- events: CloudEvents from polling and the webhook; subscriptions */

/* "{partyId}/{instanceGuid}" exactly: the instance an app event is about */
static bool split_instance(const char *s, char **ret_party, char **ret_guid)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char *party, *guid;

	if (!slash)
		return false;
	party = xstrndup(s, (size_t)(slash - s));
	guid = jsn_lower_dup(slash + 1);
	if (!json_is_party_id(party) || !json_is_guid(guid)) {
		free(party);
		free(guid);
		return false;
	}
	*ret_party = party;
	*ret_guid = guid;
	return true;
}

/* resourceinstance when it names an instance (app events), else a
 * source ending in ".../instances/{partyId}/{instanceGuid}" */
static void event_instance(json_t *obj, struct json_event *ev)
{
	const char *source = jsn_get_str(obj, "source"), *p = NULL;

	if (split_instance(jsn_get_str(obj, "resourceinstance"), &ev->party, &ev->guid))
		return;
	for (const char *q = source; q && (q = strstr(q, "/instances/")); q++)
		p = q + strlen("/instances/");
	if (p)
		split_instance(p, &ev->party, &ev->guid);
}

static int event_from_json(json_t *obj, struct json_event *ret)
{
	const char *id = jsn_get_str(obj, "id");
	struct json_event ev = { 0 };

	if (!json_is_object(obj) || !id || !*id || strlen(id) > ALT_MAX_EVENT_ID)
		return -EIO;
	ev.id = xstrdup(id);
	ev.type = xstrdup(jsn_get_str(obj, "type") ? jsn_get_str(obj, "type") : "");
	ev.source = xstrdup(jsn_get_str(obj, "source") ? jsn_get_str(obj, "source") : "");
	ev.resource = xstrdup(jsn_get_str(obj, "resource") ? jsn_get_str(obj, "resource") : "");
	jsn_get_time(obj, "time", &ev.time);
	event_instance(obj, &ev);
	ev.doc = jsn_dump_doc(obj, &ev.doc_len);
	*ret = ev;
	return 0;
}

int json_parse_event(const char *text, size_t len, struct json_event *ret)
{
	json_t *root = jsn_load(text, len, "an event");
	int r;

	if (!root)
		return -EIO;
	r = event_from_json(root, ret);
	if (r < 0)
		log_warn("an event without an id");
	json_decref(root);
	return r;
}

int json_parse_events(const char *text, size_t len, struct json_event **ret, size_t *ret_n)
{
	json_error_t err;
	json_t *root = json_loadb(text, len, 0, &err), *v;
	struct json_event *evs;
	size_t i, n = 0;

	if (!root || !json_is_array(root)) {
		log_warn("cannot parse an events page: %s", root ? "not a JSON array" : err.text);
		json_decref(root);
		return -EIO;
	}
	evs = xcalloc(json_array_size(root) + 1, sizeof(*evs));
	json_array_foreach(root, i, v) {
		if (event_from_json(v, &evs[n]) == 0)
			n++;
		else
			log_warn("an events page has an entry without an id; skipped");
	}
	json_decref(root);
	*ret = evs;
	*ret_n = n;
	return 0;
}

void json_event_clear(struct json_event *ev)
{
	if (!ev)
		return;
	free(ev->id);
	free(ev->type);
	free(ev->source);
	free(ev->resource);
	free(ev->party);
	free(ev->guid);
	free(ev->doc);
	memset(ev, 0, sizeof(*ev));
}

void json_events_free(struct json_event *evs, size_t n)
{
	for (size_t i = 0; evs && i < n; i++)
		json_event_clear(&evs[i]);
	free(evs);
}

/* a URL without its trailing slashes equals another */
static bool same_url(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	while (na > 0 && a[na - 1] == '/')
		na--;
	while (nb > 0 && b[nb - 1] == '/')
		nb--;
	return na == nb && strncmp(a, b, na) == 0;
}

/* A URL as .NET's Uri.AbsoluteUri writes it, as far as a webhook URL
 * needs: scheme and host in lower case, the scheme's default port
 * dropped, an empty path as "/". */
static char *norm_url(const char *url)
{
	const char *sep = strstr(url, "://"), *host, *end, *port;
	size_t scheme_len, host_len;
	char *out;

	if (!sep)
		return xstrdup(url);
	scheme_len = (size_t)(sep - url);
	host = sep + 3;
	end = host + strcspn(host, "/?#");
	port = memchr(host, ':', (size_t)(end - host));
	host_len = (size_t)((port ? port : end) - host);
	if (port && ((scheme_len == 5 && strncasecmp(url, "https", 5) == 0 &&
		      (size_t)(end - port) == 4 && strncmp(port, ":443", 4) == 0) ||
		     (scheme_len == 4 && strncasecmp(url, "http", 4) == 0 &&
		      (size_t)(end - port) == 3 && strncmp(port, ":80", 3) == 0)))
		port = NULL;
	out = xasprintf("%.*s://%.*s%.*s%s%s", (int)scheme_len, url, (int)host_len, host,
			port ? (int)(end - port) : 0, port ? port : "", *end == '/' ? "" : "/", end);
	for (size_t i = 0; i < scheme_len + 3 + host_len; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return out;
}

/* a string filter of a listed subscription equals want (NULL: absent) */
static bool same_filter(json_t *sub, const char *key, const char *want)
{
	const char *got = jsn_get_str(sub, key);

	return want ? got && strcmp(got, want) == 0 : !got;
}

static bool sub_matches(json_t *v, const struct json_sub_filter *f)
{
	const char *src = jsn_get_str(v, "sourceFilter");

	if (jsn_get_str(v, "typeFilter"))
		return false;
	if (f->source) /* an app's: the resource filter is derived from it */
		return src && same_url(src, f->source) && !jsn_get_str(v, "subjectFilter");
	return !src && same_filter(v, "resourceFilter", f->resource) &&
	       same_filter(v, "subjectFilter", f->subject);
}

int json_find_subscription_for(const char *text, size_t len, const char *endpoint,
			       const struct json_sub_filter *f, int64_t *ret_id,
			       bool *ret_validated)
{
	json_t *root = jsn_load(text, len, "the subscriptions"), *list, *v;
	char *want = norm_url(endpoint);
	int r = -ENOENT;
	size_t i;

	if (!root) {
		free(want);
		return -EIO;
	}
	list = json_object_get(root, "subscriptions");
	json_array_foreach(list, i, v) {
		const char *ep = jsn_get_str(v, "endPoint");
		int64_t id = jsn_get_int(v, "id", -1);
		char *got = ep ? norm_url(ep) : NULL;
		bool same = got && strcmp(got, want) == 0;

		free(got);
		if (same && id >= 0 && sub_matches(v, f)) {
			*ret_id = id;
			*ret_validated = jsn_get_bool(v, "validated");
			r = 0;
			break;
		}
	}
	json_decref(root);
	free(want);
	return r;
}

int json_find_subscription(const char *text, size_t len, const char *endpoint,
			   const char *source, int64_t *ret_id, bool *ret_validated)
{
	const struct json_sub_filter f = { .source = source };

	return json_find_subscription_for(text, len, endpoint, &f, ret_id, ret_validated);
}

int json_subscription_id(const char *text, size_t len, int64_t *ret_id, bool *ret_validated)
{
	json_t *root = jsn_load(text, len, "a subscription");
	int64_t id;
	bool validated;

	if (!root)
		return -EIO;
	id = jsn_get_int(root, "id", -1);
	validated = jsn_get_bool(root, "validated");
	json_decref(root);
	if (id < 0) {
		log_warn("a subscription without an id");
		return -EIO;
	}
	*ret_id = id;
	*ret_validated = validated;
	return 0;
}

int64_t json_validation_subscription(const char *source)
{
	const char *slash = source ? strrchr(source, '/') : NULL;
	char *end;
	long long id;

	if (!slash || !slash[1])
		return -1;
	errno = 0;
	id = strtoll(slash + 1, &end, 10);
	return errno || *end || id < 0 ? -1 : id;
}

char *json_subscription_request_for(const char *endpoint, const struct json_sub_filter *f)
{
	json_t *root = json_pack("{s:s}", "endPoint", endpoint);
	char *s;

	if (!root)
		abort(); /* the URLs come from the configuration: UTF-8 */
	if (f->source)
		json_object_set_new(root, "sourceFilter", json_string(f->source));
	if (f->resource)
		json_object_set_new(root, "resourceFilter", json_string(f->resource));
	if (f->subject)
		json_object_set_new(root, "subjectFilter", json_string(f->subject));
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		abort();
	return s;
}

char *json_subscription_request(const char *endpoint, const char *source)
{
	const struct json_sub_filter f = { .source = source };

	return json_subscription_request_for(endpoint, &f);
}

/* ---- outbox: the App API's answers and the receipts and dead letters */

void json_outbox_instance_clear(struct json_outbox_instance *oi)
{
	if (!oi)
		return;
	alt_instance_unref(oi->inst);
	free(oi->task);
	free(oi->org_number);
	free(oi->person_number);
	free(oi->created_by);
	memset(oi, 0, sizeof(*oi));
}

/* organisationNumber and friends may come as strings or numbers */
static char *dup_number(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v) && *json_string_value(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return NULL;
}

static int outbox_instance(json_t *obj, struct json_outbox_instance *ret)
{
	json_t *process = json_object_get(obj, "process");
	json_t *owner = json_object_get(obj, "instanceOwner");
	struct json_outbox_instance oi = { 0 };

	if (jsn_instance_from_json(obj, &oi.inst) < 0)
		return -EIO;
	oi.task = jsn_dup_str(json_object_get(process, "currentTask"), "elementId");
	oi.ended = jsn_get_str(process, "ended") != NULL;
	oi.org_number = dup_number(owner, "organisationNumber");
	oi.person_number = dup_number(owner, "personNumber");
	oi.created_by = dup_number(obj, "createdBy");
	*ret = oi;
	return 0;
}

int json_outbox_parse_instance(const char *text, size_t len, struct json_outbox_instance *ret)
{
	json_t *root = jsn_load(text, len, "instance");
	int r;

	if (!root)
		return -EIO;
	r = outbox_instance(root, ret);
	json_decref(root);
	return r;
}

int json_outbox_parse_page(const char *text, size_t len, struct json_outbox_instance **ret,
			   size_t *ret_n, char **ret_next)
{
	json_t *root = jsn_load(text, len, "instance query page");
	json_t *arr, *item;
	struct json_outbox_instance *list;
	size_t i, n = 0;

	if (!root)
		return -EIO;
	arr = json_object_get(root, "instances");
	if (!json_is_array(arr)) {
		json_decref(root);
		return -EIO;
	}
	list = xcalloc(json_array_size(arr) + 1, sizeof(*list));
	json_array_foreach(arr, i, item)
		if (json_is_object(item) && outbox_instance(item, &list[n]) == 0)
			n++;
	*ret_next = jsn_dup_str(root, "next");
	json_decref(root);
	*ret = list;
	*ret_n = n;
	return 0;
}

int json_outbox_parse_element_id(const char *text, size_t len, char **ret_id,
				 char **ret_filename)
{
	json_t *root = jsn_load(text, len, "data element");
	const char *id = jsn_get_str(root, "id");
	int r = -EIO;

	if (id && json_is_guid(id)) {
		*ret_id = jsn_lower_dup(id);
		if (ret_filename)
			*ret_filename = jsn_dup_str(root, "filename");
		r = 0;
	}
	json_decref(root);
	return r;
}

int json_outbox_parse_process(const char *text, size_t len, char **ret_task, bool *ret_ended)
{
	json_t *root = jsn_load(text, len, "process state");

	if (!root)
		return -EIO;
	*ret_task = jsn_dup_str(json_object_get(root, "currentTask"), "elementId");
	*ret_ended = jsn_get_str(root, "ended") != NULL;
	json_decref(root);
	return 0;
}

char *json_outbox_template(const char *key, const char *value)
{
	json_t *v = json_pack("{s:{s:s}}", "instanceOwner", key, value);
	char *s;

	if (!v)
		abort(); /* digits only: nothing but allocation can fail */
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (!s)
		abort();
	return s;
}

/* At most 1000 bytes of s, one printable line, valid UTF-8. */
static char *outbox_message(const char *s, size_t len)
{
	char *out, *safe;
	size_t n = len < 1000 ? len : 1000;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return NULL;
	out = xstrndup(s, n);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	safe = jsn_utf8_safe(out);
	free(out);
	return safe;
}

void json_outbox_problem(const char *body, size_t len, char **ret_title, char **ret_detail)
{
	json_t *root = body && len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	const char *title, *detail;

	*ret_title = *ret_detail = NULL;
	if (json_is_object(root)) {
		title = jsn_get_str(root, "title");
		detail = jsn_get_str(root, "detail");
		*ret_title = title ? outbox_message(title, strlen(title)) : NULL;
		*ret_detail = detail ? outbox_message(detail, strlen(detail)) : NULL;
	} else if (json_is_string(root)) {
		*ret_detail = outbox_message(json_string_value(root), json_string_length(root));
	} else if (body && len) {
		*ret_detail = outbox_message(body, len);
	}
	json_decref(root);
}

static json_t *outbox_files(const struct json_outbox_report *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n_files; i++) {
		const struct json_outbox_file *f = &r->files[i];
		json_t *o = json_object();

		if (f->file && *f->file)
			json_object_set_new(o, "file", jsn_str_or_null(f->file));
		json_object_set_new(o, "filename", jsn_str_or_null(f->filename));
		if (f->stored_name)
			json_object_set_new(o, "stored_name", jsn_str_or_null(f->stored_name));
		json_object_set_new(o, "data_type", jsn_str_or_null(f->data_type));
		json_object_set_new(o, "content_type", jsn_str_or_null(f->content_type));
		json_object_set_new(o, "size", json_integer((json_int_t)f->size));
		json_object_set_new(o, "sha256", jsn_str_or_null(f->sha256));
		json_object_set_new(o, "data_id", jsn_str_or_null(f->data_id));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* The fields receipts and dead letters share, in reading order. */
static json_t *outbox_head(const struct json_outbox_report *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "app", jsn_str_or_null(r->app_id));
	json_object_set_new(o, "owner", jsn_str_or_null(r->owner));
	json_object_set_new(o, "name", jsn_str_or_null(r->name));
	json_object_set_new(o, "instance_id", jsn_str_or_null(r->instance_id));
	return o;
}

static char *outbox_dump(json_t *o, const struct json_outbox_report *r, const char *end_key)
{
	size_t len;
	char *doc;

	json_object_set_new(o, "data", outbox_files(r));
	json_object_set_new(o, "attempts", json_integer((json_int_t)r->attempts));
	json_object_set_new(o, "received_at", jsn_time_or_null(&r->received_at));
	json_object_set_new(o, "first_attempt_at", jsn_time_or_null(&r->first_attempt_at));
	json_object_set_new(o, end_key, jsn_time_or_null(&r->finished_at));
	doc = jsn_dump_doc(o, &len);
	json_decref(o);
	return doc;
}

char *json_outbox_receipt(const struct json_outbox_report *r)
{
	json_t *o = outbox_head(r);

	json_object_set_new(o, "process",
			    json_pack("{s:b, s:o, s:b}", "next", r->process_next, "task",
				      jsn_str_or_null(r->task), "ended", r->process_next && !r->task));
	return outbox_dump(o, r, "sent_at");
}

char *json_outbox_dead_letter(const struct json_outbox_report *r)
{
	json_t *o = outbox_head(r);

	json_object_set_new(o, "stored_as", jsn_str_or_null(r->stored_as));
	json_object_set_new(o, "step", jsn_str_or_null(r->step));
	json_object_set_new(o, "status", r->status ? json_integer(r->status) : json_null());
	json_object_set_new(o, "title", jsn_str_or_null(r->title));
	json_object_set_new(o, "detail", jsn_str_or_null(r->detail));
	json_object_set_new(o, "reason", jsn_str_or_null(r->reason));
	return outbox_dump(o, r, "failed_at");
}

/* ---- instance writes: receipts and dead letters */

char *json_write_report(const struct json_write_report *r)
{
	json_t *o = json_object();
	size_t len;
	char *doc;

	json_object_set_new(o, "app", jsn_str_or_null(r->app_id));
	json_object_set_new(o, "instance_id", jsn_str_or_null(r->instance_id));
	json_object_set_new(o, "data_type", jsn_str_or_null(r->data_type));
	json_object_set_new(o, "name", jsn_str_or_null(r->name));
	json_object_set_new(o, "op", jsn_str_or_null(r->op));
	json_object_set_new(o, "data_id", jsn_str_or_null(r->data_id));
	json_object_set_new(o, "stored_name", jsn_str_or_null(r->stored_name));
	json_object_set_new(o, "size", json_integer((json_int_t)r->size));
	json_object_set_new(o, "attempts", json_integer((json_int_t)r->attempts));
	json_object_set_new(o, r->error ? "failed_at" : "sent_at", jsn_time_or_null(&r->at));
	if (r->error)
		json_object_set_new(o, "error", jsn_str_or_null(r->error));
	doc = jsn_dump_doc(o, &len);
	json_decref(o);
	return doc;
}
