/* api.c - the platform's endpoints as the plain calls of altinn.h.
 *
 * Each call builds one Storage URL, lets http.c fetch it and json.c parse
 * it, and checks that the answer is about what was asked (an instance
 * lookup must return that instance). Listings follow the platform's `next`
 * links as given, but only on the configured platform: a link to another
 * host is rebased onto ours so the token never travels elsewhere, and a
 * link that repeats, or a listing past ALT_MAX_PAGES pages, ends the
 * listing with a warning instead of looping.
 *
 * Nothing here keeps state between calls apart from the client itself;
 * caching belongs to fs/. */
#include "altinn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "auth.h"
#include "cache.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

/* ---- the client */

int altinn_global_init(void)
{
	json_global_init();
	return http_global_init();
}

void altinn_global_cleanup(void)
{
	http_global_cleanup();
}

/* http.c asks for tokens through these and never includes auth.h. */
static int cred_token(void *ctx, char **ret_token, uint64_t *ret_gen)
{
	return auth_token(ctx, ret_token, ret_gen);
}

static int cred_refresh(void *ctx, uint64_t gen)
{
	return auth_refresh(ctx, gen);
}

static char *cred_subscription_key(void *ctx)
{
	return auth_subscription_key(ctx);
}

int altinn_new(const struct config *cfg, struct altinn **ret)
{
	struct altinn *a;
	int r;

	if (!cfg->platform || !*cfg->platform)
		return log_errno(-EINVAL, "no platform URL configured");
	a = xcalloc(1, sizeof(*a));
	a->cfg = cfg;
	a->storage = xasprintf("%s/storage/api/v1", cfg->platform);
	atomic_init(&a->n_streams, 0);
	r = auth_new(cfg, &a->auth);
	if (r < 0)
		goto out_free;
	a->cred = (struct http_credentials){ a->auth, cred_token, cred_refresh,
					     cred_subscription_key };
	r = http_new(cfg, &a->cred, &a->http);
	if (r < 0)
		goto out_free;
	if (cfg->cache_dir || cfg->state_dir) {
		char *dir = cfg->cache_dir ? xstrdup(cfg->cache_dir)
					   : xasprintf("%s/cache", cfg->state_dir);

		r = cache_new(dir, cfg->cache_max, cfg->timeout, a->http, &a->cache);
		free(dir);
		if (r < 0)
			goto out_free;
	}
	*ret = a;
	return 0;
out_free:
	altinn_free(a);
	return r;
}

void altinn_stop(struct altinn *a)
{
	auth_stop(a->auth);
	http_stop(a->http);
}

void altinn_free(struct altinn *a)
{
	if (!a)
		return;
	cache_free(a->cache); /* before the client its downloads use */
	http_free(a->http);
	auth_free(a->auth);
	free(a->storage);
	free(a);
}

/* An org or app name as one URL path segment: the characters Altinn
 * allows, so nothing needs guessing about escaping. */
static bool valid_name(const char *s)
{
	size_t n = s ? strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") : 0;
	return n > 0 && n <= ALT_NAME_MAX && s[n] == '\0';
}

int altinn_get_app(struct altinn *a, const char *org, const char *app, struct alt_app **ret)
{
	struct alt_app *parsed;
	char *url, *body;
	size_t len;
	int r;

	if (!valid_name(org) || !valid_name(app))
		return -ENOENT;
	url = xasprintf("%s/applications/%s/%s", a->storage, org, app);
	r = http_get(a->http, url, ALT_MAX_JSON_BODY, &body, &len);
	if (r < 0)
		goto out_free_url;
	r = json_parse_app(body, len, &parsed);
	free(body);
	if (r < 0)
		goto out_free_url;
	if (strcasecmp(parsed->org, org) != 0 || strcasecmp(parsed->app, app) != 0) {
		log_warn("asked for \"%s/%s\", the platform answered with \"%s\"", org, app,
			 parsed->id);
		alt_app_free(parsed);
		r = -EIO;
		goto out_free_url;
	}
	*ret = parsed;
out_free_url:
	free(url);
	return r;
}

int altinn_get_instance(struct altinn *a, const char *party_id, const char *guid,
			struct alt_instance **ret)
{
	struct alt_instance *inst;
	char *url, *body;
	size_t len;
	int r;

	if (!party_id || !guid || !json_is_party_id(party_id) || !json_is_guid(guid))
		return -ENOENT;
	url = xasprintf("%s/instances/%s/%s", a->storage, party_id, guid);
	r = http_get(a->http, url, ALT_MAX_JSON_BODY, &body, &len);
	if (r < 0)
		goto out_free_url;
	r = json_parse_instance(body, len, &inst);
	free(body);
	if (r < 0)
		goto out_free_url;
	if (strcmp(inst->party_id, party_id) != 0 || strcasecmp(inst->guid, guid) != 0) {
		log_warn("asked for instance \"%s/%s\", the platform answered with \"%s\"", party_id,
			 guid, inst->id);
		alt_instance_unref(inst);
		r = -EIO;
		goto out_free_url;
	}
	if (inst->hard_deleted) { /* as the tree's listing: not there */
		alt_instance_unref(inst);
		r = -ENOENT;
		goto out_free_url;
	}
	*ret = inst;
out_free_url:
	free(url);
	return r;
}

/* ---- listings */

static void add_param(char **url, const char *key, const char *value)
{
	char *esc = http_escape(value);
	char *next = xasprintf("%s%s%s=%s", *url, strchr(*url, '?') ? "&" : "?", key, esc);

	free(esc);
	free(*url);
	*url = next;
}

static int query_url(struct altinn *a, const struct alt_query *q, char **ret)
{
	char size[16], *url, *app_id;

	if (!q->org || !valid_name(q->org) || (q->app && !valid_name(q->app)))
		return -EINVAL;
	url = xasprintf("%s/instances", a->storage);
	if (q->app) {
		app_id = xasprintf("%s/%s", q->org, q->app);
		add_param(&url, "appId", app_id);
		free(app_id);
	} else {
		add_param(&url, "org", q->org);
	}
	if (q->party_id)
		add_param(&url, "instanceOwner.partyId", q->party_id);
	if (q->is_complete >= 0)
		add_param(&url, "process.isComplete", q->is_complete ? "true" : "false");
	if (q->exclude_confirmed_by)
		add_param(&url, "excludeConfirmedBy", q->exclude_confirmed_by);
	else if (!q->with_deleted) /* Storage lists hard-deleted instances to
				    * their app owner; the tree shows only live
				    * ones (the inbox query takes them all) */
		add_param(&url, "status.isHardDeleted", "false");
	if (q->last_changed_gt) {
		char *v = xasprintf("gt:%s", q->last_changed_gt);
		add_param(&url, "lastChanged", v);
		free(v);
	}
	if (q->ascending)
		add_param(&url, "order", "asc:lastChanged");
	snprintf(size, sizeof(size), "%d",
		 a->cfg->page_size > 0 && a->cfg->page_size <= ALT_MAX_PAGE_SIZE ? a->cfg->page_size
										 : 100);
	add_param(&url, "size", size);
	*ret = url;
	return 0;
}

/* The `next` link, kept on our platform: verbatim when it points there,
 * else its path and query on our platform's origin. */
static char *next_url(struct altinn *a, const char *next)
{
	const char *platform = a->cfg->platform, *p, *origin_end;
	size_t n = strlen(platform);

	if (strncasecmp(next, platform, n) == 0 && (next[n] == '/' || next[n] == '?'))
		return xstrdup(next);
	p = strstr(next, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	origin_end = strstr(platform, "://");
	origin_end = origin_end ? strchr(origin_end + 3, '/') : NULL;
	if (!p)
		return NULL;
	log_debug("next link points off the platform; following its path on \"%s\"", platform);
	return xasprintf("%.*s%s", (int)(origin_end ? origin_end - platform : (long)n), platform, p);
}

/* Hands a page's instances to cb; returns cb's first non-zero answer. */
static int deliver(struct json_page *page, alt_instance_cb cb, void *ctx)
{
	int r = 0;

	for (size_t i = 0; i < page->n_instances; i++) {
		struct alt_instance *inst = page->instances[i];
		page->instances[i] = NULL;
		if (r == 0)
			r = cb(inst, ctx);
		else
			alt_instance_unref(inst);
	}
	page->n_instances = 0;
	return r;
}

/* Brent's cycle finding over the `next` links of one listing: a loop of
 * any length (A, B, A, ...) is seen within twice its length plus the
 * pages before it, holding one saved link. */
struct loop_check {
	char *saved;
	unsigned long steps, power;
};

static bool loop_seen(struct loop_check *lc, const char *next)
{
	if (lc->saved && strcmp(lc->saved, next) == 0)
		return true;
	if (++lc->steps >= lc->power) {
		free(lc->saved);
		lc->saved = xstrdup(next);
		lc->power *= 2;
		lc->steps = 0;
	}
	return false;
}

static void listing_stopped(const struct alt_query *q, const char *why)
{
	log_warn("listing of \"%s%s%s\" stopped: %s", q->org, q->app ? "/" : "",
		 q->app ? q->app : "", why);
}

int altinn_list_instances(struct altinn *a, const struct alt_query *q, alt_instance_cb cb,
			  void *ctx)
{
	struct loop_check lc = { .power = 1 };
	char *url, *body;
	int r, pages = 0;
	size_t len, listed = 0;

	r = query_url(a, q, &url);
	if (r < 0)
		return r;
	lc.saved = xstrdup(url);
	for (;;) {
		struct json_page page;
		char *next;

		r = http_get(a->http, url, ALT_MAX_JSON_BODY, &body, &len);
		if (r < 0)
			break;
		r = json_parse_page(body, len, &page);
		free(body);
		if (r < 0) {
			http_note_problem(a->http, "GET /storage/api/v1/instances: an answer that is "
						   "not an instance query page");
			break;
		}
		http_note_problem(a->http, NULL);
		listed += page.n_instances;
		if (listed > (size_t)a->cfg->max_listed) {
			json_page_clear(&page);
			listing_stopped(q, "more instances than one listing may hold");
			r = -EFBIG;
			break;
		}
		r = deliver(&page, cb, ctx);
		next = page.next ? next_url(a, page.next) : NULL;
		json_page_clear(&page);
		if (r != 0 || !next) {
			free(next);
			break;
		}
		if (loop_seen(&lc, next) || ++pages >= ALT_MAX_PAGES) {
			/* the pages so far were a loop's, not the listing: no answer */
			listing_stopped(q, pages >= ALT_MAX_PAGES ? "too many pages"
							    : "the next links go round in a loop");
			free(next);
			r = -EIO;
			break;
		}
		free(url);
		url = next;
	}
	free(lc.saved);
	free(url);
	return r;
}

struct alt_page {
	char *body;
	size_t len;
};

int altinn_page_fetch(struct altinn *a, const struct alt_query *q, const char *from,
		      struct alt_page **ret)
{
	struct alt_page *p;
	char *url, *body;
	size_t len;
	int r;

	if (from) {
		url = next_url(a, from);
		if (!url)
			return -EIO;
	} else {
		r = query_url(a, q, &url);
		if (r < 0)
			return r;
	}
	r = http_get(a->http, url, ALT_MAX_JSON_BODY, &body, &len);
	free(url);
	if (r < 0)
		return r;
	p = xcalloc(1, sizeof(*p));
	p->body = body;
	p->len = len;
	*ret = p;
	return 0;
}

void altinn_page_peek(const struct alt_page *p, char **ret_next, long long *ret_count)
{
	*ret_next = NULL;
	*ret_count = -1;
	if (json_scan_member(p->body, p->len, "count", NULL, ret_count) < 0)
		*ret_count = -1;
	if (json_scan_member(p->body, p->len, "next", ret_next, NULL) < 0)
		*ret_next = NULL;
}

static int page_deliver(struct altinn *a, struct alt_page *p, alt_instance_cb cb, void *ctx,
			char **ret_next)
{
	struct json_page page;
	char *next;
	int r = json_parse_page(p->body, p->len, &page);

	if (r < 0) {
		http_note_problem(a->http, "GET /storage/api/v1/instances: an answer that is "
					   "not an instance query page");
		return r;
	}
	http_note_problem(a->http, NULL);
	next = page.next ? xstrdup(page.next) : NULL;
	r = deliver(&page, cb, ctx);
	json_page_clear(&page);
	if (r != 0) {
		free(next);
		return r;
	}
	*ret_next = next;
	return 0;
}

static int raw_from_instance(struct alt_instance *inst, alt_raw_cb cb, void *ctx)
{
	struct alt_raw_instance ri = {
		.party_id = inst->party_id, .guid = inst->guid, .created = inst->created,
		.last_changed = inst->last_changed, .is_complete = inst->is_complete,
		.hard_deleted = inst->hard_deleted, .doc = inst->doc, .doc_len = inst->doc_len,
	};
	int r = cb(&ri, ctx);

	alt_instance_unref(inst);
	return r;
}

/* One scanned instance: its own bytes, or jansson's verdict on them. */
static int deliver_fast(const struct json_fast_inst *fi, alt_raw_cb cb, void *ctx)
{
	struct alt_raw_instance ri = {
		.party_id = fi->party_id, .guid = fi->guid, .created = fi->created,
		.last_changed = fi->last_changed, .is_complete = fi->is_complete,
		.hard_deleted = fi->hard_deleted, .doc = fi->doc, .doc_len = fi->doc_len,
	};
	struct alt_instance *inst;

	if (!fi->unsure)
		return cb(&ri, ctx);
	if (json_parse_instance(fi->doc, fi->doc_len, &inst) < 0)
		return 0; /* skipped, as in a page parse (it said why) */
	return raw_from_instance(inst, cb, ctx);
}

int altinn_page_deliver_raw(struct altinn *a, struct alt_page *p, alt_raw_cb cb, void *ctx,
			    char **ret_next)
{
	struct json_fast_page fast;
	struct json_page page;
	char *next;
	int r = json_fast_page(p->body, p->len, &fast);

	if (r == 0) {
		http_note_problem(a->http, NULL);
		for (size_t i = 0; r == 0 && i < fast.n; i++)
			r = deliver_fast(&fast.inst[i], cb, ctx);
		next = fast.next;
		fast.next = NULL;
		json_fast_page_clear(&fast);
	} else {
		/* not followed by the scanner: jansson parses (or mends) it */
		r = json_parse_page(p->body, p->len, &page);
		if (r < 0) {
			http_note_problem(a->http, "GET /storage/api/v1/instances: an answer that "
						   "is not an instance query page");
			return r;
		}
		http_note_problem(a->http, NULL);
		next = page.next;
		page.next = NULL;
		for (size_t i = 0; i < page.n_instances; i++) {
			struct alt_instance *inst = page.instances[i];

			page.instances[i] = NULL;
			if (r == 0)
				r = raw_from_instance(inst, cb, ctx);
			else
				alt_instance_unref(inst);
		}
		page.n_instances = 0;
		json_page_clear(&page);
	}
	if (r != 0) {
		free(next);
		return r;
	}
	*ret_next = next;
	return 0;
}

void altinn_page_free(struct alt_page *p)
{
	if (!p)
		return;
	free(p->body);
	free(p);
}

int altinn_list_page(struct altinn *a, const struct alt_query *q, const char *from,
		     alt_instance_cb cb, void *ctx, char **ret_next)
{
	struct alt_page *p;
	int r = altinn_page_fetch(a, q, from, &p);

	if (r < 0)
		return r;
	r = page_deliver(a, p, cb, ctx, ret_next);
	altinn_page_free(p);
	return r;
}

int altinn_parse_instance(const char *doc, size_t len, struct alt_instance **ret)
{
	return json_parse_instance(doc, len, ret);
}

/* ---- health */

void altinn_health(struct altinn *a, struct alt_health *ret)
{
	struct alt_health h;
	struct auth_info info;

	memset(&h, 0, sizeof(h));
	http_health(a->http, &h);
	auth_get_info(a->auth, &info);
	snprintf(h.token_source, sizeof(h.token_source), "%s", info.source);
	snprintf(h.token_subject, sizeof(h.token_subject), "%s", info.subject);
	h.token_expires_at = info.expires_at;
	snprintf(h.token_scope, sizeof(h.token_scope), "%s", info.scope);
	if (info.problem[0]) /* no request gets far while the token source fails */
		snprintf(h.last_error, sizeof(h.last_error), "%.*s", (int)sizeof(h.last_error) - 1,
			 info.problem);
	cache_get_stats(a->cache, &h.cache);
	*ret = h;
}

char *altinn_status_render(struct altinn *a, const char *mountpoint,
			   const struct alt_status_app *apps, size_t n_apps,
			   const struct alt_status_outbox *outbox)
{
	struct alt_status_outbox ob = { 0 };
	struct alt_health h;

	if (outbox)
		ob = *outbox;
	ob.give_up_s = a->cfg->outbox_give_up;
	ob.instance_writes_give_up_s = a->cfg->instance_writes_give_up;
	ob.inbox_give_up_s = a->cfg->inbox_give_up;
	altinn_health(a, &h); /* the cache's figures too */
	return json_status_render(&h, a->cfg->platform, mountpoint, apps, n_apps, &ob);
}
