/* broker.c - Altinn Broker's folders and journal (see broker.h).
 *
 * The family is rooted (family.h): its areas live at
 * MOUNT/broker/<resourceId>/{outbox,sent,failed}/ for each resource of
 * broker_resources. In outbox/ the user makes one folder per recipient,
 * named by its organisation number (checked with its mod-11 check digit
 * before anything is made, so a typo never reaches the platform), and
 * drops files into it; a file is journaled when it is closed (the hook
 * runs after it is durable, before close(2) returns), and from then on
 * it is the worker's (bsend.c): rewriting, renaming or removing it is
 * EBUSY until it has gone to sent/ or failed/. The worker is core's
 * (core/worker.c) over core's durable queue. */
#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_broker.h"
#include "brecv.h"
#include "broker_i.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "xalloc.h"

#define MAX_BACKOFF_MS (300 * 1000)
/* a file still held open by another descriptor at close(2) waits this
 * long for its last close before it is sent anyway */
#define HELD_OPEN_MS 2000

enum br_area { AREA_OUTBOX, AREA_SENT, AREA_FAILED, AREA_INBOX, AREA_EVENTS, BR_N_AREAS };

const char *const br_state_names[BR_N_STATES] = {
	"received", "initializing", "uploading", "following", "sent", "failed", "watching",
};
static const char *const field_names[BF_N_FIELDS] = {
	"resource", "recipient", "name", "md5", "size", "reference", "file_transfer_id",
	"unsure", "asked_at", "status", "tus", "recipients", "property_list",
};
static const struct queue_def queue_def = {
	.name = "broker", .states = br_state_names, .n_states = BR_N_STATES,
	.fields = field_names, .n_fields = BF_N_FIELDS, .max_backoff_ms = MAX_BACKOFF_MS,
};

/* Names that wait: hidden files and a copy under way (.tmp, .part). */
static bool temp_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".part") == 0);
}

/* rel "<recipient>[/<name>[/...]]": its depth, recipient and name. */
struct where {
	int depth;
	char recipient[256];
	const char *name; /* in rel, or NULL */
};

static void locate(const char *rel, struct where *w)
{
	const char *slash = strchr(rel, '/');

	memset(w, 0, sizeof(*w));
	w->depth = *rel ? 1 : 0;
	for (const char *p = rel; *p; p++)
		w->depth += *p == '/';
	snprintf(w->recipient, sizeof(w->recipient), "%.*s",
		 (int)(slash ? (size_t)(slash - rel) : strlen(rel)), rel);
	w->name = slash ? slash + 1 : NULL;
}

static char *key_of(const char *resource, const char *recipient, const char *name)
{
	return xasprintf("%s/%s/%s", resource, recipient, name);
}

/* Is the item of this file (or of the file a sidecar is for) being
 * sent? Then the user must leave it be. */
static bool in_flight(struct broker *b, const char *resource, const struct where *w)
{
	char *base = br_meta_base(w->name);
	char *key = key_of(resource, w->recipient, base ? base : w->name);
	struct queue_item it;
	bool found = queue_find(b->q, key, BR_IN_FLIGHT, &it) == 0;

	if (found)
		queue_item_clear(&it);
	free(key);
	free(base);
	return found;
}

/* A name that is sent when closed: not a copy under way, not a sidecar. */
static bool sendable(const char *name)
{
	char *base = br_meta_base(name);

	free(base);
	return !base && !temp_name(name);
}

/* The file was closed (or moved in): journal it, replacing an item of
 * the same name that was still waiting. */
static void journal_drop(struct broker *b, const char *resource, const struct where *w,
			 bool held_open)
{
	struct queue_item it = { .state = BR_RECEIVED };
	const char *f[3] = { resource, w->recipient, w->name };
	int r;

	it.key = key_of(resource, w->recipient, w->name);
	for (int i = 0; i < 3; i++)
		queue_set(&it.f[i], f[i]);
	if (held_open)
		it.due_at = queue_now_ms(b->q) + HELD_OPEN_MS;
	r = queue_replace(b->q, &it, QUEUE_STATE(BR_RECEIVED));
	if (r < 0)
		log_errno(r, "broker: cannot journal \"%s\"", it.key);
	else
		log_info("broker: \"%s\" dropped for %s", it.key, w->recipient);
	queue_item_clear(&it);
	worker_wake(&b->worker);
}

/* A waiting item's file went away (rm, mv out): nothing to send. */
static void forget_drop(struct broker *b, const char *resource, const struct where *w)
{
	struct queue_query qq = { .states = QUEUE_STATE(BR_RECEIVED) };
	char *key = key_of(resource, w->recipient, w->name);

	qq.key = key;
	queue_delete_where(b->q, &qq);
	free(key);
}

/* Held open at its last close(2): send it now. */
static void released(struct broker *b, const char *resource, const struct where *w)
{
	char *key = key_of(resource, w->recipient, w->name);
	struct queue_item it;

	if (queue_find(b->q, key, QUEUE_STATE(BR_RECEIVED), &it) == 0) {
		it.due_at = 0;
		queue_save(b->q, &it);
		queue_item_clear(&it);
		worker_wake(&b->worker);
	}
	free(key);
}

static int check_outbox(struct broker *b, const struct local_call *c)
{
	struct where w, old;

	locate(c->rel, &w);
	switch (c->op) {
	case LOCAL_MKDIR:
		if (w.depth == 1)
			return br_org_number_ok(c->rel) ? 0 : -EINVAL;
		return -EPERM; /* one folder per recipient, files in it */
	case LOCAL_CREATE:
		if (w.depth != 2)
			return -EPERM;
		if (strlen(w.name) > 200)
			return -ENAMETOOLONG; /* its receipt must be nameable */
		return in_flight(b, c->scope, &w) ? -EBUSY : 0;
	case LOCAL_WRITE:
		if (w.depth != 2 || c->attrs_only)
			return w.depth == 2 || c->attrs_only ? 0 : -EPERM;
		return in_flight(b, c->scope, &w) ? -EBUSY : 0;
	case LOCAL_REMOVE:
		return w.depth == 2 && in_flight(b, c->scope, &w) ? -EBUSY : 0;
	case LOCAL_RENAME:
		locate(c->old_rel ? c->old_rel : "", &old);
		if (w.depth != 2 || old.depth != 2)
			return -EPERM;
		if (!br_org_number_ok(w.recipient) || strlen(w.name) > 200)
			return -EINVAL;
		return in_flight(b, c->scope, &w) || in_flight(b, c->scope, &old) ? -EBUSY : 0;
	case LOCAL_RELEASE:
		return 0;
	}
	return -EPERM;
}

static void done_outbox(struct broker *b, const struct local_call *c)
{
	struct where w, old;

	locate(c->rel, &w);
	switch (c->op) {
	case LOCAL_WRITE:
		if (w.depth == 2 && sendable(w.name) && !c->attrs_only) {
			if (c->error)
				log_warn("broker: a write of \"%s\" failed (%s): not sent", c->rel,
					 strerror(c->error));
			else
				journal_drop(b, c->scope, &w, c->open);
		}
		break;
	case LOCAL_RELEASE:
		if (w.depth == 2)
			released(b, c->scope, &w);
		break;
	case LOCAL_REMOVE:
		if (w.depth == 2)
			forget_drop(b, c->scope, &w);
		break;
	case LOCAL_RENAME:
		locate(c->old_rel ? c->old_rel : "", &old);
		if (old.depth == 2)
			forget_drop(b, c->scope, &old);
		if (w.depth == 2 && sendable(w.name) && !c->is_dir)
			journal_drop(b, c->scope, &w, false);
		break;
	default:
		break;
	}
}

static int hook_check(void *ctx, const struct local_call *c)
{
	struct broker *b = ctx;
	int r;

	if (c->self)
		return 0;
	if (!c->scope)
		return -EPERM;
	if (c->area == AREA_INBOX)
		return brecv_check(b->rx, c);
	if (c->area != AREA_OUTBOX) /* sent/, failed/: read and remove */
		return c->op == LOCAL_REMOVE || (c->op == LOCAL_WRITE && c->attrs_only) ? 0 : -EPERM;
	pthread_mutex_lock(&b->lock);
	r = check_outbox(b, c);
	pthread_mutex_unlock(&b->lock);
	return r;
}

static void hook_done(void *ctx, const struct local_call *c)
{
	struct broker *b = ctx;

	if (!c->self && c->scope && c->area == AREA_INBOX)
		brecv_done(b->rx, c);
	if (c->self || !c->scope || c->area != AREA_OUTBOX)
		return;
	pthread_mutex_lock(&b->lock);
	done_outbox(b, c);
	pthread_mutex_unlock(&b->lock);
}

/* user.altinn.state, .last_error and .id of a file in outbox/ */
static int hook_xattr(void *ctx, const struct local_call *c, const char *name, char **ret)
{
	struct broker *b = ctx;
	struct queue_item it;
	struct where w;
	const char *v = NULL;
	char *key;

	locate(c->rel, &w);
	if (!c->scope || c->area != AREA_OUTBOX || w.depth != 2)
		return -ENODATA;
	key = key_of(c->scope, w.recipient, w.name);
	if (queue_find(b->q, key, BR_LIVE, &it) == 0) {
		if (strcmp(name, "user.altinn.state") == 0)
			v = it.state >= 0 ? br_state_names[it.state] : NULL;
		else if (strcmp(name, "user.altinn.last_error") == 0)
			v = it.last_error;
		else if (strcmp(name, "user.altinn.id") == 0)
			v = it.f[BF_ID];
		if (v)
			*ret = xstrdup(v);
		queue_item_clear(&it);
	}
	free(key);
	return v ? 0 : -ENODATA;
}

static int hook_fill(void *ctx, const struct local_call *c)
{
	struct broker *b = ctx;

	return c->scope && c->area == AREA_INBOX ? brecv_fill(b->rx, c) : 0;
}

/* ---- start: files in outbox/ with no live item (a crash between a
 * file's close and its journaling) are drops */

static void adopt(struct broker *b, const char *resource)
{
	char *path = xasprintf("%s/broker/%s/outbox", b->cfg->state_dir, resource);
	DIR *d = opendir(path), *sub;
	struct dirent *de, *fe;

	while (d && (de = readdir(d))) {
		char *dir;

		if (de->d_name[0] == '.' || !br_org_number_ok(de->d_name))
			continue;
		dir = xasprintf("%s/%s", path, de->d_name);
		sub = opendir(dir);
		while (sub && (fe = readdir(sub))) {
			struct where w = { .depth = 2, .name = fe->d_name };
			struct stat st;
			char *key;
			struct queue_item it;

			if (!sendable(fe->d_name) || fstatat(dirfd(sub), fe->d_name, &st,
							     AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			snprintf(w.recipient, sizeof(w.recipient), "%s", de->d_name);
			key = key_of(resource, w.recipient, w.name);
			if (queue_find(b->q, key, BR_LIVE, &it) == 0)
				queue_item_clear(&it);
			else
				journal_drop(b, resource, &w, false);
			free(key);
		}
		if (sub)
			closedir(sub);
		free(dir);
	}
	if (d)
		closedir(d);
	free(path);
}

/* ---- broker/<resourceId>/status.json */

struct census {
	struct broker_status st;
	char *last_error;
	int64_t last_error_at;
};

static int count_one(void *ctx, struct queue_item *it)
{
	struct census *c = ctx;

	c->st.pending++;
	if (!c->st.oldest_pending_ms || it->created_at < c->st.oldest_pending_ms)
		c->st.oldest_pending_ms = it->created_at;
	if (it->tries > 0 && it->last_error) {
		c->st.retrying++;
		if (it->attempt_at >= c->last_error_at) {
			free(c->last_error);
			c->last_error = it->last_error;
			c->last_error_at = it->attempt_at;
			it->last_error = NULL;
		}
	}
	return 0;
}

static char *scope_status(void *ctx, const char *scope, size_t *ret_len)
{
	struct broker *b = ctx;
	char *prefix = xasprintf("%s/", scope), *doc;
	struct census c = { .st = { .resource = scope, .give_up_s = b->cfg->broker_give_up } };
	struct queue_query qq = { .key_prefix = prefix, .states = BR_LIVE, .limit = 100000 };

	queue_list(b->q, &qq, count_one, &c);
	queue_count(b->q, &(struct queue_query){ .key_prefix = prefix,
						 .states = BR_PUBLISHED }, &c.st.sent);
	queue_count(b->q, &(struct queue_query){ .key_prefix = prefix,
						 .states = QUEUE_STATE(BR_FAILED) }, &c.st.failed);
	c.st.last_error = c.last_error;
	c.st.poll_s = b->cfg->broker_poll;
	brecv_status(b->rx, scope, &c.st);
	doc = broker_status_doc(&c.st, ret_len);
	free(c.st.inbox_error);
	free(c.st.events_cursor);
	free(c.st.events_off);
	free(c.last_error);
	free(prefix);
	return doc;
}

/* ---- life */

static void broker_free(struct broker *b)
{
	if (!b)
		return;
	brecv_free(b->rx); /* first: its events nudge this worker (bwatch.c) */
	worker_destroy(&b->worker);
	queue_close(b->q);
	journal_free(b->j);
	pthread_mutex_destroy(&b->lock);
	for (size_t i = 0; i < b->n_nudged; i++)
		free(b->nudged[i]);
	free(b->nudged);
	pthread_mutex_destroy(&b->nudge_lock);
	for (size_t i = 0; b->resources && b->resources[i]; i++)
		free(b->resources[i]);
	free(b->resources);
	free(b->mountpoint);
	free(b);
}

/* broker_resources, split; -EINVAL for a name that cannot be a folder
 * or a resource id (Broker's pattern: [^:]{1,255}) */
static int split_resources(const char *list, char ***ret)
{
	char *copy = xstrdup(list), *save = NULL;
	char **v = xcalloc(strlen(list) / 2 + 2, sizeof(*v));
	size_t n = 0;
	int r = 0;

	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (strlen(t) > 255 || strchr(t, '/') || strchr(t, ':') || strcmp(t, ".") == 0 ||
		    strcmp(t, "..") == 0) {
			r = log_errno(-EINVAL, "broker_resources: \"%s\" is not a resource id", t);
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
	struct broker *b = ctx;

	int r;

	for (size_t i = 0; b->resources[i]; i++)
		adopt(b, b->resources[i]);
	r = worker_start(&b->worker);
	return r < 0 ? r : brecv_start(b->rx);
}

static void family_stop(void *ctx)
{
	worker_stop(&((struct broker *)ctx)->worker);
	brecv_stop(((struct broker *)ctx)->rx);
}

static void family_free(void *ctx)
{
	broker_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "broker/<resourceId>/outbox/<recipient>/<name>",
	  "Altinn Broker: drop a file in to send it as one file transfer to the\n"
	  "organisation <recipient> (its 9-digit organisation number: mkdir it first);\n"
	  "names starting with '.' or ending in .tmp or .part wait\n",
	  NULL },
	{ "broker/<resourceId>/outbox/<recipient>/<name>.meta.json",
	  "optional, written before <name>: {\"recipients\": [more organisation\n"
	  "numbers], \"propertyList\": {...}, \"sendersFileTransferReference\": \"...\"}\n"
	  "for that file's transfer; checked before anything is sent\n",
	  NULL },
	{ "broker/<resourceId>/sent/<recipient>/<name>.json",
	  "the receipt of each published transfer: fileTransferId, checksum, size,\n"
	  "times, the transfer's and each recipient's status, kept current until\n"
	  "the transfer is purged (rm of the receipt stops that)\n",
	  NULL },
	{ "broker/<resourceId>/failed/<recipient>/<name> and <name>.error.json",
	  "a transfer Broker refused or failed (checksum, malware), and why\n",
	  NULL },
	{ "broker/<resourceId>/inbox/<fileTransferId>/<fileName> and transfer.json",
	  "each transfer Published to us and not yet confirmed, and its overview\n"
	  "(sender, reference, properties, status); listing never downloads, the\n"
	  "first read does; rm of the file confirms the download to Broker\n",
	  NULL },
	{ "broker/<resourceId>/events/<number>_<type>_<eventId>.json",
	  "Broker's events about us for this resource (published, downloadconfirmed,\n"
	  "...), one file each, as the Events API gave them\n",
	  NULL },
	{ NULL, NULL, NULL },
};

static const char *const area_names[BR_N_AREAS] = {
	[AREA_OUTBOX] = "outbox", [AREA_SENT] = "sent", [AREA_FAILED] = "failed",
	[AREA_INBOX] = "inbox", [AREA_EVENTS] = "events",
};

int broker_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct broker *b;
	char *path;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!deps->cfg->broker_resources || !*deps->cfg->broker_resources)
		return 0;
	b = xcalloc(1, sizeof(*b));
	b->cfg = deps->cfg;
	b->a = deps->a;
	b->mountpoint = xstrdup(deps->mountpoint);
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->nudge_lock, NULL);
	worker_init(&b->worker, "broker", br_work_one, b);
	r = split_resources(deps->cfg->broker_resources, &b->resources);
	path = xasprintf("%s/broker.db", deps->cfg->state_dir);
	if (r == 0)
		r = journal_new("broker", path, false, &b->j);
	free(path);
	if (r == 0)
		r = queue_open(b->j, &queue_def, &b->q);
	if (r == 0)
		r = brecv_new(deps, b->j, b->resources, &b->rx);
	if (r == 0) /* Broker's events about our transfers: their receipts look again */
		brecv_on_event(b->rx, br_watch_nudge, b);
	if (r < 0) {
		broker_free(b);
		return log_errno(r, "cannot open the Broker journal in \"%s\"",
				 deps->cfg->state_dir);
	}
	*ret = (struct fs_family){ .name = "broker", .ctx = b, .readme = readme,
				   .root = "broker", .scopes = (const char *const *)b->resources,
				   .scope_status = scope_status,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	for (int a = 0; a < BR_N_AREAS; a++) {
		ret->areas[a].name = area_names[a];
		ret->areas[a].hooks = (struct local_hooks){ .ctx = b, .check = hook_check,
							    .done = hook_done,
							    .xattr = a == AREA_OUTBOX ? hook_xattr
										      : NULL,
							    .fill = a == AREA_INBOX ? hook_fill : NULL };
	}
	return 0;
}
