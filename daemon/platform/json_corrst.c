/* json_corrst.c - a sent message's correspondences after publication
 * (see api_corr.h): each recipient's status in the journal's results as
 * the platform names it (CorrespondenceStatusExt), moved by
 * Correspondence's events and set by the reconciling read of /details;
 * which ones are still worth a look; their counts for status.json; and
 * the events feed's pages. An event says what happened but not the
 * whole state, so an event moves a status only upwards in the API's
 * own order (the overview's status is the highest one reached), while
 * a read of /details sets it as it is. Fetched lives in a table of its
 * own on the platform and is never the overview's status; a read that
 * finds it in statusHistory over a plain Published shows "Fetched". */
#include "api_corr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_corr.h"
#include "json_i.h"
#include "xalloc.h"

const char *const corr_status_names[CORR_N_STATUSES] = {
	"Initialized", "ReadyForPublish", "Published", "Fetched", "Read", "Replied",
	"Confirmed", "PurgedByRecipient", "PurgedByAltinn", "Archived", "Reserved", "Failed",
	"AttachmentsDownloaded", "Forwarded", "Refused", "other",
};

int corr_status_index(const char *status)
{
	for (int i = 0; status && i < CORR_N_STATUSES - 1; i++)
		if (strcmp(corr_status_names[i], status) == 0)
			return i;
	return CORR_N_STATUSES - 1;
}

/* past which nothing more is looked for */
static bool final_status(const char *st)
{
	static const char *const finals[] = { "Failed", "Confirmed", "PurgedByRecipient",
					      "PurgedByAltinn", "Refused" };

	for (size_t i = 0; st && i < sizeof(finals) / sizeof(finals[0]); i++)
		if (strcmp(st, finals[i]) == 0)
			return true;
	return false;
}

static bool unpublished(const char *st)
{
	return !st || strcmp(st, "Initialized") == 0 || strcmp(st, "ReadyForPublish") == 0 ||
	       strcmp(st, "Reserved") == 0;
}

static json_t *results_of(const char *results)
{
	json_t *o = results ? json_loads(results, 0, NULL) : NULL;

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	return o;
}

char *corr_result_apply(const char *results, const char *id, const char *status,
			const char *changed, bool upward_only)
{
	json_t *o, *v, *hit = NULL;
	const char *key, *was;
	char *s = NULL;

	if (!results || !id || !status || !strstr(results, id))
		return NULL;
	o = results_of(results);
	json_object_foreach(o, key, v) {
		const char *cid = jsn_get_str(v, "correspondenceId");

		if (cid && strcmp(cid, id) == 0) {
			hit = v;
			break;
		}
	}
	was = hit ? jsn_get_str(hit, "status") : NULL;
	if (!hit || (was && strcmp(was, status) == 0) ||
	    (upward_only && was && corr_status_index(status) <= corr_status_index(was) &&
	     corr_status_index(was) != CORR_N_STATUSES - 1)) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(hit, "status", json_string(status));
	if (changed)
		json_object_set_new(hit, "statusChanged", json_string(changed));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	return s;
}

void corr_result_following(const char *results, bool unpublished_only, char ***ret_recipients,
			   char ***ret_ids)
{
	json_t *o = results_of(results), *v;
	size_t n = 0, cap = json_object_size(o) + 1;
	char **rcp = xcalloc(cap, sizeof(char *)), **ids = xcalloc(cap, sizeof(char *));
	const char *key;

	json_object_foreach(o, key, v) {
		const char *id = jsn_get_str(v, "correspondenceId");
		const char *st = jsn_get_str(v, "status");

		if (id && (unpublished_only ? unpublished(st) : !final_status(st))) {
			rcp[n] = xstrdup(key);
			ids[n++] = xstrdup(id);
		}
	}
	json_decref(o);
	*ret_recipients = rcp;
	*ret_ids = ids;
}

void corr_result_unsettled(const char *results, char ***ret_recipients, char ***ret_ids)
{
	corr_result_following(results, true, ret_recipients, ret_ids);
}

void corr_result_tally(const char *results, uint64_t counts[CORR_N_STATUSES])
{
	json_t *o = results_of(results), *v;
	const char *key;

	json_object_foreach(o, key, v)
		counts[corr_status_index(jsn_get_str(v, "status"))]++;
	json_decref(o);
}

int jsn_corr_details(const char *body, size_t len, char **ret_status, char **ret_changed)
{
	json_t *o = jsn_load(body, len, "Correspondence details"), *h, *row;
	const char *st = o ? jsn_get_str(o, "status") : NULL;
	bool fetched = false;
	size_t i;

	if (!st)
		goto bad;
	h = json_object_get(o, "statusHistory");
	json_array_foreach(h, i, row) {
		const char *s = jsn_get_str(row, "status");

		fetched |= s && strcmp(s, "Fetched") == 0;
	}
	if (fetched && strcmp(st, "Published") == 0) {
		*ret_status = xstrdup("Fetched");
		*ret_changed = NULL;
		json_array_foreach(h, i, row) /* the newest Fetched */
			if (jsn_get_str(row, "status") && !strcmp(jsn_get_str(row, "status"), "Fetched")) {
				free(*ret_changed);
				*ret_changed = jsn_dup_str(row, "statusChanged");
			}
	} else {
		*ret_status = xstrdup(st);
		*ret_changed = jsn_dup_str(o, "statusChanged");
	}
	json_decref(o);
	return 0;
bad:
	json_decref(o);
	return -EIO;
}

const char *corr_event_status(const char *type)
{
	static const struct {
		const char *suffix, *status;
	} map[] = {
		{ ".correspondencepublished", "Published" },
		{ ".correspondencepublishfailed", "Failed" },
		{ ".correspondencereceiverread", "Read" },
		{ ".correspondencereceiverconfirmed", "Confirmed" },
	};
	size_t n = type ? strlen(type) : 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t k = strlen(map[i].suffix);

		if (n > k && strcmp(type + n - k, map[i].suffix) == 0)
			return map[i].status;
	}
	return NULL;
}

void corr_events_free(struct corr_event *evs, size_t n)
{
	for (size_t i = 0; evs && i < n; i++) {
		free(evs[i].id);
		free(evs[i].type);
		free(evs[i].instance);
		free(evs[i].doc);
	}
	free(evs);
}

/* One CloudEvent into e: -EIO without a usable id. */
static int corr_event_from(json_t *v, struct corr_event *e)
{
	const char *id = jsn_get_str(v, "id");

	if (!json_is_object(v) || !id || !*id || strlen(id) > 128)
		return -EIO;
	e->id = xstrdup(id);
	e->type = xstrdup(jsn_get_str(v, "type") ? jsn_get_str(v, "type") : "");
	e->instance = jsn_dup_str(v, "resourceinstance");
	jsn_get_time(v, "time", &e->time);
	e->doc = jsn_dump_doc(v, &e->doc_len);
	return 0;
}

int jsn_corr_events(const char *body, size_t len, struct corr_event **ret, size_t *ret_n)
{
	json_t *root = json_loadb(body, len, 0, NULL), *v;
	struct corr_event *evs;
	size_t i, n = 0;

	if (!json_is_array(root)) {
		json_decref(root);
		return -EIO;
	}
	evs = xcalloc(json_array_size(root) + 1, sizeof(*evs));
	json_array_foreach(root, i, v) {
		if (corr_event_from(v, &evs[n]) == 0)
			n++;
	}
	json_decref(root);
	*ret = evs;
	*ret_n = n;
	return 0;
}

int corr_event_parse(const char *body, size_t len, struct corr_event **ret)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	struct corr_event *e = xcalloc(1, sizeof(*e));
	int r = corr_event_from(root, e);

	json_decref(root);
	if (r < 0) {
		free(e);
		return r;
	}
	*ret = e;
	return 0;
}
