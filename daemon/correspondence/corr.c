/* corr.c - Altinn Correspondence's folders and journal (see corr.h).
 *
 * The family is rooted (family.h): its areas live at
 * MOUNT/correspondence/<resourceId>/{outbox,sent,failed,events}/ for each
 * resource of correspondence_resources. A message is a folder in
 * outbox/, and it is sent when, and only when, it is renamed into its
 * name there (mv .draft msg): a folder made in place and written there
 * is never sent half-written, since nothing happens until a rename. The
 * rename is journaled before rename(2) returns, and from then on the
 * folder is the worker's (csend.c): changing anything in it is EBUSY
 * until it has gone to sent/ or failed/. The worker is core's
 * (core/worker.c) over core's durable queue; after sending it keeps the
 * receipt current (cfollow.c), and events/ holds the resource's events. */
#include "corr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api_corr.h"
#include "config.h"
#include "corr_i.h"
#include "journal.h"
#include "log.h"
#include "xalloc.h"

#define MAX_BACKOFF_MS (300 * 1000)

enum cr_area { AREA_OUTBOX, AREA_SENT, AREA_FAILED, AREA_EVENTS, CR_N_AREAS };

const char *const cr_state_names[CR_N_STATES] = { "received", "sending", "sent", "failed",
						   "following", "cursor" };
static const char *const field_names[CF_N_FIELDS] = { "resource", "name", "seed", "results",
						      "attachments", "slow", "cursor",
						      "evseq" };
static const struct queue_def queue_def = {
	.name = "correspondence", .states = cr_state_names, .n_states = CR_N_STATES,
	.fields = field_names, .n_fields = CF_N_FIELDS, .max_backoff_ms = MAX_BACKOFF_MS,
};

/* mod-11 with weights w over the first n digits of s: the check digit
 * s[n] must be, or -1 when none can be */
static int mod11(const char *s, const int *w, int n)
{
	int sum = 0, check;

	for (int i = 0; i < n; i++)
		sum += (s[i] - '0') * w[i];
	check = 11 - sum % 11;
	return check == 11 ? 0 : check == 10 ? -1 : check;
}

bool corr_recipient_ok(const char *s)
{
	static const int org[8] = { 3, 2, 7, 6, 5, 4, 3, 2 };
	static const int k1[9] = { 3, 7, 6, 1, 8, 9, 4, 5, 2 };
	static const int k2[10] = { 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
	size_t n = strlen(s);

	if (strspn(s, "0123456789") != n)
		return false;
	if (n == 9)
		return mod11(s, org, 8) == s[8] - '0';
	if (n == 11)
		return mod11(s, k1, 9) == s[9] - '0' && mod11(s, k2, 10) == s[10] - '0';
	return false;
}

/* Names that wait: hidden ones and a copy under way (.tmp, .part). */
static bool temp_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".part") == 0);
}

/* rel "<name>[/...]": its depth and the message folder's name */
static int locate(const char *rel, char name[256])
{
	const char *slash = strchr(rel, '/');
	int depth = *rel ? 1 : 0;

	for (const char *p = rel; *p; p++)
		depth += *p == '/';
	snprintf(name, 256, "%.*s", (int)(slash ? (size_t)(slash - rel) : strlen(rel)), rel);
	return depth;
}

static char *key_of(const char *resource, const char *name)
{
	return xasprintf("%s/%s", resource, name);
}

static bool live(struct corr *c, const char *resource, const char *name, unsigned states)
{
	char *key = key_of(resource, name);
	struct queue_item it;
	bool found = queue_find(c->q, key, states, &it) == 0;

	if (found)
		queue_item_clear(&it);
	free(key);
	return found;
}

/* Being sent: the user must leave it be. */
static bool in_flight(struct corr *c, const char *resource, const char *name)
{
	return live(c, resource, name, QUEUE_STATE(CR_SENDING));
}

static void random_seed(char out[33])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		abort();
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* The folder was renamed into outbox/<name>: journal it (its seed fixes
 * every recipient's idempotentKey from here on). */
static void journal_message(struct corr *c, const char *resource, const char *name)
{
	struct queue_item it = { .state = CR_RECEIVED };
	char seed[33];
	int r;

	random_seed(seed);
	it.key = key_of(resource, name);
	queue_set(&it.f[CF_RESOURCE], resource);
	queue_set(&it.f[CF_NAME], name);
	queue_set(&it.f[CF_SEED], seed);
	r = queue_replace(c->q, &it, QUEUE_STATE(CR_RECEIVED));
	if (r < 0)
		log_errno(r, "correspondence: cannot journal \"%s\"", it.key);
	else
		log_info("correspondence: \"%s\" moved into outbox/", it.key);
	queue_item_clear(&it);
	worker_wake(&c->worker);
}

/* A waiting message went away (rm, mv out): nothing to send. */
static void forget(struct corr *c, const char *resource, const char *name)
{
	struct queue_query qq = { .states = QUEUE_STATE(CR_RECEIVED) };
	char *key = key_of(resource, name);

	qq.key = key;
	queue_delete_where(c->q, &qq);
	free(key);
}

static int check_outbox(struct corr *c, const struct local_call *lc)
{
	char name[256], old[256];
	int depth = locate(lc->rel, name), old_depth;

	switch (lc->op) {
	case LOCAL_MKDIR:
	case LOCAL_CREATE:
		if (depth == 1 && lc->op == LOCAL_CREATE)
			return -EPERM; /* a message is a folder */
		return in_flight(c, lc->scope, name) ? -EBUSY : 0;
	case LOCAL_WRITE:
	case LOCAL_REMOVE:
		return in_flight(c, lc->scope, name) ? -EBUSY : 0;
	case LOCAL_RENAME:
		old_depth = locate(lc->old_rel ? lc->old_rel : "", old);
		if (in_flight(c, lc->scope, name) || in_flight(c, lc->scope, old))
			return -EBUSY;
		if (depth == 1 && !lc->is_dir)
			return -EPERM;
		if (depth == 1 && !temp_name(name) && strlen(name) > 200)
			return -ENAMETOOLONG; /* its receipt must be nameable */
		(void)old_depth;
		return 0;
	case LOCAL_RELEASE:
		return 0;
	}
	return -EPERM;
}

static void done_outbox(struct corr *c, const struct local_call *lc)
{
	char name[256], old[256];
	int depth = locate(lc->rel, name), old_depth;

	switch (lc->op) {
	case LOCAL_REMOVE:
		if (depth == 1)
			forget(c, lc->scope, name);
		break;
	case LOCAL_RENAME:
		old_depth = locate(lc->old_rel ? lc->old_rel : "", old);
		if (old_depth == 1)
			forget(c, lc->scope, old);
		if (depth == 1 && lc->is_dir && !temp_name(name))
			journal_message(c, lc->scope, name);
		break;
	default:
		break;
	}
}

static int hook_check(void *ctx, const struct local_call *lc)
{
	struct corr *c = ctx;
	int r;

	if (lc->self)
		return 0;
	if (!lc->scope)
		return -EPERM;
	if (lc->area != AREA_OUTBOX) /* sent/, failed/, events/: read and remove */
		return lc->op == LOCAL_REMOVE || (lc->op == LOCAL_WRITE && lc->attrs_only) ? 0
											   : -EPERM;
	pthread_mutex_lock(&c->lock);
	r = check_outbox(c, lc);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void hook_done(void *ctx, const struct local_call *lc)
{
	struct corr *c = ctx;

	if (lc->self || !lc->scope || lc->area != AREA_OUTBOX)
		return;
	pthread_mutex_lock(&c->lock);
	done_outbox(c, lc);
	pthread_mutex_unlock(&c->lock);
}

/* user.altinn.state and .last_error of a message folder in outbox/ */
static int hook_xattr(void *ctx, const struct local_call *lc, const char *attr, char **ret)
{
	struct corr *c = ctx;
	struct queue_item it;
	char name[256];
	const char *v = NULL;
	char *key;

	if (!lc->scope || lc->area != AREA_OUTBOX || locate(lc->rel, name) != 1)
		return -ENODATA;
	key = key_of(lc->scope, name);
	if (queue_find(c->q, key, CR_LIVE, &it) == 0) {
		if (strcmp(attr, "user.altinn.state") == 0)
			v = it.state >= 0 ? cr_state_names[it.state] : NULL;
		else if (strcmp(attr, "user.altinn.last_error") == 0)
			v = it.last_error;
		if (v)
			*ret = xstrdup(v);
		queue_item_clear(&it);
	}
	free(key);
	return v ? 0 : -ENODATA;
}

/* ---- correspondence/<resourceId>/status.json */

struct census {
	struct corr_status_facts st;
	char *last_error;
	int64_t last_error_at;
};

static int count_one(void *ctx, struct queue_item *it)
{
	struct census *cs = ctx;

	cs->st.pending++;
	if (!cs->st.oldest_pending_ms || it->created_at < cs->st.oldest_pending_ms)
		cs->st.oldest_pending_ms = it->created_at;
	if (it->tries > 0 && it->last_error) {
		cs->st.retrying++;
		if (it->attempt_at >= cs->last_error_at) {
			free(cs->last_error);
			cs->last_error = it->last_error;
			cs->last_error_at = it->attempt_at;
			it->last_error = NULL;
		}
	}
	return 0;
}

/* a sent message: its recipients by status; followed, and when next */
static int count_sent(void *ctx, struct queue_item *it)
{
	struct census *cs = ctx;

	corr_result_tally(it->f[CF_RESULTS], cs->st.recipients);
	if (it->state == CR_FOLLOWING) {
		cs->st.following++;
		if (it->f[CF_SLOW] &&
		    (!cs->st.next_reconcile_ms || it->due_at < cs->st.next_reconcile_ms))
			cs->st.next_reconcile_ms = it->due_at;
	}
	return 0;
}

static char *scope_status(void *ctx, const char *scope, size_t *ret_len)
{
	struct corr *c = ctx;
	char *prefix = xasprintf("%s/", scope), *doc;
	char *key = xasprintf(CR_CURSOR_KEY "%s", scope);
	struct census cs = { .st = { .resource = scope,
				     .give_up_s = (int)(CORR_GIVE_UP_MS / 1000),
				     .events = c->cfg->correspondence_events,
				     .reconcile_s = c->cfg->correspondence_reconcile } };
	struct queue_query qq = { .key_prefix = prefix, .states = CR_LIVE, .limit = 100000 };
	struct queue_item cur = { 0 };

	queue_list(c->q, &qq, count_one, &cs);
	queue_count(c->q, &(struct queue_query){ .key_prefix = prefix,
						 .states = CR_DONE }, &cs.st.sent);
	queue_count(c->q, &(struct queue_query){ .key_prefix = prefix,
						 .states = QUEUE_STATE(CR_FAILED) }, &cs.st.failed);
	queue_list(c->q, &(struct queue_query){ .key_prefix = prefix, .states = CR_DONE },
		   count_sent, &cs);
	if (c->cfg->correspondence_events &&
	    queue_find(c->q, key, QUEUE_STATE(CR_CURSOR), &cur) == 0) {
		cs.st.cursor = cur.f[CF_CURSOR];
		cs.st.polled_ms = cur.attempt_at;
		cs.st.events_error = cur.last_error;
	}
	cs.st.last_error = cs.last_error;
	cs.st.push = c->push != NULL;
	cpush_status(c->push, scope, &cs.st.push_subscription, &cs.st.push_validated);
	doc = corr_status_doc(&cs.st, ret_len);
	queue_item_clear(&cur);
	free(cs.last_error);
	free(prefix);
	free(key);
	return doc;
}

/* ---- life */

static void corr_free(struct corr *c)
{
	if (!c)
		return;
	cpush_free(c->push); /* its pushes wake the worker */
	worker_destroy(&c->worker);
	queue_close(c->q);
	journal_free(c->j);
	pthread_mutex_destroy(&c->lock);
	for (size_t i = 0; c->resources && c->resources[i]; i++)
		free(c->resources[i]);
	free(c->resources);
	free(c->mountpoint);
	free(c);
}

/* correspondence_resources, split; -EINVAL for a name that cannot be a
 * folder or a resource id */
static int split_resources(const char *list, char ***ret)
{
	char *copy = xstrdup(list), *save = NULL;
	char **v = xcalloc(strlen(list) / 2 + 2, sizeof(*v));
	size_t n = 0;
	int r = 0;

	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (strlen(t) > 255 || strchr(t, '/') || strchr(t, ':') || strcmp(t, ".") == 0 ||
		    strcmp(t, "..") == 0) {
			r = log_errno(-EINVAL, "correspondence_resources: \"%s\" is not a resource id",
				      t);
			break;
		}
		v[n++] = xstrdup(t);
	}
	free(copy);
	*ret = v;
	return r;
}

static int family_start(void *ctx)
{
	return worker_start(&((struct corr *)ctx)->worker);
}

static void family_stop(void *ctx)
{
	cpush_stop(((struct corr *)ctx)->push);
	worker_stop(&((struct corr *)ctx)->worker);
}

static void family_free(void *ctx)
{
	corr_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "correspondence/<resourceId>/outbox/<name>/",
	  "Altinn Correspondence: one message, sent when the folder is renamed into\n"
	  "outbox/ (write it as outbox/.<name>, then mv it to outbox/<name>):\n"
	  "message.md (first line \"# <title>\", then the Markdown body), recipients\n"
	  "(one 9-digit organisation or 11-digit person number a line), and an optional\n"
	  "meta.json (summary, sendersReference, language, dueDateTime, ... the API's names),\n"
	  "and attachments/ (each file one attachment, uploaded once for all recipients)\n",
	  NULL },
	{ "correspondence/<resourceId>/sent/<name>.json",
	  "the receipt of a sent message: each recipient's correspondenceId and status\n"
	  "(Published, Fetched, Read, Confirmed, Failed ...), kept current by events and\n"
	  "a slow reconciling read; or why the platform refused that recipient\n",
	  NULL },
	{ "correspondence/<resourceId>/events/<number>_<type>_<id>.json",
	  "the resource's Correspondence events (published, read, confirmed ...), one\n"
	  "file each, numbered in arrival order; rm when handled\n",
	  NULL },
	{ "correspondence/<resourceId>/failed/<name>/ and <name>.error.json",
	  "a message refused before anything was sent (the field at fault), or by the\n"
	  "platform for every recipient, and why\n",
	  NULL },
	{ NULL, NULL, NULL },
};

static const char *const area_names[CR_N_AREAS] = {
	[AREA_OUTBOX] = "outbox", [AREA_SENT] = "sent", [AREA_FAILED] = "failed",
	[AREA_EVENTS] = "events",
};

int corr_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct corr *c;
	char *path;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!deps->cfg->correspondence_resources || !*deps->cfg->correspondence_resources)
		return 0;
	c = xcalloc(1, sizeof(*c));
	c->cfg = deps->cfg;
	c->a = deps->a;
	c->mountpoint = xstrdup(deps->mountpoint);
	pthread_mutex_init(&c->lock, NULL);
	worker_init(&c->worker, "correspondence", cr_work_one, c);
	r = split_resources(deps->cfg->correspondence_resources, &c->resources);
	path = xasprintf("%s/correspondence.db", deps->cfg->state_dir);
	if (r == 0)
		r = journal_new("correspondence", path, false, &c->j);
	free(path);
	if (r == 0)
		r = queue_open(c->j, &queue_def, &c->q);
	if (r == 0 && c->cfg->correspondence_events)
		r = cr_events_init(c);
	if (r == 0)
		c->push = cpush_new(c, deps->push);
	if (r < 0) {
		corr_free(c);
		return log_errno(r, "cannot open the Correspondence journal in \"%s\"",
				 deps->cfg->state_dir);
	}
	*ret = (struct fs_family){ .name = "correspondence", .ctx = c, .readme = readme,
				   .root = "correspondence",
				   .scopes = (const char *const *)c->resources,
				   .scope_status = scope_status,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	for (int a = 0; a < CR_N_AREAS; a++) {
		ret->areas[a].name = area_names[a];
		ret->areas[a].hooks = (struct local_hooks){ .ctx = c, .check = hook_check,
							    .done = hook_done,
							    .xattr = a == AREA_OUTBOX ? hook_xattr
										      : NULL };
	}
	return 0;
}
