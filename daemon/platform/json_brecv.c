/* json_brecv.c - Broker's overview as a recipient reads it (see
 * json_brecv.h). The overview is kept whole in transfer.json, so what a
 * future Broker adds reaches the user without a change here; only the
 * facts the inbox acts on are picked out: the file's name, size and
 * checksum, the sender, the transfer's status and ours among the
 * recipients (matched with or without Broker's "0192:" prefix). */
#include "json_brecv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_i.h"
#include "xalloc.h"

static const char *without_prefix(const char *s)
{
	if (strncmp(s, "0192:", 5) == 0)
		return s + 5;
	if (strncmp(s, "urn:altinn:organization:identifier-no:", 38) == 0)
		return s + 38;
	return s;
}

static char *my_status(json_t *o, const char *me)
{
	json_t *list = json_object_get(o, "recipients"), *v;
	size_t i;

	json_array_foreach(list, i, v) {
		const char *who = jsn_get_str(v, "recipient");

		if (who && strcmp(without_prefix(who), me) == 0)
			return jsn_dup_str(v, "currentRecipientFileTransferStatusCode");
	}
	return NULL;
}

int jsn_brecv_overview(const char *body, size_t len, const char *me,
		       char *(*local_name)(void *ctx, const char *file_name), void *ctx,
		       struct brecv_overview *ret)
{
	json_t *o = jsn_load(body, len, "a Broker overview");
	char *name;
	int64_t size;

	if (!json_is_object(o) || !jsn_get_str(o, "fileName")) {
		json_decref(o);
		return -EIO;
	}
	size = jsn_get_int(o, "fileTransferSize", -1);
	if (size < 0) {
		json_decref(o);
		return -EIO;
	}
	ret->size = (uint64_t)size;
	ret->file_name = jsn_dup_str(o, "fileName");
	ret->status = jsn_dup_str(o, "fileTransferStatus");
	ret->sender = jsn_dup_str(o, "sender");
	ret->checksum = jsn_dup_str(o, "checksum");
	ret->my_status = my_status(o, me);
	name = local_name(ctx, ret->file_name);
	json_object_set_new(o, "localName", json_string(name));
	free(name);
	ret->doc = jsn_dump_doc(o, &ret->doc_len);
	json_decref(o);
	return 0;
}

char *jsn_brecv_event_transfer(const char *doc, size_t len)
{
	json_t *o = jsn_load(doc, len, "a Broker event");
	const char *v = o ? jsn_get_str(o, "resourceinstance") : NULL;
	char *id = v && *v && strlen(v) < 64 && !strchr(v, '/') ? xstrdup(v) : NULL;

	json_decref(o);
	return id;
}

bool jsn_brecv_event_as_sender(const char *doc, size_t len)
{
	json_t *o = jsn_load(doc, len, "a Broker event"), *data;
	const char *role = NULL;
	bool sender;

	data = o ? json_object_get(o, "data") : NULL;
	/* "Role" as Broker's dictionary key; "role" should a serializer
	 * lower-case it (the key's casing is unverified) */
	if (json_is_object(data))
		role = jsn_get_str(data, "Role") ? jsn_get_str(data, "Role")
						 : jsn_get_str(data, "role");
	sender = role && strcmp(role, "Sender") == 0;
	json_decref(o);
	return sender;
}
