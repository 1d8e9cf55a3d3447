/* instwrite.c - writes into existing instances, durably (see instwrite.h).
 *
 * The journal is one SQLite table (WAL, synchronous=FULL): a row per
 * write or delete of data/<type>/<name>, with the staging file
 * state_dir/instwrite/<id> holding a write's bytes. A row moves
 *   writing -> pending -> sending -> done | failed
 * and is saved before each step: `sending` means a request went out
 * whose outcome may be unknown. Before a POST in that state is tried
 * again the instance is looked up: an element of that type and name made
 * since the attempt, and not claimed by another row, is ours. PUT and
 * DELETE may simply be repeated (the same bytes again; a 404 on DELETE
 * means it is gone). The outcome is written through the mount like the
 * outbox's (receipt in sent/, dead letter in failed/), then the row ends
 * and the staging file goes. */
#include "instwrite_i.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
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
#include "log.h"
#include "mountio.h"
#include "xalloc.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS writes ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" org TEXT NOT NULL, app TEXT NOT NULL, party TEXT NOT NULL, guid TEXT NOT NULL,"
	" data_type TEXT NOT NULL, name TEXT NOT NULL,"
	" op TEXT NOT NULL CHECK (op IN ('post', 'put', 'delete')),"
	" data_id TEXT,"
	" state TEXT NOT NULL"
	"  CHECK (state IN ('writing', 'pending', 'sending', 'done', 'failed')),"
	" size INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" attempt_at INTEGER NOT NULL DEFAULT 0,"
	" next_at INTEGER NOT NULL DEFAULT 0,"
	" received_at INTEGER NOT NULL,"
	" last_error TEXT,"
	" done_at INTEGER);"
	"CREATE INDEX IF NOT EXISTS writes_name ON writes (org, app, party, guid, data_type, name);";

static void bind_key(sqlite3_stmt *st, const struct alt_dw_key *k)
{
	const char *v[] = { k->org, k->app, k->party, k->guid, k->data_type, k->name };

	for (int i = 0; i < 6; i++)
		sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_TRANSIENT);
}

static int exec(struct instwrite *iw, const char *sql)
{
	return sqlite3_exec(iw->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : iw_db_errno(iw, sql);
}

/* A write still open when the daemon died may be incomplete: close()
 * never acknowledged it, so it is dropped. Finished items are kept 30
 * days (their names stay claimed), then forgotten with their bytes. */
static int forget_old(struct instwrite *iw)
{
	static const char which[] =
		" FROM writes WHERE state = 'writing' OR (state IN ('done', 'failed')"
		" AND done_at < strftime('%s', 'now') * 1000 - 30 * 86400000)";
	char *sql = xasprintf("SELECT id%s", which);
	sqlite3_stmt *st = iw_prepare(iw, sql);
	int r;

	free(sql);
	if (!st)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW)
		iw_stage_unlink(iw, sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	sql = xasprintf("DELETE%s", which);
	r = exec(iw, sql);
	free(sql);
	return r;
}

int instwrite_new(const struct config *cfg, struct altinn *a, const char *mountpoint,
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
		r = journal_open("instance writes", path, schema, &iw->db);
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

/* The newest unfinished row of k's name: its id, op and state. */
static int find_item(struct instwrite *iw, const struct alt_dw_key *k, int64_t *ret_id,
		     char *op, char *state, uint64_t *ret_size, int64_t *ret_at)
{
	sqlite3_stmt *st = iw_prepare(iw, "SELECT id, op, state, size, received_at FROM writes"
				       " WHERE org = ?1 AND app = ?2 AND party = ?3 AND guid = ?4"
				       " AND data_type = ?5 AND name = ?6 AND state IN"
				       " ('writing', 'pending', 'sending') ORDER BY id DESC LIMIT 1");
	int r = -ENOENT;

	if (!st)
		return -EIO;
	bind_key(st, k);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_id = sqlite3_column_int64(st, 0);
		snprintf(op, 8, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(state, 8, "%s", (const char *)sqlite3_column_text(st, 2));
		if (ret_size)
			*ret_size = (uint64_t)sqlite3_column_int64(st, 3);
		if (ret_at)
			*ret_at = sqlite3_column_int64(st, 4);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
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

/* Ends an unfinished row that was never sent (it is being replaced). */
static void drop_row(struct instwrite *iw, int64_t id)
{
	sqlite3_stmt *st = iw_prepare(iw, "DELETE FROM writes WHERE id = ?1");

	if (!st)
		return;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		iw_db_errno(iw, "drop");
	sqlite3_finalize(st);
	iw_stage_unlink(iw, id);
}

static int insert_row(struct instwrite *iw, const struct alt_dw_key *k, const char *op,
		      const char *data_id, const char *state, int64_t *ret_id)
{
	sqlite3_stmt *st = iw_prepare(iw, "INSERT INTO writes (org, app, party, guid, data_type, name,"
				       " op, data_id, state, received_at)"
				       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
	int r = 0;

	if (!st)
		return -EIO;
	bind_key(st, k);
	sqlite3_bind_text(st, 7, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, data_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, iw_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		r = iw_db_errno(iw, "insert");
	else
		*ret_id = sqlite3_last_insert_rowid(iw->db);
	sqlite3_finalize(st);
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
		r = insert_row(iw, k, op, strcmp(op, "put") == 0 ? k->data_id : NULL, "writing", &id);
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
	char *name = iw_stage_name(id);
	sqlite3_stmt *st;
	struct stat s;

	pthread_mutex_lock(&iw->lock);
	if (error || fstatat(iw->stage_fd, name, &s, 0) < 0) {
		log_warn("instance writes: item %lld dropped: %s", (long long)id,
			 strerror(error ? error : errno));
		drop_row(iw, id);
		goto out;
	}
	st = iw_prepare(iw, "UPDATE writes SET state = 'pending', size = ?2, next_at = 0"
			 " WHERE id = ?1 AND state = 'writing'");
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)s.st_size);
		if (sqlite3_step(st) != SQLITE_DONE)
			iw_db_errno(iw, "commit");
		sqlite3_finalize(st);
	}
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
	sqlite3_stmt *st;
	int r = -EBUSY;

	pthread_mutex_lock(&iw->lock);
	st = iw_prepare(iw, "UPDATE writes SET state = 'writing'"
			 " WHERE id = ?1 AND state IN ('writing', 'pending')");
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = iw_db_errno(iw, "reopen");
		else if (sqlite3_changes(iw->db) == 1)
			r = 0;
		sqlite3_finalize(st);
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
		r = insert_row(iw, k, "delete", k->data_id, "pending", &id);
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

static void hook_list(void *ctx, const struct alt_dw_key *k,
		      void (*cb)(void *cbctx, const char *name, uint64_t size, struct timespec mtime),
		      void *cbctx)
{
	struct instwrite *iw = ctx;
	sqlite3_stmt *st;
	char *names[256];
	size_t n = 0;

	pthread_mutex_lock(&iw->lock);
	st = iw_prepare(iw, "SELECT DISTINCT name FROM writes WHERE org = ?1 AND app = ?2"
			 " AND party = ?3 AND guid = ?4 AND data_type = ?5 AND op != 'delete'"
			 " AND state IN ('writing', 'pending', 'sending') ORDER BY name LIMIT 256");
	if (st) {
		bind_key(st, k);
		while (sqlite3_step(st) == SQLITE_ROW && n < 256)
			names[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&iw->lock);
	for (size_t i = 0; i < n; i++) {
		struct alt_dw_key one = *k;
		struct timespec mtime = { 0 };
		uint64_t size = 0;

		one.name = names[i];
		if (hook_pending(iw, &one, &size, &mtime) == 0)
			cb(cbctx, names[i], size, mtime);
		free(names[i]);
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

void instwrite_hooks(struct instwrite *iw, struct alt_dw_hooks *ret)
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

void instwrite_set_invalidate(struct instwrite *iw,
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
