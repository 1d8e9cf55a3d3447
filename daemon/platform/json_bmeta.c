/* json_bmeta.c - what a user may add to a Broker transfer, and what a
 * sent one's overview says of its statuses (see api_broker.h).
 *
 * A file dropped in outbox/<recipient>/ may have a sidecar
 * <name>.meta.json written before it: more recipients, a propertyList,
 * the sender's own sendersFileTransferReference. It is checked here,
 * before anything is asked of the platform, by Broker's own rules
 * (FileTransferInitializeExt.cs, PropertyListAttribute.cs), lengths
 * counted in UTF-16 units as .NET's string.Length does, so a refusal is
 * local and names the field instead of coming back as an opaque 400.
 * The file is the user's: it is parsed strictly (no mending, no
 * duplicate keys), and a member we do not know is refused, so a typo
 * ("propertylist") is never silently sent without it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_broker.h"
#include "caps.h"
#include "json_i.h"
#include "xalloc.h"

/* Broker's limits (FileTransferInitializeExt, PropertyListAttribute) */
#define PROPS_MAX 10
#define PROP_KEY_MAX 50
#define PROP_VALUE_MAX 3000
#define REFERENCE_MAX 4096

/* UTF-16 code units of valid UTF-8 s (jansson checked it): what .NET's
 * string.Length says. */
static size_t utf16_len(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) == 0x80)
			continue; /* a continuation byte */
		n += (*p & 0xf8) == 0xf0 ? 2 : 1; /* outside the BMP: a surrogate pair */
	}
	return n;
}

static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int take_recipients(json_t *v, struct broker_meta *m, char *err, size_t errlen)
{
	size_t i, n = 0;
	json_t *e;

	if (!json_is_array(v))
		return refuse(err, errlen, "recipients: not an array of organisation numbers");
	if (json_array_size(v) > ALT_BROKER_MAX_RECIPIENTS)
		return refuse(err, errlen, "recipients: more than %d", ALT_BROKER_MAX_RECIPIENTS);
	m->recipients = xcalloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);

		if (!s || strlen(s) != 9 || strspn(s, "0123456789") != 9)
			return refuse(err, errlen,
				      "recipients[%zu]: not a 9-digit organisation number", i);
		m->recipients[n++] = xstrdup(s);
	}
	return 0;
}

static int take_properties(json_t *v, struct broker_meta *m, char *err, size_t errlen)
{
	const char *k;
	json_t *e;

	if (!json_is_object(v))
		return refuse(err, errlen, "propertyList: not an object of strings");
	if (json_object_size(v) > PROPS_MAX)
		return refuse(err, errlen, "propertyList: %zu properties, Broker takes at most %d",
			      json_object_size(v), PROPS_MAX);
	json_object_foreach(v, k, e) {
		if (!json_is_string(e))
			return refuse(err, errlen, "propertyList.%.60s: not a string", k);
		if (utf16_len(k) > PROP_KEY_MAX)
			return refuse(err, errlen, "propertyList: the key \"%.60s...\" is longer "
				      "than %d characters", k, PROP_KEY_MAX);
		if (utf16_len(json_string_value(e)) > PROP_VALUE_MAX)
			return refuse(err, errlen, "propertyList.%.60s: longer than %d characters",
				      k, PROP_VALUE_MAX);
	}
	m->property_list = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (!m->property_list)
		abort();
	return 0;
}

static int take_reference(json_t *v, struct broker_meta *m, char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	size_t n = s ? utf16_len(s) : 0;

	if (!s)
		return refuse(err, errlen, "sendersFileTransferReference: not a string");
	if (n < 1 || n > REFERENCE_MAX)
		return refuse(err, errlen, "sendersFileTransferReference: %zu characters, Broker "
			      "takes 1 to %d", n, REFERENCE_MAX);
	m->reference = xstrdup(s);
	return 0;
}

int broker_meta_parse(const char *text, size_t len, struct broker_meta *ret, char *err,
		      size_t errlen)
{
	struct broker_meta m = { NULL, NULL, NULL };
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	const char *k;
	int r = 0;

	if (!json_is_object(o)) {
		json_decref(o);
		return o ? refuse(err, errlen, "not a JSON object")
			 : refuse(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
	}
	json_object_foreach(o, k, v) {
		if (strcmp(k, "recipients") == 0)
			r = take_recipients(v, &m, err, errlen);
		else if (strcmp(k, "propertyList") == 0)
			r = take_properties(v, &m, err, errlen);
		else if (strcmp(k, "sendersFileTransferReference") == 0)
			r = take_reference(v, &m, err, errlen);
		else
			r = refuse(err, errlen, "%.60s: not a member altinnfs knows (recipients, "
				   "propertyList, sendersFileTransferReference)", k);
		if (r < 0)
			break;
	}
	json_decref(o);
	if (r < 0) {
		broker_meta_clear(&m);
		return r;
	}
	if (!m.recipients)
		m.recipients = xcalloc(1, sizeof(char *));
	*ret = m;
	return 0;
}

void broker_meta_clear(struct broker_meta *m)
{
	for (size_t i = 0; m->recipients && m->recipients[i]; i++)
		free(m->recipients[i]);
	free(m->recipients);
	free(m->property_list);
	free(m->reference);
	memset(m, 0, sizeof(*m));
}

static const char *const recipient_codes[3] = { "Initialized", "DownloadStarted",
						"DownloadConfirmed" };

char *broker_overview_signature(const char *overview)
{
	json_t *o = overview ? jsn_load(overview, strlen(overview), "a Broker overview") : NULL;
	const char *st = o ? jsn_get_str(o, "fileTransferStatus") : NULL;
	size_t i, n, cap;
	json_t *e;
	char *s;

	if (!st) {
		json_decref(o);
		return NULL;
	}
	cap = strlen(st) + 1;
	s = xstrdup(st);
	json_array_foreach(json_object_get(o, "recipients"), i, e) {
		const char *who = jsn_get_str(e, "recipient");
		json_t *code = json_object_get(e, "currentRecipientFileTransferStatusCode");
		const char *rs = json_string_value(code);

		/* an enum the API writes by name; by number (RecipientFileTransferStatusExt)
		 * should a serializer ever differ */
		if (json_is_integer(code) && json_integer_value(code) >= 0 &&
		    json_integer_value(code) < 3)
			rs = recipient_codes[json_integer_value(code)];

		if (!who || !rs)
			continue;
		n = strlen(s);
		cap = n + strlen(who) + strlen(rs) + 3;
		s = xrealloc(s, cap);
		snprintf(s + n, cap - n, " %s=%s", who, rs);
	}
	json_decref(o);
	return s;
}
