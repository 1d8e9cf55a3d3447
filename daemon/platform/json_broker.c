/* json_broker.c - the JSON of Altinn Broker (see json_broker.h and
 * api_broker.h): the initialize body, the answers' ids and overviews,
 * the token's organisation, and the receipts of sent transfers. Field
 * names are Broker's own (FileTransferInitializeExt.cs,
 * FileTransferOverviewExt.cs), so a receipt quotes the platform. */
#include "json_broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_i.h"
#include "xalloc.h"

/* "0192:<digits>", as Broker writes organisations */
static json_t *org_value(const char *number)
{
	char *v = xasprintf("0192:%s", number);
	json_t *j = json_string(v);

	free(v);
	return j;
}

char *jsn_broker_init_body(const struct broker_init *in)
{
	json_t *o = json_object(), *rcp = json_array();
	char *s;

	json_object_set_new(o, "fileName", json_string(in->file_name));
	json_object_set_new(o, "resourceId", json_string(in->resource));
	json_object_set_new(o, "sendersFileTransferReference", json_string(in->reference));
	json_object_set_new(o, "sender", org_value(in->sender));
	for (size_t i = 0; in->recipients[i]; i++)
		json_array_append_new(rcp, org_value(in->recipients[i]));
	json_object_set_new(o, "recipients", rcp);
	json_object_set_new(o, "checksum", json_string(in->checksum));
	if (in->property_list) {
		json_error_t err;
		json_t *props = json_loads(in->property_list, 0, &err);

		if (json_is_object(props))
			json_object_set_new(o, "propertyList", props);
		else
			json_decref(props);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	return s;
}

int jsn_broker_id(const char *body, size_t len, char **ret)
{
	json_t *o = jsn_load(body, len, "Broker's answer");
	const char *id = o ? jsn_get_str(o, "fileTransferId") : NULL;
	int r = id && *id && strlen(id) < 64 && !strchr(id, '/') ? 0 : -EIO;

	if (r == 0)
		*ret = xstrdup(id);
	json_decref(o);
	return r;
}

int jsn_broker_overview(const char *body, size_t len, char **ret_status, char **ret_text,
			char **ret_name, char **ret_reference)
{
	json_t *o = jsn_load(body, len, "a Broker overview");

	if (!o)
		return -EIO;
	*ret_status = jsn_dup_str(o, "fileTransferStatus");
	*ret_text = jsn_dup_str(o, "fileTransferStatusText");
	*ret_name = jsn_dup_str(o, "fileName");
	*ret_reference = jsn_dup_str(o, "sendersFileTransferReference");
	json_decref(o);
	return 0;
}

static const char *without_prefix(const char *s);

int jsn_broker_matches(const char *body, size_t len, const struct broker_match *want)
{
	json_t *o = jsn_load(body, len, "a Broker overview"), *v;
	const char *name, *ref, *sum;
	size_t i;
	int r;

	if (!o)
		return -EIO;
	name = jsn_get_str(o, "fileName");
	ref = jsn_get_str(o, "sendersFileTransferReference");
	sum = jsn_get_str(o, "checksum");
	r = name && ref && strcmp(name, want->file_name) == 0 &&
	    strcmp(ref, want->reference) == 0 &&
	    (!want->checksum || (sum && strcasecmp(sum, want->checksum) == 0));
	if (r && want->recipient) {
		r = 0;
		json_array_foreach(json_object_get(o, "recipients"), i, v) {
			const char *who = jsn_get_str(v, "recipient");

			if (who && strcmp(without_prefix(who), want->recipient) == 0)
				r = 1;
		}
	}
	json_decref(o);
	return r;
}

int jsn_broker_ids(const char *body, size_t len, char ***ret)
{
	json_error_t err;
	json_t *a = json_loadb(body, len, 0, &err), *v;
	char **ids;
	size_t i, n = 0;

	if (!json_is_array(a)) {
		json_decref(a);
		return -EIO;
	}
	ids = xcalloc(json_array_size(a) + 1, sizeof(*ids));
	json_array_foreach(a, i, v)
		if (json_is_string(v) && !strchr(json_string_value(v), '/'))
			ids[n++] = xstrdup(json_string_value(v));
	json_decref(a);
	*ret = ids;
	return 0;
}

static const char *without_prefix(const char *s)
{
	return strncmp(s, "0192:", 5) == 0 ? s + 5 : s;
}

int jsn_broker_token_org(const char *payload, size_t len, char **ret)
{
	json_error_t err;
	json_t *o = json_loadb(payload, len, 0, &err), *c;
	const char *v = o ? jsn_get_str(o, "urn:altinn:orgNumber") : NULL;
	char buf[32];

	if (o && !v && (c = json_object_get(o, "consumer")))
		v = jsn_get_str(c, "ID");
	if (!v && o && json_is_integer(json_object_get(o, "urn:altinn:orgNumber"))) {
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(json_object_get(o, "urn:altinn:orgNumber")));
		v = buf;
	}
	if (v)
		v = without_prefix(v);
	if (!v || strlen(v) != 9 || strspn(v, "0123456789") != 9) {
		json_decref(o);
		return -EACCES;
	}
	*ret = xstrdup(v);
	json_decref(o);
	return 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The overview's fields a receipt carries, under their own names. */
static const char *const overview_fields[] = {
	"fileTransferStatus", "fileTransferStatusText", "fileTransferStatusChanged",
	"created", "published", "expirationTime", "sender", "fileTransferSize",
	"useVirusScan", "recipients", "propertyList",
};

char *broker_receipt_doc(const struct broker_facts *f, const char *overview)
{
	json_t *o = json_object(), *ov = overview ? jsn_load(overview, strlen(overview),
							       "a Broker overview") : NULL;
	struct timespec ts = { f->dropped_ms / 1000, (f->dropped_ms % 1000) * 1000000 };
	size_t len;
	char *s;

	json_object_set_new(o, "resourceId", json_string(f->resource));
	json_object_set_new(o, "recipient", json_string(f->recipient));
	json_object_set_new(o, "name", json_string(f->name));
	json_object_set_new(o, "fileTransferId", str_or_null(f->transfer_id));
	json_object_set_new(o, "sendersFileTransferReference", str_or_null(f->reference));
	json_object_set_new(o, "checksum", str_or_null(f->checksum));
	json_object_set_new(o, "size", json_integer((json_int_t)f->size));
	json_object_set_new(o, "dropped", jsn_time_or_null(&ts));
	for (size_t i = 0; ov && i < sizeof(overview_fields) / sizeof(overview_fields[0]); i++) {
		json_t *v = json_object_get(ov, overview_fields[i]);

		if (v)
			json_object_set(o, overview_fields[i], v);
	}
	if (f->error) {
		json_object_set_new(o, "error", json_string(f->error));
		json_object_set_new(o, "httpStatus",
				    f->http_status ? json_integer(f->http_status) : json_null());
	}
	s = jsn_dump_doc(o, &len);
	json_decref(o);
	json_decref(ov);
	return s;
}

char *broker_status_doc(const struct broker_status *st, size_t *ret_len)
{
	json_t *o = json_object(), *out = json_object(), *in;
	struct timespec ts = { st->oldest_pending_ms / 1000,
			       (st->oldest_pending_ms % 1000) * 1000000 };
	char *s;

	json_object_set_new(o, "resourceId", json_string(st->resource));
	json_object_set_new(out, "pending", json_integer((json_int_t)st->pending));
	json_object_set_new(out, "oldest_pending_at", jsn_time_or_null(&ts));
	json_object_set_new(out, "retrying", json_integer((json_int_t)st->retrying));
	json_object_set_new(out, "last_error", str_or_null(st->last_error));
	json_object_set_new(out, "sent", json_integer((json_int_t)st->sent));
	json_object_set_new(out, "failed", json_integer((json_int_t)st->failed));
	json_object_set_new(out, "give_up_s", json_integer(st->give_up_s));
	json_object_set_new(o, "outbox", out);
	ts = (struct timespec){ st->searched_ms / 1000, (st->searched_ms % 1000) * 1000000 };
	in = json_object();
	json_object_set_new(in, "entries", json_integer((json_int_t)st->inbox));
	json_object_set_new(in, "confirming", json_integer((json_int_t)st->confirming));
	json_object_set_new(in, "confirmed", json_integer((json_int_t)st->confirmed));
	json_object_set_new(in, "searched_at", jsn_time_or_null(&ts));
	json_object_set_new(in, "last_error", str_or_null(st->inbox_error));
	json_object_set_new(in, "poll_s", json_integer(st->poll_s));
	json_object_set_new(in, "events_cursor", str_or_null(st->events_cursor));
	json_object_set_new(in, "events_error", str_or_null(st->events_off));
	json_object_set_new(in, "events_push",
			    st->push ? json_pack("{s:o, s:b}", "subscription",
						 st->push_subscription > 0
							 ? json_integer(st->push_subscription)
							 : json_null(),
						 "validated", st->push_validated)
				     : json_null());
	json_object_set_new(o, "inbox", in);
	s = jsn_dump_doc(o, ret_len);
	json_decref(o);
	return s;
}
