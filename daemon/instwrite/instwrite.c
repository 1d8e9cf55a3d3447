/* instwrite.c - writes into existing instances, durably (see instwrite.h).
 *
 * The journal is core's durable queue (core/queue.h, in
 * state_dir/instwrite.db): an item per write or delete of
 * data/<type>/<name>, with the staging file state_dir/instwrite/<id>
 * holding a write's bytes. An item moves
 *   writing -> pending -> sending -> done | failed
 * and is saved before each step: `sending` means a request went out
 * whose outcome may be unknown. Before a POST in that state is tried
 * again the instance is looked up: an element of that type and name made
 * since the attempt, and not claimed by another row, is ours. PUT and
 * DELETE may simply be repeated (the same bytes again; a 404 on DELETE
 * means it is gone). The outcome is written through the mount like the
 * outbox's (receipt in sent/, dead letter in failed/), then the row ends
 * and the staging file goes. */
#include "instwrite.h"

#include "db.h"
#include "instsend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_app.h"
#include "config.h"
#include "json.h"
#include "caps.h"
#include "journal.h"
#include "queue.h"
#include "log.h"
#include "xalloc.h"

#define IW_KEEP_DONE_MS (30LL * 86400000)

static int unlink_stage(void *ctx, struct queue_item *it)
{
	iw_stage_unlink(ctx, it->id);
	return 0;
}

/* A write still open when the daemon died may be incomplete: close()
 * never acknowledged it, so it is dropped. Finished items are kept 30
 * days (their names stay claimed), then forgotten with their bytes. */
static int forget_old(struct instwrite *iw)
{
	struct queue_query open = { .states = QUEUE_STATE(IW_WRITING) };
	struct queue_query old = { .states = QUEUE_STATE(IW_DONE) | QUEUE_STATE(IW_FAILED),
				   .done_before = iw_now_ms() - IW_KEEP_DONE_MS };
	int r = queue_list(iw->q, &open, unlink_stage, iw);

	if (r == 0)
		r = queue_delete_where(iw->q, &open);
	if (r == 0)
		r = queue_list(iw->q, &old, unlink_stage, iw);
	if (r == 0)
		r = queue_delete_where(iw->q, &old);
	return r;
}

/* Opens (creating) the journal and the staging folder; starts no thread. */
static int instwrite_new(const struct config *cfg, struct altinn *a, const char *mountpoint,
		  struct instwrite **ret)
{
	struct instwrite *iw = xcalloc(1, sizeof(*iw));
	char *path = xasprintf("%s/instwrite.db", cfg->state_dir);
	int r = 0;

	iw->cfg = cfg;
	iw->a = a;
	iw->mountpoint = xstrdup(mountpoint);
	iw->stage_dir = xasprintf("%s/instwrite", cfg->state_dir);
	pthread_mutex_init(&iw->lock, NULL);
	pthread_mutex_init(&iw->meta_lock, NULL);
	pthread_mutex_init(&iw->inval_lock, NULL);
	worker_init(&iw->worker, "instance writes", iw_work_one, iw);
	if (mkdir(iw->stage_dir, 0700) < 0 && errno != EEXIST)
		r = log_errno(-errno, "cannot create \"%s\"", iw->stage_dir);
	iw->stage_fd = r < 0 ? -1 : open(iw->stage_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r == 0 && iw->stage_fd < 0)
		r = log_errno(-errno, "cannot open \"%s\"", iw->stage_dir);
	if (r == 0)
		r = iw_journal_open(iw, path);
	if (r == 0)
		r = forget_old(iw);
	free(path);
	if (r < 0) {
		instwrite_free(iw);
		return r;
	}
	*ret = iw;
	return 0;
}

/* ----- what may be written: the metadata and the instance ----- */

/* The app's metadata, fetched when older than a minute; NULL when it
 * cannot be had. Called with meta_lock held; the answer is valid while
 * it is. */
static struct alt_app *app_meta(struct instwrite *iw, const char *org, const char *app)
{
	struct iw_meta *m;
	struct alt_app *meta = NULL;

	for (m = iw->metas; m; m = m->next)
		if (strcmp(m->org, org) == 0 && strcmp(m->app, app) == 0)
			break;
	if (m && iw_now_ms() - m->at < IW_META_MAX_AGE_MS)
		return m->meta;
	if (altinn_get_app(iw->a, org, app, &meta) < 0)
		return m ? m->meta : NULL;
	if (!m) {
		m = xcalloc(1, sizeof(*m));
		m->org = xstrdup(org);
		m->app = xstrdup(app);
		m->next = iw->metas;
		iw->metas = m;
	}
	alt_app_free(m->meta);
	m->meta = meta;
	m->at = iw_now_ms();
	return meta;
}

static const struct alt_data_type *find_type(const struct alt_app *meta, const char *id)
{
	for (size_t i = 0; meta && i < meta->n_types; i++)
		if (strcmp(meta->types[i].id, id) == 0)
			return &meta->types[i];
	return NULL;
}

/* The newest unfinished item of k's name: its id, op and state. */
static int find_item(struct instwrite *iw, const struct alt_dw_key *k, int64_t *ret_id,
		     char *op, char *state, uint64_t *ret_size, int64_t *ret_at)
{
	char *key = iw_key(k);
	struct queue_item it;
	int r = queue_find(iw->q, key, QUEUE_STATE(IW_WRITING) | QUEUE_STATE(IW_PENDING) |
					    QUEUE_STATE(IW_SENDING), &it);

	free(key);
	if (r < 0)
		return r == -ENOENT ? r : -EIO;
	*ret_id = it.id;
	snprintf(op, 8, "%s", it.f[IW_F_OP] ? it.f[IW_F_OP] : "");
	snprintf(state, 8, "%s", iw_state_name((enum iw_state)it.state));
	if (ret_size)
		*ret_size = it.f[IW_F_SIZE] ? strtoull(it.f[IW_F_SIZE], NULL, 10) : 0;
	if (ret_at)
		*ret_at = it.created_at;
	queue_item_clear(&it);
	return 0;
}

/* What the daemon can know before the platform is asked: the data type
 * (*ret_max its maxSize in bytes, 0 for none) and the instance. Takes no
 * journal lock: it may make two requests (metadata, instance). */
static int check_platform(struct instwrite *iw, const struct alt_dw_key *k, uint64_t *ret_max)
{
	struct json_outbox_instance oi = { 0 };
	struct app_answer ans = { .retry_after_ms = -1 };
	const struct alt_data_type *t;
	struct alt_app *meta;
	char *id;
	int r = 0;

	pthread_mutex_lock(&iw->meta_lock);
	meta = app_meta(iw, k->org, k->app);
	t = find_type(meta, k->data_type);
	if (!meta)
		r = -EIO;
	else if (!t)
		r = -ENOENT;
	else if (strcmp(t->id, "ref-data-as-pdf") == 0 || t->has_app_logic)
		r = -EACCES; /* made by the app, or form data */
	else if (!app_contributor(t, k->org))
		r = -EACCES; /* only its allowedContributors write it ("app:owned") */
	if (r == 0 && ret_max) {
		/* maxSize, and never more than the App API takes in one request */
		uint64_t max = t->max_size_mb > 0 ? (uint64_t)t->max_size_mb << 20 : ALT_MAX_UPLOAD;

		*ret_max = max < ALT_MAX_UPLOAD ? max : ALT_MAX_UPLOAD;
	}
	pthread_mutex_unlock(&iw->meta_lock);
	if (r < 0)
		return r;
	if (k->locked)
		return -EBUSY;
	id = xasprintf("%s/%s", k->party, k->guid);
	/* A type's taskId is not checked here: apps enforce it only with
	 * EnforceDataTypeTaskId (off by default), and then answer 409. */
	if (app_get_instance(iw->a, id, &oi, &ans) == 0) {
		if (oi.ended || !oi.task)
			r = -EBUSY; /* the process has ended: nothing may change */
	} else if (ans.outcome == APP_REFUSED && ans.status == 404) {
		r = -ENOENT;
	}
	/* a look that failed otherwise: the platform will judge the item */
	json_outbox_instance_clear(&oi);
	app_answer_clear(&ans);
	free(id);
	return r;
}

/* An item of k's name is being sent: its outcome may be unknown. Called
 * with lock held. */
static bool sending(struct instwrite *iw, const struct alt_dw_key *k)
{
	char op[8], state[8];
	int64_t row;

	return find_item(iw, k, &row, op, state, NULL, NULL) == 0 && strcmp(state, "sending") == 0;
}

/* Ends an unfinished item that was never sent (it is being replaced). */
static void drop_row(struct instwrite *iw, int64_t id)
{
	queue_delete(iw->q, id);
	iw_stage_unlink(iw, id);
}

static int insert_row(struct instwrite *iw, const struct alt_dw_key *k, const char *op,
		      const char *data_id, enum iw_state state, int64_t *ret_id)
{
	const char *f[IW_N_FIELDS] = { k->org, k->app, k->party, k->guid, k->data_type,
				       k->name, op, data_id, "0" };
	struct queue_item it = { .state = (int)state, .created_at = iw_now_ms() };
	int r;

	it.key = iw_key(k);
	for (int i = 0; i < IW_N_FIELDS; i++)
		queue_set(&it.f[i], f[i]);
	r = queue_add(iw->q, &it);
	if (r == 0)
		*ret_id = it.id;
	queue_item_clear(&it);
	return r;
}

static int hook_begin(void *ctx, const struct alt_dw_key *k, int *ret_fd, int64_t *ret_id,
		      uint64_t *ret_max)
{
	struct instwrite *iw = ctx;
	const char *op = k->data_id ? "put" : "post";
	char *name, old_op[8], state[8];
	uint64_t max = 0;
	int64_t id, old;
	int fd = -1, r = check_platform(iw, k, &max);

	pthread_mutex_lock(&iw->lock);
	if (r == 0 && sending(iw, k))
		r = -EBUSY;
	if (r == 0 && find_item(iw, k, &old, old_op, state, NULL, NULL) == 0) {
		/* written again before it was sent: the new bytes replace it */
		if (strcmp(old_op, "post") == 0)
			op = "post";
		drop_row(iw, old);
	}
	if (r == 0)
		r = insert_row(iw, k, op, strcmp(op, "put") == 0 ? k->data_id : NULL, IW_WRITING,
			       &id);
	if (r == 0) {
		name = iw_stage_name(id);
		fd = openat(iw->stage_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || fsync(iw->stage_fd) < 0)
			r = log_errno(-errno, "cannot create the staging file \"%s/%s\"",
				      iw->stage_dir, name);
		free(name);
		if (r < 0)
			drop_row(iw, id);
	}
	if (r == 0) {
		*ret_fd = fd;
		*ret_id = id;
		*ret_max = max;
	} else if (fd >= 0) {
		close(fd);
	}
	pthread_mutex_unlock(&iw->lock);
	return r;
}

/* At close(2), before it returns: what the user sees next is decided
 * here (pending with its size, or gone when a write failed). */
static void hook_commit(void *ctx, int64_t id, int error, bool open)
{
	struct instwrite *iw = ctx;
	char *name = iw_stage_name(id), size[24];
	struct queue_item it = { 0 };
	struct stat s;

	pthread_mutex_lock(&iw->lock);
	if (error || fstatat(iw->stage_fd, name, &s, 0) < 0) {
		log_warn("instance writes: item %lld dropped: %s", (long long)id,
			 strerror(error ? error : errno));
		drop_row(iw, id);
		goto out;
	}
	if (queue_get(iw->q, id, &it) == 0 && it.state == IW_WRITING) {
		it.state = IW_PENDING;
		it.due_at = 0;
		snprintf(size, sizeof(size), "%" PRIu64, (uint64_t)s.st_size);
		queue_set(&it.f[IW_F_SIZE], size);
		if (queue_save(iw->q, &it) < 0)
			log_error("instance writes: item %lld: cannot journal its close", (long long)id);
	}
	queue_item_clear(&it);
	if (open)
		iw_set_held_open(iw, id, true);
	worker_wake(&iw->worker);
out:
	pthread_mutex_unlock(&iw->lock);
	free(name);
}

/* Held open, so never picked up since its commit: writing again. */
static int hook_reopen(void *ctx, int64_t id)
{
	struct instwrite *iw = ctx;
	struct queue_item it;
	int r = -EBUSY;

	pthread_mutex_lock(&iw->lock);
	if (queue_get(iw->q, id, &it) == 0) {
		if (it.state == IW_WRITING || it.state == IW_PENDING) {
			it.state = IW_WRITING;
			r = queue_save(iw->q, &it);
		}
		queue_item_clear(&it);
	}
	pthread_mutex_unlock(&iw->lock);
	return r;
}

static void hook_release(void *ctx, int64_t id)
{
	struct instwrite *iw = ctx;

	pthread_mutex_lock(&iw->lock);
	iw_set_held_open(iw, id, false);
	worker_wake(&iw->worker);
	pthread_mutex_unlock(&iw->lock);
}

static int hook_remove(void *ctx, const struct alt_dw_key *k)
{
	struct instwrite *iw = ctx;
	char op[8], state[8];
	int64_t old, id;
	int r = check_platform(iw, k, NULL);

	pthread_mutex_lock(&iw->lock);
	if (r == 0 && sending(iw, k))
		r = -EBUSY;
	if (r == 0 && find_item(iw, k, &old, op, state, NULL, NULL) == 0) {
		drop_row(iw, old); /* never sent: nothing to undo there */
		if (strcmp(op, "post") == 0)
			goto out;
	}
	if (r == 0 && !k->data_id)
		r = -ENOENT;
	if (r == 0)
		r = insert_row(iw, k, "delete", k->data_id, IW_PENDING, &id);
	if (r == 0)
		worker_wake(&iw->worker);
out:
	pthread_mutex_unlock(&iw->lock);
	return r;
}

static int hook_pending(void *ctx, const struct alt_dw_key *k, uint64_t *ret_size,
			struct timespec *ret_mtime)
{
	struct instwrite *iw = ctx;
	char op[8], state[8], *name;
	uint64_t size;
	int64_t id, at;
	struct stat s;
	int r;

	pthread_mutex_lock(&iw->lock);
	r = find_item(iw, k, &id, op, state, &size, &at);
	if (r == 0 && strcmp(op, "delete") == 0) {
		r = -ESRCH;
	} else if (r == 0) {
		/* while written, the staging file tells its size */
		name = iw_stage_name(id);
		if (fstatat(iw->stage_fd, name, &s, 0) == 0) {
			size = (uint64_t)s.st_size;
			*ret_mtime = s.st_mtim;
		} else {
			ret_mtime->tv_sec = (time_t)(at / 1000);
			ret_mtime->tv_nsec = 0;
		}
		free(name);
		*ret_size = size;
	}
	pthread_mutex_unlock(&iw->lock);
	return r;
}

#define IW_MAX_LISTED 256

struct listed {
	char *names[IW_MAX_LISTED];
	size_t n;
};

static int list_one(void *ctx, struct queue_item *it)
{
	struct listed *l = ctx;
	const char *name = it->f[IW_F_NAME];

	if (!name || (it->f[IW_F_OP] && strcmp(it->f[IW_F_OP], "delete") == 0))
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return 0;
	if (l->n == IW_MAX_LISTED)
		return 1;
	l->names[l->n++] = it->f[IW_F_NAME];
	it->f[IW_F_NAME] = NULL;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hook_list(void *ctx, const struct alt_dw_key *k,
		      void (*cb)(void *cbctx, const char *name, uint64_t size, struct timespec mtime),
		      void *cbctx)
{
	struct instwrite *iw = ctx;
	struct listed l = { .n = 0 };
	char *prefix = iw_folder_key(k);
	struct queue_query qq = { .key_prefix = prefix,
				  .states = QUEUE_STATE(IW_WRITING) | QUEUE_STATE(IW_PENDING) |
					    QUEUE_STATE(IW_SENDING) };

	pthread_mutex_lock(&iw->lock);
	queue_list(iw->q, &qq, list_one, &l);
	pthread_mutex_unlock(&iw->lock);
	free(prefix);
	qsort(l.names, l.n, sizeof(l.names[0]), name_cmp);
	for (size_t i = 0; i < l.n; i++) {
		struct alt_dw_key one = *k;
		struct timespec mtime = { 0 };
		uint64_t size = 0;

		one.name = l.names[i];
		if (hook_pending(iw, &one, &size, &mtime) == 0)
			cb(cbctx, l.names[i], size, mtime);
		free(l.names[i]);
	}
}

static int hook_state(void *ctx, const struct alt_dw_key *k, char **ret)
{
	struct instwrite *iw = ctx;
	char op[8], state[8];
	int64_t id;
	int r;

	pthread_mutex_lock(&iw->lock);
	r = find_item(iw, k, &id, op, state, NULL, NULL);
	pthread_mutex_unlock(&iw->lock);
	if (r < 0)
		return -ENODATA;
	*ret = xasprintf("%s %s", op, state);
	return 0;
}

static int hook_open_staged(void *ctx, const struct alt_dw_key *k, int *ret_fd)
{
	struct instwrite *iw = ctx;
	char op[8], state[8], *name;
	int64_t id;
	int fd, r;

	pthread_mutex_lock(&iw->lock);
	r = find_item(iw, k, &id, op, state, NULL, NULL);
	if (r == 0 && strcmp(op, "delete") == 0)
		r = -ENOENT;
	if (r == 0) {
		name = iw_stage_name(id);
		fd = openat(iw->stage_fd, name, O_RDONLY | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
		if (fd >= 0)
			*ret_fd = fd;
		free(name);
	}
	pthread_mutex_unlock(&iw->lock);
	return r;
}

static bool hook_type_known(void *ctx, const char *org, const char *app, const char *type)
{
	struct instwrite *iw = ctx;
	const struct alt_data_type *t;
	bool known;

	pthread_mutex_lock(&iw->meta_lock);
	t = find_type(app_meta(iw, org, app), type);
	known = t != NULL; /* a read-only type too: its refusal is EACCES */
	pthread_mutex_unlock(&iw->meta_lock);
	return known;
}

/* The callbacks of struct alt_dw_hooks, ctx the struct instwrite. */
static void instwrite_hooks(struct instwrite *iw, struct alt_dw_hooks *ret)
{
	*ret = (struct alt_dw_hooks){
		.ctx = iw,
		.begin = hook_begin,
		.commit = hook_commit,
		.reopen = hook_reopen,
		.release = hook_release,
		.remove = hook_remove,
		.pending = hook_pending,
		.list = hook_list,
		.state = hook_state,
		.open_staged = hook_open_staged,
		.type_known = hook_type_known,
	};
}

/* After each outcome, so listings show the platform's new view. */
static void instwrite_set_invalidate(struct instwrite *iw,
			      void (*cb)(void *ctx, const char *org, const char *app,
					 const char *party, const char *guid),
			      void *ctx)
{
	iw->invalidate = cb;
	iw->invalidate_ctx = ctx;
}

/* ---- the family, as fs/ and main.c see it (family.h) */

static int family_start(void *ctx)
{
	return instwrite_start(ctx);
}

static void family_stop(void *ctx)
{
	instwrite_stop(ctx);
}

static void family_free(void *ctx)
{
	instwrite_free(ctx);
}

int instwrite_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct instwrite *iw;
	int r;

	*ret = (struct fs_family){ .name = "instwrite" };
	if (!deps->cfg->outbox)
		return 0; /* its outcomes go to sent/ and failed/ */
	r = instwrite_new(deps->cfg, deps->a, deps->mountpoint, &iw);
	if (r < 0)
		return log_errno(r, "cannot open the instance writes journal in \"%s\"",
				 deps->cfg->state_dir);
	instwrite_set_invalidate(iw, deps->invalidate, deps->invalidate_ctx);
	ret->ctx = iw;
	instwrite_hooks(iw, &ret->data_writes);
	ret->start = family_start;
	ret->stop = family_stop;
	ret->free = family_free;
	return 0;
}
