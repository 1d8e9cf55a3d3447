/* outbox.c - files dropped into outbox/<owner>/ become submissions.
 *
 * This file keeps the items (one per file or folder dropped) and answers
 * for the outbox/, sent/ and failed/ areas through the hooks fs/ calls:
 * what a user may do there, and what a change means. A regular file
 * closed after writing, or anything renamed in under a name that is not
 * temporary, becomes an item in the journal (spool.c) before the hook
 * returns; uploaders (uploader.c) deliver it. The bytes themselves stay
 * where the user put them, already durable (fs/ fsyncs at close).
 *
 * Rules, in short (docs/outbox.md has them in full):
 *   outbox/            only owner folders (org-<9>, person-<11>, party-<id>):
 *                      another mkdir is EINVAL, a file EPERM;
 *   outbox/<owner>/    files; folders only under a temporary name, to be
 *                      renamed when complete (EPERM otherwise);
 *   an item being delivered cannot be written, removed or renamed: EBUSY;
 *   sent/, failed/     users read and remove; only the daemon creates.
 *
 * On start the journal and the folders are compared: a file the journal
 * does not know, or one it saw opened but never closed, is held (state
 * "held") rather than sent, because it may be incomplete. */
#include "outbox.h"

#include "item.h"
#include "uploader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "outbox_rules.h"
#include "xalloc.h"

/* Finished items stay in the journal this long (status.json's failed
 * count, and the ids that must never be claimed twice). */
#define OB_KEEP_DAYS 30
/* A user's rename or remove holds an item back at most this long. */
#define OB_BLOCK_MS 5000

static const char *const area_dirs[3] = { "outbox", "sent", "failed" };

/* ---- items */

static bool busy(const struct ob_item *it)
{
	return it->in_flight || (it->s.state >= SPOOL_CREATING && it->s.state < SPOOL_DONE);
}

static size_t app_index(struct outbox *ob, const char *org, const char *app)
{
	for (size_t i = 0; i < ob->n_apps; i++)
		if (strcmp(ob->apps[i].org, org) == 0 && strcmp(ob->apps[i].app, app) == 0)
			return i;
	return SIZE_MAX;
}

/* caller holds ob->lock */
static struct ob_item *find(struct outbox *ob, size_t app, const char *rel)
{
	for (struct ob_item *it = ob->items; it; it = it->next)
		if (it->app == app && !it->detached && strcmp(it->s.rel, rel) == 0)
			return it;
	return NULL;
}

/* The item at rel as a user's change sees it: one whose outcome is being
 * written and whose bytes have already left outbox/ no longer holds the
 * name. Caller holds ob->lock. */
static struct ob_item *find_live(struct outbox *ob, size_t app, const char *rel, int dirfd)
{
	struct ob_item *it = find(ob, app, rel);
	struct stat st;

	if (it && it->s.state >= SPOOL_SUBMITTED &&
	    fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		it->detached = true;
		return NULL;
	}
	return it;
}

/* caller holds ob->lock */
static void unlink_item(struct outbox *ob, struct ob_item *it)
{
	for (struct ob_item **p = &ob->items; *p; p = &(*p)->next)
		if (*p == it) {
			*p = it->next;
			return;
		}
}

/* caller holds ob->lock */
static void forget(struct outbox *ob, struct ob_item *it)
{
	unlink_item(ob, it);
	if (it->s.id)
		spool_delete(ob->spool, it->s.id);
	outbox_item_free(it);
}

/* A new drop at rel, or a waiting one started over; NULL when the one
 * there is being delivered (the hooks refused the change, so this is a
 * change made before it was picked up). Caller holds ob->lock. */
static struct ob_item *put(struct outbox *ob, size_t app, const char *rel, bool is_dir,
			   enum spool_state st, const char *why)
{
	struct ob_item *it = find(ob, app, rel);
	int64_t now = outbox_now_ms();

	if (it && busy(it)) {
		log_warn("outbox: \"%s\" changed while being delivered", rel);
		return NULL;
	}
	if (!it) {
		it = xcalloc(1, sizeof(*it));
		it->app = app;
		it->s.org = xstrdup(ob->apps[app].org);
		it->s.app = xstrdup(ob->apps[app].app);
		it->s.rel = xstrdup(rel);
		it->next = ob->items;
		ob->items = it;
	}
	spool_elements_clear(&it->s);
	it->s.is_dir = is_dir;
	it->s.state = st;
	it->s.received_at = now;
	it->s.next_at = now;
	it->s.attempts = 0;
	it->s.first_attempt_at = 0;
	free(it->s.last_error);
	it->s.last_error = why ? xstrdup(why) : NULL;
	it->blocked_until = 0;
	outbox_save(ob, it, true);
	if (st == SPOOL_RECEIVED)
		uploader_wake(ob);
	return it;
}

/* ---- paths below an area: "<owner>", "<owner>/<name>", "<owner>/<name>/..." */

struct where {
	int depth;     /* components */
	char item[4096]; /* the first two components */
	const char *name; /* the second component, in item */
};

static void locate(const char *rel, struct where *w)
{
	const char *slash = strchr(rel, '/');
	size_t n;

	memset(w, 0, sizeof(*w));
	w->depth = *rel ? 1 : 0;
	for (const char *p = rel; *p; p++)
		w->depth += *p == '/';
	n = slash ? strcspn(slash + 1, "/") + (size_t)(slash + 1 - rel) : strlen(rel);
	snprintf(w->item, sizeof(w->item), "%.*s", (int)n, rel);
	w->name = slash ? w->item + (slash + 1 - rel) : NULL;
}

/* ---- the outbox area's hooks */

/* May the user change the item at (or inside) w? Blocks an idle one from
 * being picked up while the change is made. Caller holds ob->lock. */
static int claim(struct outbox *ob, size_t app, const struct where *w, int dirfd, bool writing)
{
	struct ob_item *it = find_live(ob, app, w->item, dirfd);

	if (!it)
		return 0;
	if (busy(it))
		return -EBUSY;
	if (!writing) {
		it->blocked_until = outbox_now_ms() + OB_BLOCK_MS;
		return 0;
	}
	/* recorded before the open succeeds: a crash while writing must not
	 * leave a half-written file that the journal calls complete */
	it->s.state = SPOOL_WRITING;
	return outbox_save(ob, it, false);
}

static int check_outbox(struct outbox *ob, size_t app, const struct local_call *c)
{
	struct where w, old;
	const char *key, *value;
	struct ob_item *it;

	locate(c->rel, &w);
	/* a name whose receipt or dead letter could not be named is refused
	 * before anything is made, not left in the journal for ever */
	if (w.depth == 2 && !outbox_name_fits(w.name) &&
	    (c->op == LOCAL_MKDIR || c->op == LOCAL_CREATE || c->op == LOCAL_RENAME))
		return -ENAMETOOLONG;
	switch (c->op) {
	case LOCAL_MKDIR:
		if (w.depth == 1)
			return outbox_owner_parse(c->rel, &key, &value) ? 0 : -EINVAL;
		if (w.depth == 2)
			return outbox_temp_name(w.name) ? 0 : -EPERM;
		return claim(ob, app, &w, c->dirfd, false);
	case LOCAL_CREATE:
		if (w.depth == 1)
			return -EPERM;
		return claim(ob, app, &w, c->dirfd, false);
	case LOCAL_WRITE:
		if (c->attrs_only || w.depth < 2)
			return 0;
		return claim(ob, app, &w, c->dirfd, true);
	case LOCAL_REMOVE:
		return w.depth < 2 ? 0 : claim(ob, app, &w, c->dirfd, false);
	case LOCAL_RENAME:
		locate(c->old_rel ? c->old_rel : "", &old);
		if (w.depth < 2 || old.depth < 2)
			return -EPERM; /* owner folders stay; nothing lives in outbox/ itself */
		if ((it = find_live(ob, app, old.item, c->dirfd)) && busy(it))
			return -EBUSY;
		if ((it = find_live(ob, app, w.item, c->dirfd)) && busy(it))
			return -EBUSY;
		claim(ob, app, &old, c->dirfd, false);
		return claim(ob, app, &w, c->dirfd, false);
	case LOCAL_RELEASE:
		break; /* told when done, never asked */
	}
	return -EPERM;
}

/* Something inside a folder item changed: it is a new drop again. */
static void touch_folder(struct outbox *ob, size_t app, const struct where *w, int error)
{
	struct ob_item *it = find(ob, app, w->item);

	if (it && !busy(it))
		put(ob, app, w->item, true, error ? SPOOL_HELD : SPOOL_RECEIVED,
		    error ? "a write in the folder failed" : NULL);
}

static void done_outbox(struct outbox *ob, size_t app, const struct local_call *c)
{
	struct where w, old;
	struct ob_item *it;
	struct stat st;
	char why[160];

	locate(c->rel, &w);
	if (w.depth < 2)
		return;
	switch (c->op) {
	case LOCAL_CREATE:
		if (w.depth == 2 && !outbox_temp_name(w.name))
			put(ob, app, w.item, false, SPOOL_WRITING, NULL);
		else if (w.depth > 2 && (it = find(ob, app, w.item)) && !busy(it)) {
			it->s.state = SPOOL_WRITING;
			outbox_save(ob, it, false);
		}
		break;
	case LOCAL_WRITE: /* closed (at close(2), before it returns), or truncated by name */
		snprintf(why, sizeof(why), "a write failed (%s): write it again, or remove it",
			 strerror(c->error));
		if (w.depth == 2 && !outbox_temp_name(w.name)) {
			it = put(ob, app, w.item, false, c->error ? SPOOL_HELD : SPOOL_RECEIVED,
				 c->error ? why : NULL);
			if (it && fstatat(c->dirfd, w.item, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_size == 0)
				it->s.next_at += OB_EMPTY_SETTLE_MS;
		} else if (w.depth > 2)
			touch_folder(ob, app, &w, c->error);
		if (c->open && (it = find(ob, app, w.item)) && !busy(it))
			it->held_open = true;
		break;
	case LOCAL_RELEASE:
		it = find(ob, app, w.item);
		if (it && it->held_open) {
			it->held_open = false;
			uploader_wake(ob);
		}
		break;
	case LOCAL_MKDIR:
		touch_folder(ob, app, &w, 0);
		break;
	case LOCAL_REMOVE:
		it = find(ob, app, w.item);
		if (w.depth == 2 && it && !busy(it))
			forget(ob, it);
		else if (w.depth > 2)
			touch_folder(ob, app, &w, 0);
		break;
	case LOCAL_RENAME:
		locate(c->old_rel ? c->old_rel : "", &old);
		it = find(ob, app, old.item);
		if (old.depth == 2 && it && !busy(it))
			forget(ob, it);
		else if (old.depth > 2 && strcmp(old.item, w.item) != 0)
			touch_folder(ob, app, &old, 0);
		if (w.depth == 2 && !outbox_temp_name(w.name))
			put(ob, app, w.item, c->is_dir, SPOOL_RECEIVED, NULL);
		else if (w.depth > 2)
			touch_folder(ob, app, &w, 0);
		break;
	}
}

static int hook_check(void *ctx, const struct local_call *c)
{
	struct outbox *ob = ctx;
	size_t app;
	int r;

	if (c->self)
		return 0;
	if (c->area != AREA_OUTBOX) /* sent/, failed/: read and remove */
		return c->op == LOCAL_REMOVE || (c->op == LOCAL_WRITE && c->attrs_only) ? 0 : -EPERM;
	app = app_index(ob, c->org, c->app);
	if (app == SIZE_MAX)
		return -EPERM;
	pthread_mutex_lock(&ob->lock);
	r = check_outbox(ob, app, c);
	pthread_mutex_unlock(&ob->lock);
	return r;
}

static void hook_done(void *ctx, const struct local_call *c)
{
	struct outbox *ob = ctx;
	size_t app;

	if (c->self || c->area != AREA_OUTBOX)
		return;
	app = app_index(ob, c->org, c->app);
	if (app == SIZE_MAX)
		return;
	pthread_mutex_lock(&ob->lock);
	done_outbox(ob, app, c);
	pthread_mutex_unlock(&ob->lock);
}

static int hook_xattr(void *ctx, const struct local_call *c, const char *name, char **ret)
{
	struct outbox *ob = ctx;
	size_t app = app_index(ob, c->org, c->app);
	const char *v = NULL;
	struct ob_item *it;
	struct where w;

	locate(c->rel, &w);
	if (c->area != AREA_OUTBOX || app == SIZE_MAX || w.depth != 2)
		return -ENODATA;
	pthread_mutex_lock(&ob->lock);
	it = find(ob, app, w.item);
	if (strcmp(name, "user.altinn.state") == 0)
		v = it ? spool_state_name(it->s.state)
		       : outbox_temp_name(w.name) ? "temporary" : NULL;
	else if (it && strcmp(name, "user.altinn.last_error") == 0)
		v = it->s.last_error;
	else if (it && strcmp(name, "user.altinn.id") == 0)
		v = it->s.instance_id;
	if (v)
		*ret = xstrdup(v);
	pthread_mutex_unlock(&ob->lock);
	return v ? 0 : -ENODATA;
}

static bool outbox_hooks(struct outbox *ob, enum outbox_area area, struct local_hooks *ret)
{
	if (!ob->cfg->outbox || area >= OUTBOX_N_AREAS)
		return false;
	memset(ret, 0, sizeof(*ret));
	ret->ctx = ob;
	ret->check = hook_check;
	ret->done = hook_done;
	ret->xattr = area == AREA_OUTBOX ? hook_xattr : NULL;
	return true;
}

/* ---- start: the journal against the folders */

static void load_one(void *ctx, struct spool_item *s)
{
	struct outbox *ob = ctx;
	size_t app = app_index(ob, s->org, s->app);
	struct ob_item *it;

	if (app == SIZE_MAX) { /* an app no longer mounted: its items wait */
		spool_item_free(s);
		return;
	}
	it = xcalloc(1, sizeof(*it));
	it->s = *s;
	it->app = app;
	free(s);
	it->next = ob->items;
	ob->items = it;
}

/* Files in outbox/<owner>/ the journal has no word of: held. */
static void adopt_unknown(struct outbox *ob, size_t app)
{
	int fd = dup(ob->apps[app].dir_fd[OB_OUTBOX]);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		int ofd;
		DIR *od;
		struct dirent *e;

		if (de->d_name[0] == '.')
			continue;
		ofd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		od = ofd >= 0 ? fdopendir(ofd) : NULL;
		if (!od) {
			if (ofd >= 0)
				close(ofd);
			continue;
		}
		while ((e = readdir(od))) {
			char *rel;
			struct stat st;

			if (outbox_temp_name(e->d_name) ||
			    fstatat(dirfd(od), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
				continue;
			rel = xasprintf("%s/%s", de->d_name, e->d_name);
			if (!find(ob, app, rel)) {
				log_warn("outbox: \"%s\" has no record (the daemon stopped as it arrived); "
					 "held until renamed", rel);
				put(ob, app, rel, S_ISDIR(st.st_mode), SPOOL_HELD,
				    "found without a record after a restart: rename it to send it");
			}
			free(rel);
		}
		closedir(od);
	}
	closedir(d);
}

static void reconcile(struct outbox *ob)
{
	struct ob_item *it, *next;
	struct stat st;

	pthread_mutex_lock(&ob->lock);
	for (it = ob->items; it; it = next) {
		bool there = fstatat(ob->apps[it->app].dir_fd[OB_OUTBOX], it->s.rel, &st,
				     AT_SYMLINK_NOFOLLOW) == 0;

		next = it->next;
		if (!there && it->s.state <= SPOOL_RECEIVED) {
			forget(ob, it);
		} else if (!there && it->s.state < SPOOL_SUBMITTED) {
			/* gone mid-delivery: nobody but a root shell does that */
			log_error("outbox: \"%s\" disappeared while it was being delivered",
				  it->s.rel);
			free(it->s.last_error);
			it->s.last_error = xstrdup("the file disappeared from the outbox folder");
			it->s.state = SPOOL_FAILING;
			outbox_save(ob, it, false);
		} else if (it->s.state == SPOOL_WRITING) {
			it->s.state = SPOOL_HELD;
			free(it->s.last_error);
			it->s.last_error = xstrdup("the daemon stopped while the file was being "
						   "written: write it again, or rename it to send it");
			outbox_save(ob, it, false);
		}
	}
	for (size_t i = 0; i < ob->n_apps; i++)
		adopt_unknown(ob, i);
	pthread_mutex_unlock(&ob->lock);
}

/* ---- the module */

static int open_app(struct outbox *ob, const char *mountpoint, size_t i)
{
	struct ob_app *oa = &ob->apps[i];
	const struct config *cfg = ob->cfg;

	oa->org = cfg->apps[i].org;
	oa->app = cfg->apps[i].app;
	oa->id = xasprintf("%s/%s", oa->org, oa->app);
	oa->forced_type = outbox_type_setting(cfg->outbox_data_type, oa->org, oa->app);
	for (int k = 0; k < 3; k++) {
		char *path = xasprintf("%s/apps/%s/%s/%s", cfg->state_dir, oa->org, oa->app,
				       area_dirs[k]);
		char *p = path + strlen(cfg->state_dir) + 1;
		int r = 0;

		/* fs/ makes them too, at fs_start; the journal needs them now */
		for (char *s = p; *s && r == 0; s++)
			if (*s == '/') {
				*s = '\0';
				if (mkdir(path, 0700) < 0 && errno != EEXIST)
					r = -errno;
				*s = '/';
			}
		if (r == 0 && mkdir(path, 0700) < 0 && errno != EEXIST)
			r = -errno;
		oa->dir_fd[k] = r < 0 ? -1 : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (oa->dir_fd[k] < 0) {
			r = log_errno(r < 0 ? r : -errno, "cannot open \"%s\"", path);
			free(path);
			return r;
		}
		free(path);
		oa->mount_dir[k] = xasprintf("%s/apps/%s/%s/%s", mountpoint, oa->org, oa->app,
					     area_dirs[k]);
	}
	return 0;
}

static void outbox_free(struct outbox *ob);

/* Opens the spool under cfg->state_dir; starts no thread. */
static int outbox_new(const struct outbox_deps *deps, struct outbox **ret)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob));
	char *path;
	int r = 0;

	ob->cfg = deps->cfg;
	ob->a = deps->a;
	pthread_mutex_init(&ob->lock, NULL);
	pthread_mutex_init(&ob->meta_lock, NULL);
	for (size_t i = 0; i < OB_CREATE_LOCKS; i++)
		pthread_mutex_init(&ob->create_locks[i], NULL);
	uploader_init(ob);
	if (!ob->cfg->outbox) {
		*ret = ob;
		return 0;
	}
	ob->n_apps = ob->cfg->n_apps;
	ob->apps = xcalloc(ob->n_apps, sizeof(*ob->apps));
	for (size_t i = 0; i < ob->n_apps; i++)
		for (int k = 0; k < 3; k++)
			ob->apps[i].dir_fd[k] = -1;
	for (size_t i = 0; i < ob->n_apps && r == 0; i++)
		r = open_app(ob, deps->mountpoint, i);
	path = xasprintf("%s/outbox.db", ob->cfg->state_dir);
	if (r == 0)
		r = spool_open(path, OB_KEEP_DAYS, &ob->spool);
	free(path);
	if (r == 0)
		r = spool_load(ob->spool, load_one, ob);
	if (r < 0) {
		outbox_free(ob);
		return r;
	}
	ob->failed = spool_count_failed(ob->spool);
	*ret = ob;
	return 0;
}

static int outbox_start(struct outbox *ob)
{
	if (!ob->cfg->outbox)
		return 0;
	reconcile(ob);
	return uploader_start(ob);
}

static void outbox_status(struct outbox *ob, struct alt_status_outbox *st)
{
	int64_t oldest = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&ob->lock);
	for (struct ob_item *it = ob->items; it; it = it->next) {
		if (it->s.state < SPOOL_RECEIVED || it->s.state >= SPOOL_DONE)
			continue;
		st->pending++;
		st->retries += it->s.attempts;
		if (!oldest || it->s.received_at < oldest)
			oldest = it->s.received_at;
	}
	st->failed = ob->failed;
	pthread_mutex_unlock(&ob->lock);
	st->oldest_pending_at.tv_sec = (time_t)(oldest / 1000);
	st->oldest_pending_at.tv_nsec = (long)(oldest % 1000) * 1000000;
}

static void outbox_stop(struct outbox *ob)
{
	if (!ob)
		return;
	pthread_mutex_lock(&ob->lock);
	ob->stopping = true;
	pthread_mutex_unlock(&ob->lock);
	uploader_stop(ob);
}

static void outbox_free(struct outbox *ob)
{
	if (!ob)
		return;
	outbox_stop(ob);
	uploader_join(ob);
	while (ob->items) {
		struct ob_item *it = ob->items;

		ob->items = it->next;
		outbox_item_free(it);
	}
	for (size_t i = 0; i < ob->n_apps; i++) {
		struct ob_app *oa = &ob->apps[i];

		for (int k = 0; k < 3; k++) {
			if (oa->dir_fd[k] >= 0)
				close(oa->dir_fd[k]);
			free(oa->mount_dir[k]);
		}
		free(oa->id);
		free(oa->forced_type);
		alt_app_free(oa->meta);
	}
	free(ob->apps);
	spool_close(ob->spool);
	pthread_mutex_destroy(&ob->lock);
	pthread_mutex_destroy(&ob->meta_lock);
	for (size_t i = 0; i < OB_CREATE_LOCKS; i++)
		pthread_mutex_destroy(&ob->create_locks[i]);
	free(ob);
}

/* ---- the family, as fs/ and main.c see it (family.h) */

static int family_start(void *ctx)
{
	return outbox_start(ctx);
}

static void family_status(void *ctx, struct alt_status_outbox *st)
{
	outbox_status(ctx, st);
}

static void family_stop(void *ctx)
{
	outbox_stop(ctx);
}

static void family_free(void *ctx)
{
	outbox_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "apps/<org>/<app>/outbox/<owner>/<name>",
	  "drop a file (or rename a folder) in: it becomes one submission for\n"
	  "<owner>, one of org-<9 digits>, person-<11 digits>, party-<partyId> (mkdir\n"
	  "it first); names starting with '.' or ending in .tmp or .part wait\n",
	  "cp soknad.pdf apps/{app}/outbox/org-910000004/" },
	{ "apps/<org>/<app>/sent/<owner>/<name>.json",
	  "the receipt of each delivered submission: instance and element ids, sizes,\n"
	  "sha256, times\n",
	  "jq .instance_id apps/{app}/sent/org-910000004/soknad.pdf.json" },
	{ "apps/<org>/<app>/failed/<owner>/<name> and <name>.error.json",
	  "a refused submission's bytes, and why: the platform's status and reason\n",
	  "cat apps/{app}/failed/*/*.error.json" },
	{ NULL, NULL, NULL },
};

/* its folders in every app (a contract: docs/tree.md) */
static const char *const area_names[OUTBOX_N_AREAS] = {
	[AREA_OUTBOX] = "outbox", [AREA_SENT] = "sent", [AREA_FAILED] = "failed",
};

int outbox_family(const struct family_deps *deps, struct fs_family *ret)
{
	const struct outbox_deps od = { deps->cfg, deps->a, deps->mountpoint };
	struct outbox *ob;
	int r = outbox_new(&od, &ob);

	if (r < 0)
		return log_errno(r, "cannot open the outbox spool in \"%s\"", deps->cfg->state_dir);
	*ret = (struct fs_family){ .name = "outbox", .ctx = ob, .status = family_status,
				   .readme = readme,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	for (int area = 0; area < OUTBOX_N_AREAS; area++) {
		ret->areas[area].name = area_names[area];
		outbox_hooks(ob, (enum outbox_area)area, &ret->areas[area].hooks);
	}
	return 0;
}
