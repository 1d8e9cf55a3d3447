/* json.c - the platform's JSON documents, parsed into altinn.h structs.
 *
 * With json_msgs.c, where jansson stays (docs/design.md). The platform is
 * treated as untrusted input: every field may be null, absent or of the wrong type
 * (Storage omits nulls today, older versions and the docs' samples send
 * them), ids are checked before they become path names, guids are
 * lowercased so one element has one name, and counts are capped from
 * caps.h. A bad instance inside a page is skipped with a warning so one
 * hostile record cannot hide the others.
 *
 * Each instance and app keeps its document re-serialized with two-space
 * indentation in the order received (jansson keeps insertion order), so
 * instance.json shows what the platform said, readably.
 *
 * The small JWT decoder and status.json live here too because both are
 * JSON in or out and nothing else may touch jansson. */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json_i.h"
#include "caps.h"
#include "log.h"
#include "version.h"
#include "xalloc.h"

void json_global_init(void)
{
	json_object_seed(0);
}

/* ---- small accessors: absent, null and wrong-typed all read as "none" */

const char *jsn_get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

char *jsn_dup_str(json_t *obj, const char *key)
{
	const char *s = jsn_get_str(obj, key);
	return s ? xstrdup(s) : NULL;
}

bool jsn_get_bool(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

int64_t jsn_get_int(json_t *obj, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) > -9e18 && json_real_value(v) < 9e18)
		return (int64_t)json_real_value(v); /* a converting cast out of range is undefined */
	return dflt;
}

void jsn_get_time(json_t *obj, const char *key, struct timespec *ret)
{
	const char *s = jsn_get_str(obj, key);
	struct timespec ts = { 0, 0 };

	if (s && json_parse_time(s, &ts) < 0)
		log_debug("unparsable time %s \"%.40s\"", key, s);
	*ret = ts;
}

/* The document as received, for instance.json/application.json. */
char *jsn_dump_doc(json_t *obj, size_t *ret_len)
{
	char *s = json_dumps(obj, DUMP_FLAGS);
	size_t n;
	char *doc;

	if (!s)
		abort(); /* jansson fails here only on allocation failure */
	n = strlen(s);
	doc = xmalloc(n + 2);
	memcpy(doc, s, n);
	doc[n] = '\n';
	doc[n + 1] = '\0';
	free(s);
	*ret_len = n + 1;
	return doc;
}

/* A document that does not parse is mended once (json_repair.c) and
 * parsed again, so that one bad value costs its record, not the page. */
static json_t *load_mended(const char *text, size_t len, const char *what,
			   const json_error_t *first)
{
	json_error_t err;
	unsigned fixes;
	size_t n;
	char *mended = jsn_repair(text, len, &n, &fixes);
	json_t *root = fixes ? json_loadb(mended, n, 0, &err) : NULL;

	free(mended);
	if (!root)
		log_warn("cannot parse %s: %s at line %d", what, first->text, first->line);
	else
		log_warn("%s: %u bad value(s) (invalid UTF-8, NUL, lone surrogate or number out "
			 "of range) replaced, first: %s at line %d", what, fixes, first->text,
			 first->line);
	return root;
}

json_t *jsn_load(const char *text, size_t len, const char *what)
{
	json_error_t err;
	json_t *root = json_loadb(text, len, 0, &err);

	if (!root)
		root = load_mended(text, len, what, &err);
	if (!root)
		return NULL;
	if (!json_is_object(root)) {
		log_warn("cannot parse %s: not a JSON object", what);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- times */

static int parse_digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static int parse_zone(const char *p, int *ret_offset)
{
	int sign, hh, mm;

	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		*ret_offset = 0;
		return 0;
	}
	if (*p == '\0') { /* Newtonsoft writes unspecified-kind times bare */
		*ret_offset = 0;
		return 0;
	}
	if (*p != '+' && *p != '-')
		return -EINVAL;
	sign = *p++ == '-' ? -1 : 1;
	if (parse_digits(&p, 2, &hh) < 0)
		return -EINVAL;
	if (*p == ':')
		p++;
	if (parse_digits(&p, 2, &mm) < 0 || *p != '\0' || hh > 23 || mm > 59)
		return -EINVAL;
	*ret_offset = sign * (hh * 3600 + mm * 60);
	return 0;
}

int json_parse_time(const char *s, struct timespec *ret)
{
	const char *p = s;
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, offset;
	long nsec = 0;
	time_t t;

	if (parse_digits(&p, 4, &y) < 0 || *p++ != '-' || parse_digits(&p, 2, &mo) < 0 ||
	    *p++ != '-' || parse_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't'))
		return -EINVAL;
	p++;
	if (parse_digits(&p, 2, &h) < 0 || *p++ != ':' || parse_digits(&p, 2, &mi) < 0 ||
	    *p++ != ':' || parse_digits(&p, 2, &sec) < 0)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (*p == '.') {
		long scale = 100000000;
		int n = 0;

		for (p++; isdigit((unsigned char)*p); p++, n++) {
			nsec += (*p - '0') * scale; /* digits past 9 add nothing */
			scale /= 10;
		}
		if (n == 0)
			return -EINVAL;
	}
	if (parse_zone(p, &offset) < 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	ret->tv_sec = t - offset;
	ret->tv_nsec = nsec;
	return 0;
}

void json_format_time(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	time_t t = ts->tv_sec;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "1970-01-01T00:00:00Z");
}

/* ---- ids */

bool json_is_guid(const char *s)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };

	for (size_t g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

bool json_is_party_id(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n <= 19 && s[n] == '\0';
}

char *jsn_lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* ---- data elements */

static int parse_element(json_t *obj, struct alt_data_element *el)
{
	const char *id = jsn_get_str(obj, "id");
	const char *type = jsn_get_str(obj, "dataType");
	int64_t size = jsn_get_int(obj, "size", 0);

	if (!id || !json_is_guid(id)) {
		log_warn("data element with malformed id \"%.40s\" skipped", id ? id : "");
		return -EINVAL;
	}
	if (!type || !*type) {
		log_warn("data element \"%s\" without dataType skipped", id);
		return -EINVAL;
	}
	/* deleted by a user (DataController.Delete with delay): Storage
	 * still lists it to the app owner, but it is no file any more */
	if (jsn_get_bool(json_object_get(obj, "deleteStatus"), "isHardDeleted"))
		return -ENOENT;
	el->id = jsn_lower_dup(id);
	el->data_type = xstrdup(type);
	el->filename = jsn_dup_str(obj, "filename");
	el->content_type = jsn_dup_str(obj, "contentType");
	el->content_hash = jsn_dup_str(obj, "contentHash");
	el->size = size > 0 ? (uint64_t)size : 0;
	jsn_get_time(obj, "created", &el->created);
	jsn_get_time(obj, "lastChanged", &el->last_changed);
	el->locked = jsn_get_bool(obj, "locked");
	return 0;
}

static void element_clear(struct alt_data_element *el)
{
	free(el->id);
	free(el->data_type);
	free(el->filename);
	free(el->content_type);
	free(el->content_hash);
}

/* by guid, then by position, so the first of equal guids is the earliest */
static int cmp_element_id(const void *a, const void *b)
{
	const struct alt_data_element *const *x = a, *const *y = b;
	int c = strcmp((*x)->id, (*y)->id);

	if (c)
		return c;
	return *x < *y ? -1 : *x > *y;
}

/* Two elements with one guid would be one file with two meanings: keep
 * the first in platform order and drop the others. */
static void drop_duplicate_elements(struct alt_instance *inst)
{
	struct alt_data_element **sorted;
	size_t kept = 0;

	if (inst->n_data < 2)
		return;
	sorted = xmalloc(inst->n_data * sizeof(*sorted));
	for (size_t i = 0; i < inst->n_data; i++)
		sorted[i] = &inst->data[i];
	qsort(sorted, inst->n_data, sizeof(*sorted), cmp_element_id);
	for (size_t i = 1, first = 0; i < inst->n_data; i++) {
		if (strcmp(sorted[i]->id, sorted[first]->id) != 0) {
			first = i;
			continue;
		}
		log_warn("instance \"%s\": duplicate data element \"%s\" skipped", inst->id,
			 sorted[i]->id);
		element_clear(sorted[i]);
		sorted[i]->id = NULL;
	}
	free(sorted);
	for (size_t i = 0; i < inst->n_data; i++)
		if (inst->data[i].id)
			inst->data[kept++] = inst->data[i];
	inst->n_data = kept;
}

static void parse_elements(json_t *arr, struct alt_instance *inst)
{
	size_t n = json_array_size(arr), i;
	json_t *item;

	if (n > ALT_MAX_DATA_ELEMENTS) {
		log_warn("instance \"%s\" has %zu data elements; showing the first %u", inst->id, n,
			 ALT_MAX_DATA_ELEMENTS);
		n = ALT_MAX_DATA_ELEMENTS;
	}
	inst->data = xcalloc(n ? n : 1, sizeof(*inst->data));
	json_array_foreach(arr, i, item) {
		if (i >= n)
			break;
		if (json_is_object(item) && parse_element(item, &inst->data[inst->n_data]) == 0)
			inst->n_data++;
	}
	drop_duplicate_elements(inst);
}

/* ---- instances */

/* `id` is "<partyId>/<guid>" and, when instanceOwner.partyId is given, the
 * two agree: the id becomes two directory names, so it must be exact. */
static int check_instance_id(json_t *obj, const char *id, char **ret_party, char **ret_guid)
{
	const char *slash = id ? strchr(id, '/') : NULL;
	json_t *owner_party = json_object_get(json_object_get(obj, "instanceOwner"), "partyId");
	char *party;

	if (!slash)
		return -EINVAL;
	party = xstrndup(id, (size_t)(slash - id));
	if (!json_is_party_id(party) || !json_is_guid(slash + 1))
		goto fail;
	if (json_is_string(owner_party) && strcmp(json_string_value(owner_party), party) != 0)
		goto fail;
	if (json_is_integer(owner_party) && json_integer_value(owner_party) != strtoll(party, NULL, 10))
		goto fail;
	*ret_party = party;
	*ret_guid = jsn_lower_dup(slash + 1);
	return 0;
fail:
	free(party);
	return -EINVAL;
}

/* Is v nested deeper than limit? Stops descending at the limit. */
static bool too_deep(json_t *v, int limit)
{
	const char *key;
	json_t *item;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return false;
	if (limit <= 0)
		return true;
	if (json_is_object(v)) {
		json_object_foreach(v, key, item)
			if (too_deep(item, limit - 1))
				return true;
	} else {
		json_array_foreach(v, i, item)
			if (too_deep(item, limit - 1))
				return true;
	}
	return false;
}

int jsn_instance_from_json(json_t *obj, struct alt_instance **ret)
{
	const char *id = jsn_get_str(obj, "id");
	json_t *process = json_object_get(obj, "process");
	struct alt_instance *inst;
	char *party, *guid;

	if (check_instance_id(obj, id, &party, &guid) < 0) {
		log_warn("instance with malformed id \"%.60s\" skipped", id ? id : "");
		return -EINVAL;
	}
	if (too_deep(obj, ALT_MAX_DOC_DEPTH)) {
		log_warn("instance \"%s\" skipped: nested deeper than %d", id, ALT_MAX_DOC_DEPTH);
		free(party);
		free(guid);
		return -EINVAL;
	}
	inst = xcalloc(1, sizeof(*inst));
	inst->refcount = 1;
	inst->id = xstrdup(id);
	inst->party_id = party;
	inst->guid = guid;
	jsn_get_time(obj, "created", &inst->created);
	jsn_get_time(obj, "lastChanged", &inst->last_changed);
	if (jsn_get_str(process, "ended")) {
		inst->is_complete = true;
		jsn_get_time(process, "ended", &inst->ended);
	}
	inst->hard_deleted = jsn_get_bool(json_object_get(obj, "status"), "isHardDeleted");
	parse_elements(json_object_get(obj, "data"), inst);
	inst->doc = jsn_dump_doc(obj, &inst->doc_len);
	if (inst->doc_len > ALT_MAX_INSTANCE_DOC) {
		log_warn("instance \"%s\" skipped: its document is %zu bytes, over %u", id,
			 inst->doc_len, ALT_MAX_INSTANCE_DOC);
		alt_instance_unref(inst);
		return -EFBIG;
	}
	*ret = inst;
	return 0;
}

int json_parse_instance(const char *text, size_t len, struct alt_instance **ret)
{
	json_t *root = jsn_load(text, len, "instance");
	int r;

	if (!root)
		return -EIO;
	r = jsn_instance_from_json(root, ret);
	json_decref(root);
	return r < 0 ? -EIO : 0;
}

int json_parse_page(const char *text, size_t len, struct json_page *ret)
{
	json_t *root = jsn_load(text, len, "instance query page");
	struct json_page page = { .count = -1 };
	json_t *arr, *item;
	size_t i;

	if (!root)
		return -EIO;
	arr = json_object_get(root, "instances");
	if (!json_is_array(arr) && !json_is_null(arr) && arr) {
		log_warn("cannot parse instance query page: \"instances\" is not a list");
		json_decref(root);
		return -EIO;
	}
	if (json_array_size(arr) > ALT_MAX_PAGE_SIZE) {
		/* we never ask for more: a page this long is not an answer */
		log_warn("cannot parse instance query page: %zu instances, over %d",
			 json_array_size(arr), ALT_MAX_PAGE_SIZE);
		json_decref(root);
		return -EIO;
	}
	page.instances = xcalloc(json_array_size(arr) + 1, sizeof(*page.instances));
	json_array_foreach(arr, i, item) {
		if (json_is_object(item) &&
		    jsn_instance_from_json(item, &page.instances[page.n_instances]) == 0)
			page.n_instances++;
	}
	page.next = jsn_dup_str(root, "next");
	if (page.next && !*page.next) {
		free(page.next);
		page.next = NULL;
	}
	page.count = jsn_get_int(root, "count", -1);
	json_decref(root);
	*ret = page;
	return 0;
}

void json_page_clear(struct json_page *page)
{
	for (size_t i = 0; i < page->n_instances; i++)
		alt_instance_unref(page->instances[i]);
	free(page->instances);
	free(page->next);
	memset(page, 0, sizeof(*page));
}

/* ---- application metadata */

static char **string_list(json_t *arr)
{
	char **list = xcalloc(json_array_size(arr) + 1, sizeof(*list));
	size_t i, n = 0;
	json_t *item;

	json_array_foreach(arr, i, item)
		if (json_is_string(item))
			list[n++] = xstrdup(json_string_value(item));
	return list;
}

static int clamp_int(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int)v;
}

static int parse_data_type(json_t *obj, struct alt_data_type *dt)
{
	const char *id = jsn_get_str(obj, "id");
	json_t *logic = json_object_get(obj, "appLogic"), *contributors;

	if (!id || !*id)
		return -EINVAL;
	dt->id = xstrdup(id);
	dt->allowed_content_types = string_list(json_object_get(obj, "allowedContentTypes"));
	dt->max_size_mb = jsn_get_int(obj, "maxSize", 0);
	/* the platform's model defaults maxCount to 1 and minCount to 0 */
	dt->max_count = clamp_int(jsn_get_int(obj, "maxCount", 1));
	dt->min_count = clamp_int(jsn_get_int(obj, "minCount", 0));
	dt->task_id = jsn_dup_str(obj, "taskId");
	dt->has_app_logic = json_is_object(logic);
	/* Storage's model spells it allowedContributers; newer apps write
	 * allowedContributors */
	contributors = json_object_get(obj, "allowedContributors");
	if (!json_is_array(contributors))
		contributors = json_object_get(obj, "allowedContributers");
	dt->allowed_contributors = json_is_array(contributors) && json_array_size(contributors)
				   ? string_list(contributors) : NULL;
	dt->action_required_to_write = jsn_dup_str(obj, "actionRequiredToWrite");
	return 0;
}

/* "org/app" with names that are safe as one directory each. */
static bool split_app_id(const char *id, char **ret_org, char **ret_app)
{
	const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
	size_t n_org = id ? strspn(id, ok) : 0;
	const char *app = id ? id + n_org + 1 : NULL;
	size_t n_app;

	if (n_org == 0 || id[n_org] != '/')
		return false;
	n_app = strspn(app, ok);
	if (n_app == 0 || app[n_app] != '\0' || n_org > ALT_NAME_MAX || n_app > ALT_NAME_MAX)
		return false;
	if (strcmp(app, ".") == 0 || strcmp(app, "..") == 0 || strncmp(id, "./", 2) == 0 ||
	    strncmp(id, "../", 3) == 0)
		return false;
	*ret_org = xstrndup(id, n_org);
	*ret_app = xstrdup(app);
	return true;
}

int json_parse_app(const char *text, size_t len, struct alt_app **ret)
{
	json_t *root = jsn_load(text, len, "application metadata");
	const char *id;
	struct alt_app *app;
	json_t *types, *item;
	size_t i;

	if (!root)
		return -EIO;
	id = jsn_get_str(root, "id");
	app = xcalloc(1, sizeof(*app));
	if (!split_app_id(id, &app->org, &app->app)) {
		log_warn("application metadata with malformed id \"%.60s\"", id ? id : "");
		free(app);
		json_decref(root);
		return -EIO;
	}
	app->id = xstrdup(id);
	jsn_get_time(root, "created", &app->created);
	jsn_get_time(root, "lastChanged", &app->last_changed);
	types = json_object_get(root, "dataTypes");
	app->types = xcalloc(json_array_size(types) + 1, sizeof(*app->types));
	json_array_foreach(types, i, item) {
		if (json_is_object(item) && parse_data_type(item, &app->types[app->n_types]) == 0)
			app->n_types++;
	}
	app->doc = jsn_dump_doc(root, &app->doc_len);
	json_decref(root);
	*ret = app;
	return 0;
}

/* ---- JWT payload */

static int b64url_value(int c)
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

/* base64url without padding (RFC 7515 section 2), '=' tolerated */
static int b64url_decode(const char *s, size_t n, char **ret, size_t *ret_len)
{
	char *out = xmalloc(n / 4 * 3 + 4);
	uint32_t acc = 0;
	size_t len = 0;
	int bits = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64url_value((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[len++] = (char)((acc >> bits) & 0xff);
		}
	}
	*ret = out;
	*ret_len = len;
	return 0;
}

int json_jwt_claims(const char *token, struct jwt_claims *ret)
{
	const char *dot1 = strchr(token, '.'), *dot2;
	struct jwt_claims c = { .subject = "" };
	const char *subject;
	char *payload;
	size_t len;
	json_t *root;

	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || (size_t)(dot2 - dot1) > ALT_MAX_TOKEN)
		return -EINVAL;
	if (b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, &len) < 0)
		return -EINVAL;
	root = json_loadb(payload, len, 0, NULL);
	free(payload);
	if (!json_is_object(root)) {
		json_decref(root);
		return -EINVAL;
	}
	subject = jsn_get_str(root, "urn:altinn:org");
	if (!subject)
		subject = jsn_get_str(root, "client_id");
	if (!subject)
		subject = jsn_get_str(root, "sub");
	if (subject)
		snprintf(c.subject, sizeof(c.subject), "%s", subject);
	c.exp.tv_sec = (time_t)jsn_get_int(root, "exp", 0);
	if (jsn_get_str(root, "scope"))
		snprintf(c.scope, sizeof(c.scope), "%s", jsn_get_str(root, "scope"));
	json_decref(root);
	*ret = c;
	return 0;
}

/* ---- status.json */

json_t *jsn_time_or_null(const struct timespec *ts)
{
	char buf[32];

	if (ts->tv_sec == 0 && ts->tv_nsec == 0)
		return json_null();
	json_format_time(ts, buf, sizeof(buf));
	return json_string(buf);
}

/* status.json must always parse: text that is not UTF-8 (a reason phrase
 * from the network, a mount path) is shown with '?' for the odd bytes. */
char *jsn_utf8_safe(const char *s)
{
	json_t *v = json_string(s);
	char *copy = xstrdup(s);

	if (!v)
		for (char *p = copy; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	json_decref(v);
	return copy;
}

json_t *jsn_str_or_null(const char *s)
{
	json_t *v;
	char *safe;

	if (!s || !*s)
		return json_null();
	safe = jsn_utf8_safe(s);
	v = json_string(safe);
	free(safe);
	return v;
}

static json_t *status_index(const struct alt_status_index *x)
{
	json_t *v = json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			      "state", jsn_str_or_null(x->state), "partial", x->partial,
			      "instances", (json_int_t)x->instances, "pages", (json_int_t)x->pages,
			      "refreshes", (json_int_t)x->refreshes, "refresh_pages",
			      (json_int_t)x->refresh_pages, "started_at",
			      jsn_time_or_null(&x->started_at), "completed_at",
			      jsn_time_or_null(&x->completed_at), "estimated_completion",
			      jsn_time_or_null(&x->estimated_completion), "refreshed_at",
			      jsn_time_or_null(&x->refreshed_at), "newest",
			      jsn_time_or_null(&x->newest), "since", jsn_str_or_null(x->since),
			      "last_error", jsn_str_or_null(x->last_error));

	if (!v)
		abort();
	return v;
}

static json_t *status_apps(const struct alt_status_app *apps, size_t n, bool events)
{
	json_t *obj = json_object();

	for (size_t i = 0; i < n; i++) {
		json_t *v;
		if (events) {
			const struct alt_status_app *a = &apps[i];

			v = json_pack("{s:o, s:o, s:I}", "cursor", jsn_str_or_null(a->event_cursor),
				      "last_poll_at", jsn_time_or_null(&a->last_poll_at),
				      "pending_files", (json_int_t)a->pending_event_files);
			json_object_set_new(v, "push", !a->push ? json_null() :
					    json_pack("{s:o, s:b}", "subscription",
						      a->push_subscription > 0
						      ? json_integer(a->push_subscription)
						      : json_null(),
						      "validated", a->push_validated));
		} else {
			v = json_pack("{s:b, s:I, s:o}", "metadata_loaded", apps[i].metadata_loaded,
				      "instances_listed", (json_int_t)apps[i].instances_listed,
				      "listed_at", jsn_time_or_null(&apps[i].listed_at));
			if (apps[i].index.on)
				json_object_set_new(v, "index", status_index(&apps[i].index));
		}
		char *key = jsn_utf8_safe(apps[i].id ? apps[i].id : "");
		json_object_set_new(obj, key, v);
		free(key);
	}
	return obj;
}

static json_t *status_cache(const struct alt_cache_status *c)
{
	json_t *obj = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "dir",
				c->on ? jsn_str_or_null(c->dir) : json_null(), "max",
				(json_int_t)c->max, "used", (json_int_t)c->used, "entries",
				(json_int_t)c->entries, "hits", (json_int_t)c->hits, "misses",
				(json_int_t)c->misses, "bytes_fetched", (json_int_t)c->bytes_fetched);

	if (!obj)
		abort();
	return obj;
}

char *json_status_render(const struct alt_health *h, const char *platform_url,
			 const char *mountpoint, const struct alt_status_app *apps,
			 size_t n_apps, const struct alt_status_outbox *outbox)
{
	static const struct alt_status_outbox none;
	struct timespec zero = { 0, 0 };
	json_t *root;
	size_t len;
	char *doc;

	if (!outbox)
		outbox = &none;
	root = json_pack("{s:{s:o, s:b, s:o, s:o}, s:{s:o, s:o, s:o}, s:{s:I, s:o, s:I, s:I}}",
			 "platform", "url", jsn_str_or_null(platform_url), "reachable",
			 h->checked && h->reachable, "last_error", jsn_str_or_null(h->last_error),
			 "checked_at", jsn_time_or_null(h->checked ? &h->checked_at : &zero),
			 "token", "source", jsn_str_or_null(h->token_source[0] ? h->token_source : "none"),
			 "subject", jsn_str_or_null(h->token_subject), "expires_at",
			 jsn_time_or_null(&h->token_expires_at),
			 "outbox", "pending", (json_int_t)outbox->pending, "oldest_pending_at",
			 jsn_time_or_null(&outbox->oldest_pending_at), "retries",
			 (json_int_t)outbox->retries, "failed", (json_int_t)outbox->failed);
	if (!root)
		abort(); /* only allocation failure or a format bug gets here */
	if (outbox->give_up_s > 0) {
		/* how long each journal keeps trying before it gives an item up */
		json_object_set_new(json_object_get(root, "outbox"), "give_up_s",
				    json_integer(outbox->give_up_s));
		json_object_set_new(root, "instance_writes",
				    json_pack("{s:i}", "give_up_s", outbox->instance_writes_give_up_s));
		json_object_set_new(root, "inbox",
				    json_pack("{s:i}", "give_up_s", outbox->inbox_give_up_s));
	}
	json_object_set_new(root, "events", status_apps(apps, n_apps, true));
	json_object_set_new(root, "apps", status_apps(apps, n_apps, false));
	json_object_set_new(root, "mountpoint", jsn_str_or_null(mountpoint));
	json_object_set_new(root, "version", json_string(ALTINNFS_VERSION));
	json_object_set_new(root, "requests", json_integer((json_int_t)h->requests));
	json_object_set_new(root, "cache", status_cache(&h->cache));
	doc = jsn_dump_doc(root, &len);
	json_decref(root);
	return doc;
}

/* ---- owner actions (ctl) and the platform's error messages */

/* out made one printable line in place: it ends up in a file people cat,
 * so no C0 or C1 control (ESC, CSI) from the platform reaches a terminal */
static void printable_line(char *out)
{
	for (unsigned char *p = (unsigned char *)out; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = ' '; /* U+0080..U+009F in UTF-8 */
	}
}

/* The message in an error answer: a ProblemDetails "title: detail", a
 * JSON string, or the first line of plain text; "" when there is none. */
void json_problem_text(const char *body, size_t len, char *out, size_t size)
{
	json_t *root;
	size_t n = 0;

	out[0] = '\0';
	if (!body || !len || !size)
		return;
	root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	if (json_is_object(root)) {
		const char *title = json_string_value(json_object_get(root, "title"));
		const char *detail = json_string_value(json_object_get(root, "detail"));

		if (title && detail && *detail)
			snprintf(out, size, "%s: %s", title, detail);
		else if (title || detail)
			snprintf(out, size, "%s", title ? title : detail);
	} else if (json_is_string(root)) {
		snprintf(out, size, "%s", json_string_value(root));
	}
	json_decref(root);
	if (!out[0]) {
		/* the body is len bytes, not a C string */
		while (n < len && n < size && body[n] != '\r' && body[n] != '\n' && body[n])
			n++;
		snprintf(out, size, "%.*s", (int)n, body);
	}
	printable_line(out);
}

char *json_substatus_body(const char *label, const char *description)
{
	json_t *v = json_pack("{s:s, s:s}", "label", label, "description",
			      description ? description : "");
	char *s;

	if (!v)
		return NULL; /* not valid UTF-8 */
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

char *json_action_body(const char *action)
{
	json_t *v = json_pack("{s:s}", "action", action);
	char *s;

	if (!v)
		return NULL;
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

/* "at Task_2" or "ended" from an AppProcessState; "" when unreadable */
void json_process_summary(const char *body, size_t len, char *out, size_t size)
{
	json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *task = json_object_get(root, "currentTask");
	const char *id = json_string_value(json_object_get(task, "elementId"));

	out[0] = '\0';
	if (id)
		snprintf(out, size, "process at %s", id);
	else if (json_object_get(root, "ended"))
		snprintf(out, size, "process ended");
	json_decref(root);
	printable_line(out);
}
