/* json_corr.c - the JSON of Altinn Correspondence (see api_corr.h): the
 * local check of a message folder and the initialize body made from it,
 * the answers' ids and statuses, and the per-recipient results a receipt
 * shows. The limits are the platform's (InitializeCorrespondenceExt.cs,
 * InitializeCorrespondenceHelper.cs: title 1..255, summary <= 255, body
 * 1..30000, language nb/nn/en, propertyList <= 10 x 50/300; title,
 * summary and messageSender plain text, the body without HTML:
 * corrtext.c), checked
 * here so a message the platform would refuse never reaches it, and
 * each refusal names the field. meta.json speaks the API's own names. */
#include "api_corr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_corr.h"
#include "json_i.h"
#include "xalloc.h"

#define TITLE_MAX 255
#define SUMMARY_MAX 255
#define BODY_MAX 30000
#define REFERENCE_MAX 4096
#define PROPERTIES_MAX 10
#define PROPERTY_KEY_MAX 50
#define PROPERTY_VALUE_MAX 300
#define EXTERNAL_REFS_MAX 10

/* code points in a UTF-8 string */
static size_t chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* meta.json's names: where each goes and what it must be */
enum kind { K_STR, K_BOOL, K_ARRAY, K_OBJECT };
static const struct meta_field {
	const char *name;
	const char *api; /* its name in the model */
	bool in_content;
	enum kind kind;
	size_t max; /* characters, or elements; 0: any */
} meta_fields[] = {
	{ "summary", "messageSummary", true, K_STR, SUMMARY_MAX },
	{ "messageSummary", "messageSummary", true, K_STR, SUMMARY_MAX },
	{ "language", "language", true, K_STR, 2 },
	{ "sendersReference", "sendersReference", false, K_STR, REFERENCE_MAX },
	{ "messageSender", "messageSender", false, K_STR, 255 },
	{ "requestedPublishTime", "requestedPublishTime", false, K_STR, 64 },
	{ "dueDateTime", "dueDateTime", false, K_STR, 64 },
	{ "externalReferences", "externalReferences", false, K_ARRAY, EXTERNAL_REFS_MAX },
	{ "propertyList", "propertyList", false, K_OBJECT, PROPERTIES_MAX },
	{ "replyOptions", "replyOptions", false, K_ARRAY, 0 },
	{ "notification", "notification", false, K_OBJECT, 0 },
	{ "ignoreReservation", "ignoreReservation", false, K_BOOL, 0 },
	{ "isConfirmationNeeded", "isConfirmationNeeded", false, K_BOOL, 0 },
	{ "isConfidential", "isConfidential", false, K_BOOL, 0 },
	{ "allowForwarding", "allowForwarding", false, K_BOOL, 0 },
};

static const struct meta_field *meta_field(const char *name)
{
	for (size_t i = 0; i < sizeof(meta_fields) / sizeof(meta_fields[0]); i++)
		if (strcmp(meta_fields[i].name, name) == 0)
			return &meta_fields[i];
	return NULL;
}

static int check_value(const struct meta_field *f, json_t *v, char *err, size_t errlen)
{
	static const char *const kinds[] = { "a string", "true or false", "a list",
					     "an object" };
	bool ok = (f->kind == K_STR && json_is_string(v)) ||
		  (f->kind == K_BOOL && json_is_boolean(v)) ||
		  (f->kind == K_ARRAY && json_is_array(v)) ||
		  (f->kind == K_OBJECT && json_is_object(v));
	const char *key;
	json_t *pv;

	if (!ok)
		return refuse(err, errlen, "meta.json: %s must be %s", f->name, kinds[f->kind]);
	if (f->kind == K_STR && f->max &&
	    chars(json_string_value(v), json_string_length(v)) > f->max)
		return refuse(err, errlen, "meta.json: %s is longer than %zu characters", f->name,
			      f->max);
	if (f->kind == K_STR && json_string_length(v) == 0 && f->max != SUMMARY_MAX)
		return refuse(err, errlen, "meta.json: %s is empty", f->name);
	if (f->kind == K_STR && (f->max == SUMMARY_MAX || strcmp(f->name, "messageSender") == 0)) {
		const char *why = corr_text_fault(json_string_value(v), json_string_length(v), false);

		if (why)
			return refuse(err, errlen, "meta.json: %s must be plain text: it holds %s",
				      f->name, why);
	}
	if ((f->kind == K_ARRAY && f->max && json_array_size(v) > f->max) ||
	    (f->kind == K_OBJECT && f->max && json_object_size(v) > f->max))
		return refuse(err, errlen, "meta.json: %s has more than %zu entries", f->name,
			      f->max);
	if (strcmp(f->name, "language") == 0 && strcmp(json_string_value(v), "nb") != 0 &&
	    strcmp(json_string_value(v), "nn") != 0 && strcmp(json_string_value(v), "en") != 0)
		return refuse(err, errlen, "meta.json: language must be nb, nn or en");
	if (strcmp(f->name, "propertyList") == 0)
		json_object_foreach(v, key, pv) {
			if (chars(key, strlen(key)) > PROPERTY_KEY_MAX)
				return refuse(err, errlen,
					      "meta.json: propertyList key \"%.60s\" is longer than "
					      "%d characters", key, PROPERTY_KEY_MAX);
			if (!json_is_string(pv) ||
			    chars(json_string_value(pv), json_string_length(pv)) >
				    PROPERTY_VALUE_MAX)
				return refuse(err, errlen,
					      "meta.json: propertyList \"%.60s\" must be a string "
					      "of at most %d characters", key, PROPERTY_VALUE_MAX);
		}
	return 0;
}

/* message.md: "# <title>", then the body */
static int split_markdown(const struct corr_message *m, char **title, char **body, char *err,
			  size_t errlen)
{
	const char *p = m->markdown, *end = p + m->markdown_len;
	const char *nl = memchr(p, '\n', m->markdown_len), *t, *te, *why;

	if (memchr(p, '\0', m->markdown_len))
		return refuse(err, errlen, "message.md: not text (a NUL byte)");
	if (m->markdown_len < 2 || p[0] != '#' || p[1] != ' ')
		return refuse(err, errlen,
			      "messageTitle: message.md must begin with \"# <title>\"");
	te = nl ? nl : end;
	for (t = p + 2; t < te && (*t == ' ' || *t == '\t'); t++)
		;
	while (te > t && (te[-1] == ' ' || te[-1] == '\t' || te[-1] == '\r'))
		te--;
	if (te == t)
		return refuse(err, errlen, "messageTitle: the title (\"# <title>\") is empty");
	if (chars(t, (size_t)(te - t)) > TITLE_MAX)
		return refuse(err, errlen, "messageTitle: longer than %d characters", TITLE_MAX);
	why = corr_text_fault(t, (size_t)(te - t), false);
	if (why)
		return refuse(err, errlen, "messageTitle: the title must be plain text: it holds %s",
			      why);
	p = nl ? nl + 1 : end;
	while (p < end && (*p == '\n' || *p == '\r'))
		p++;
	if (p == end)
		return refuse(err, errlen, "messageBody: message.md has no body under its title");
	if (chars(p, (size_t)(end - p)) > BODY_MAX)
		return refuse(err, errlen, "messageBody: longer than %d characters", BODY_MAX);
	why = corr_text_fault(p, (size_t)(end - p), true);
	if (why)
		return refuse(err, errlen, "messageBody: Markdown, but it holds %s", why);
	*title = xasprintf("%.*s", (int)(te - t), t);
	*body = xasprintf("%.*s", (int)(end - p), p);
	return 0;
}

int corr_prepare(const struct corr_message *m, char **ret_body, char *err, size_t errlen)
{
	char *title = NULL, *body = NULL;
	json_t *meta = NULL, *c = NULL, *content, *v;
	json_error_t jerr;
	const char *key;
	int r = split_markdown(m, &title, &body, err, errlen);

	if (r < 0)
		return r;
	if (m->meta) {
		meta = json_loadb(m->meta, m->meta_len, 0, &jerr);
		if (!json_is_object(meta)) {
			r = refuse(err, errlen, "meta.json: not a JSON object (line %d: %s)",
				   jerr.line, meta ? "not an object" : jerr.text);
			goto out;
		}
	}
	c = json_object();
	content = json_object();
	json_object_set_new(c, "content", content); /* c holds it; content borrowed */
	json_object_set_new(c, "resourceId", json_string(m->resource));
	json_object_set_new(c, "sendersReference", json_string(m->name));
	json_object_set_new(content, "language", json_string("nb"));
	json_object_set_new(content, "messageTitle", json_string(title));
	json_object_set_new(content, "messageBody", json_string(body));
	json_object_foreach(meta, key, v) {
		const struct meta_field *f = meta_field(key);

		if (!f) {
			r = refuse(err, errlen, "meta.json: unknown field \"%.80s\"", key);
			goto out;
		}
		r = check_value(f, v, err, errlen);
		if (r < 0)
			goto out;
		json_object_set(f->in_content ? content : c, f->api, v);
	}
	if (json_is_true(json_object_get(c, "isConfirmationNeeded")) &&
	    !json_object_get(c, "dueDateTime")) {
		r = refuse(err, errlen, "meta.json: isConfirmationNeeded needs a dueDateTime");
		goto out;
	}
	*ret_body = json_dumps(c, JSON_COMPACT);
	if (!*ret_body)
		abort();
out:
	json_decref(c);
	json_decref(meta);
	free(title);
	free(body);
	return r;
}

char *jsn_corr_init_body(const char *prepared, const char *recipient_urn, const char *key,
			 const char *const *attachments)
{
	json_t *c = json_loads(prepared, 0, NULL), *o = json_object();
	char *s;

	if (!c)
		abort(); /* ours, made by corr_prepare */
	json_object_set_new(o, "correspondence", c);
	json_object_set_new(o, "recipients", json_pack("[s]", recipient_urn));
	json_object_set_new(o, "idempotentKey", json_string(key));
	if (attachments && attachments[0]) {
		json_t *ids = json_array();

		for (size_t i = 0; attachments[i]; i++)
			json_array_append_new(ids, json_string(attachments[i]));
		json_object_set_new(o, "existingAttachments", ids);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	return s;
}

int jsn_corr_initialized(const char *body, size_t len, char **ret_id, char **ret_status)
{
	json_t *o = jsn_load(body, len, "Correspondence's answer");
	json_t *first = json_array_get(json_object_get(o, "correspondences"), 0);
	const char *id = first ? jsn_get_str(first, "correspondenceId") : NULL;
	int r = id && *id && strlen(id) < 64 && !strchr(id, '/') ? 0 : -EIO;

	if (r == 0) {
		*ret_id = xstrdup(id);
		*ret_status = jsn_dup_str(first, "status");
	}
	json_decref(o);
	return r;
}

int jsn_corr_first_id(const char *body, size_t len, char **ret_id)
{
	json_t *o = jsn_load(body, len, "a Correspondence list"), *ids, *v;
	int r = -EIO;

	ids = json_object_get(o, "ids");
	if (json_is_array(ids)) {
		v = json_array_get(ids, 0);
		r = -ENOENT;
		if (json_is_string(v) && !strchr(json_string_value(v), '/')) {
			*ret_id = xstrdup(json_string_value(v));
			r = 0;
		}
	}
	json_decref(o);
	return r;
}

int jsn_corr_status(const char *body, size_t len, char **ret_status)
{
	json_t *o = jsn_load(body, len, "a Correspondence overview");

	*ret_status = o ? jsn_dup_str(o, "status") : NULL;
	json_decref(o);
	return *ret_status ? 0 : -EIO;
}

static json_t *load_results(const char *results)
{
	json_t *o = results ? json_loads(results, 0, NULL) : NULL;

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	return o;
}

char *corr_result_add(const char *results, const char *recipient, const char *id,
		      const char *status, const char *error, long http_status)
{
	json_t *o = load_results(results), *one = json_object();
	char *s;

	if (id)
		json_object_set_new(one, "correspondenceId", json_string(id));
	if (status)
		json_object_set_new(one, "status", json_string(status));
	if (error) {
		json_object_set_new(one, "status", json_string("Refused"));
		json_object_set_new(one, "error", json_string(error));
		if (http_status)
			json_object_set_new(one, "httpStatus", json_integer(http_status));
	}
	json_object_set_new(o, recipient, one);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	return s;
}

void corr_result_count(const char *results, size_t *ret_ok, size_t *ret_failed)
{
	json_t *o = load_results(results), *v;
	const char *key;

	*ret_ok = *ret_failed = 0;
	json_object_foreach(o, key, v) {
		if (json_object_get(v, "correspondenceId"))
			(*ret_ok)++;
		else
			(*ret_failed)++;
	}
	json_decref(o);
}

int corr_result_has(const char *results, const char *recipient)
{
	json_t *o = load_results(results);
	int has = json_object_get(o, recipient) != NULL;

	json_decref(o);
	return has;
}

char *corr_receipt_doc(const char *resource, const char *name, const char *results,
		       const char *error, long long journaled_ms)
{
	json_t *o = json_object();
	size_t len;
	char *s;

	json_object_set_new(o, "resourceId", json_string(resource));
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "journaledMs", json_integer(journaled_ms));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	json_object_set_new(o, "recipients", load_results(results));
	s = jsn_dump_doc(o, &len);
	json_decref(o);
	return s;
}

char *jsn_corr_attachment_body(const char *resource, const char *file_name,
			       const char *reference, const char *md5)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "resourceId", resource, "fileName",
			      file_name, "displayName", file_name, "sendersReference", reference,
			      "checksum", md5);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!s)
		abort();
	return s;
}

int jsn_corr_string_id(const char *body, size_t len, char **ret_id)
{
	json_t *v = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	const char *id = json_is_string(v) ? json_string_value(v) : NULL;
	int r = id && *id && strlen(id) < 64 && !strchr(id, '/') ? 0 : -EIO;

	if (r == 0)
		*ret_id = xstrdup(id);
	json_decref(v);
	return r;
}

int jsn_corr_status_text(const char *body, size_t len, char **ret_status, char **ret_text)
{
	json_t *o = jsn_load(body, len, "a Correspondence attachment overview");

	*ret_status = o ? jsn_dup_str(o, "status") : NULL;
	*ret_text = *ret_status ? jsn_dup_str(o, "statusText") : NULL;
	json_decref(o);
	return *ret_status ? 0 : -EIO;
}

static json_t *ms_time(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	return ms ? jsn_time_or_null(&ts) : json_null();
}

char *corr_status_doc(const struct corr_status_facts *st, size_t *ret_len)
{
	json_t *o = json_object(), *out = json_object(), *rc = json_object(), *ev;
	char *s;

	json_object_set_new(o, "resourceId", json_string(st->resource));
	json_object_set_new(out, "pending", json_integer((json_int_t)st->pending));
	json_object_set_new(out, "oldest_pending_at", ms_time(st->oldest_pending_ms));
	json_object_set_new(out, "retrying", json_integer((json_int_t)st->retrying));
	json_object_set_new(out, "last_error", jsn_str_or_null(st->last_error));
	json_object_set_new(out, "sent", json_integer((json_int_t)st->sent));
	json_object_set_new(out, "failed", json_integer((json_int_t)st->failed));
	json_object_set_new(out, "give_up_s", json_integer(st->give_up_s));
	json_object_set_new(o, "outbox", out);
	for (int i = 0; i < CORR_N_STATUSES; i++)
		if (st->recipients[i])
			json_object_set_new(rc, corr_status_names[i],
					    json_integer((json_int_t)st->recipients[i]));
	out = json_object();
	json_object_set_new(out, "by_status", rc);
	json_object_set_new(out, "following", json_integer((json_int_t)st->following));
	json_object_set_new(out, "next_reconcile_at", ms_time(st->next_reconcile_ms));
	json_object_set_new(out, "reconcile_s", json_integer(st->reconcile_s));
	json_object_set_new(o, "recipients", out);
	ev = json_object();
	json_object_set_new(ev, "enabled", json_boolean(st->events));
	json_object_set_new(ev, "cursor", jsn_str_or_null(st->cursor));
	json_object_set_new(ev, "last_poll_at", ms_time(st->polled_ms));
	json_object_set_new(ev, "last_error", jsn_str_or_null(st->events_error));
	json_object_set_new(ev, "push",
			    st->push ? json_pack("{s:o, s:b}", "subscription",
						 st->push_subscription > 0
							 ? json_integer(st->push_subscription)
							 : json_null(),
						 "validated", st->push_validated)
				     : json_null());
	json_object_set_new(o, "events", ev);
	s = jsn_dump_doc(o, ret_len);
	json_decref(o);
	return s;
}
