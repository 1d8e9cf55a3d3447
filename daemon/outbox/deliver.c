/* deliver.c - one item's way to the platform, step by journaled step.
 *
 *   received   -> check the files against the app's data types (a file
 *                 that can never be accepted is refused here, before an
 *                 instance is made for it), hash them
 *   creating   -> POST instances; the attempt is recorded first
 *   created    -> the instance id is recorded; POST .../data per file,
 *                 each attempt recorded first, each element id after
 *   uploaded   -> PUT process/next (unless outbox_process_next is off)
 *   submitted  -> outcome.c writes the receipt
 *
 * Never twice: a step whose outcome is unknown (no answer, a 5xx, a crash
 * between sending and recording) is looked up on the platform before it
 * is tried again. An instance is found among the owner's instances made
 * since the attempt began that no other item claims and that has none of
 * our data yet; an element among the instance's elements by data type,
 * filename and size; a process move by the task having changed. When the
 * attempt got no answer at all, the look waits `timeout` seconds after it
 * began, so the platform has finished whatever it was doing. */
#include "deliver.h"
#include "item.h"
#include "outcome.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "outbox_rules.h"
#include "sha256.h"
#include "xalloc.h"

/* Metadata older than this is fetched again before a file is checked. */
#define OB_META_TTL_MS 60000
/* Instances made this long before an attempt still count as its own:
 * the platform's clock and ours need not agree. */
#define OB_CLOCK_SLACK_MS (10 * 60 * 1000)
/* Files in one folder submission. */
#define OB_MAX_FILES 1000
/* Files larger than this are hashed as they are uploaded, not before:
 * the receipt needs the sha256, the platform does not. */
#define OB_HASH_INLINE (1u << 20)

int deliver_app_meta(struct outbox *ob, struct ob_app *oa)
{
	struct alt_app *meta = NULL;
	int64_t now = outbox_now_ms();
	bool fresh;
	int r;

	pthread_mutex_lock(&ob->meta_lock);
	fresh = oa->meta && now - oa->meta_at < OB_META_TTL_MS;
	pthread_mutex_unlock(&ob->meta_lock);
	if (fresh)
		return 0;
	r = altinn_get_app(ob->a, oa->org, oa->app, &meta);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ob->meta_lock);
	alt_app_free(oa->meta);
	oa->meta = meta;
	oa->meta_at = now;
	pthread_mutex_unlock(&ob->meta_lock);
	return 0;
}

/* A step could not be taken now; *ans says why. */
static int later(struct app_answer *ans, const char *what, int r)
{
	app_answer_clear(ans);
	ans->outcome = APP_LATER;
	snprintf(ans->summary, sizeof(ans->summary), "%s: %s", what, strerror(-r));
	return r < 0 ? r : -EIO;
}

/* ---- checking the files */

static int open_file(struct outbox *ob, const struct ob_item *it, const char *path)
{
	char *rel = *path ? xasprintf("%s/%s", it->s.rel, path) : xstrdup(it->s.rel);
	int fd = openat(ob->apps[it->app].dir_fd[OB_OUTBOX], rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	free(rel);
	return fd < 0 ? -errno : fd;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of a folder item, sorted; a reason when it cannot be sent. */
static int list_folder(struct outbox *ob, const struct ob_item *it, char ***ret, size_t *ret_n,
		       char **ret_reason)
{
	int fd = openat(ob->apps[it->app].dir_fd[OB_OUTBOX], it->s.rel,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char **names = NULL;
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while ((de = readdir(d)) && !*ret_reason) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			*ret_reason = xasprintf("\"%s\" is a folder: a folder submission holds files only",
						de->d_name);
		else if (outbox_temp_name(de->d_name))
			*ret_reason = xasprintf("\"%s\" has a temporary name (a file still being "
						"written?)", de->d_name);
		else if (n >= OB_MAX_FILES)
			*ret_reason = xasprintf("more than %d files", OB_MAX_FILES);
		else if (S_ISREG(st.st_mode)) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	if (!*ret_reason && n == 0)
		*ret_reason = xstrdup("the folder is empty");
	if (names)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret = names;
	*ret_n = n;
	return 0;
}

/* One file as an element to be: size, type, hash; or a reason. */
static int check_file(struct outbox *ob, struct ob_item *it, const char *path,
		      struct spool_element *el, char **ret_reason)
{
	const struct ob_app *oa = &ob->apps[it->app];
	const char *filename = *path ? path : outbox_item_name(it);
	const struct alt_data_type *t;
	const char *ctype;
	struct stat st;
	int fd, r;

	fd = open_file(ob, it, path);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EIO;
	}
	el->path = xstrdup(path);
	el->filename = xstrdup(filename);
	el->size = (uint64_t)st.st_size;
	ctype = app_content_type(filename);
	if (st.st_size == 0) {
		*ret_reason = xasprintf("\"%s\" is empty: the platform takes no zero-byte data", filename);
	} else if (!ctype) {
		*ret_reason = xasprintf("\"%s\" has no extension: the platform needs one to tell "
					"its type", filename);
	} else {
		pthread_mutex_lock(&ob->meta_lock);
		r = outbox_choose_type(oa->meta, oa->forced_type, ctype, el->size, &t, ret_reason);
		if (r == 0)
			el->data_type = xstrdup(t->id);
		pthread_mutex_unlock(&ob->meta_lock);
		el->content_type = xstrdup(ctype);
	}
	r = *ret_reason || el->size > OB_HASH_INLINE ? 0 : sha256_fd(fd, el->sha256);
	close(fd);
	return r;
}

/* maxCount of each data type over the whole item */
static char *check_counts(struct outbox *ob, struct ob_item *it)
{
	const struct ob_app *oa = &ob->apps[it->app];
	char *reason = NULL;

	pthread_mutex_lock(&ob->meta_lock);
	for (size_t i = 0; i < oa->meta->n_types && !reason; i++) {
		const struct alt_data_type *t = &oa->meta->types[i];
		int n = 0;

		for (size_t k = 0; k < it->s.n_els; k++)
			n += strcmp(it->s.els[k].data_type, t->id) == 0;
		if (t->max_count > 0 && n > t->max_count)
			reason = xasprintf("%d files of data type \"%s\", which takes at most %d", n,
					   t->id, t->max_count);
	}
	pthread_mutex_unlock(&ob->meta_lock);
	return reason;
}

/* RECEIVED: the elements to be, or a refusal (returns 0 with *ret_reason). */
static int prepare(struct outbox *ob, struct ob_item *it, struct app_answer *ans,
		   char **ret_reason)
{
	char **names = NULL;
	size_t n = 1;
	int r;

	r = deliver_app_meta(ob, &ob->apps[it->app]);
	if (r < 0)
		return later(ans, "application metadata", r);
	if (it->s.is_dir) {
		r = list_folder(ob, it, &names, &n, ret_reason);
		if (r < 0)
			return later(ans, "read the folder", r);
	}
	pthread_mutex_lock(&ob->lock);
	spool_elements_clear(&it->s);
	it->s.els = xcalloc(n ? n : 1, sizeof(*it->s.els));
	pthread_mutex_unlock(&ob->lock);
	for (size_t i = 0; i < n && !*ret_reason && r == 0; i++) {
		r = check_file(ob, it, names ? names[i] : "", &it->s.els[i], ret_reason);
		it->s.n_els = i + 1;
	}
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	if (r < 0)
		return later(ans, "read the file", r);
	if (!*ret_reason)
		*ret_reason = check_counts(ob, it);
	return 0;
}

/* ---- unknown outcomes */

/* An attempt without an answer: has the platform surely finished it? */
static int settled(struct outbox *ob, const struct ob_item *it, int64_t attempt_at,
		   struct app_answer *ans)
{
	int64_t wait = attempt_at + (int64_t)ob->cfg->timeout * 1000 - outbox_now_ms();

	if (it->answered || wait <= 0)
		return 0;
	app_answer_clear(ans);
	ans->outcome = APP_LATER;
	ans->retry_after_ms = wait;
	snprintf(ans->summary, sizeof(ans->summary),
		 "waiting for the platform to finish an attempt whose answer was lost");
	return -EAGAIN;
}

struct find_ctx {
	struct outbox *ob;
	struct ob_item *it;
	const char *key, *value; /* the owner */
	const char *created_by;  /* ours, when known */
	struct json_outbox_instance best;
};

static bool ours(const struct json_outbox_instance *oi, const struct find_ctx *f)
{
	const char *v = strcmp(f->key, "partyId") == 0 ? oi->inst->party_id
			: strcmp(f->key, "organisationNumber") == 0 ? oi->org_number
								     : oi->person_number;

	if (!v || strcmp(v, f->value) != 0)
		return false;
	if (f->created_by && oi->created_by && strcmp(f->created_by, oi->created_by) != 0)
		return false;
	for (size_t i = 0; i < oi->inst->n_data; i++)
		for (size_t k = 0; k < f->it->s.n_els; k++)
			if (strcmp(oi->inst->data[i].data_type, f->it->s.els[k].data_type) == 0)
				return false; /* has our kind of data: made by another drop */
	return !spool_instance_claimed(f->ob->spool, oi->inst->id, f->it->s.id);
}

static int find_cb(void *ctx, struct json_outbox_instance *oi)
{
	struct find_ctx *f = ctx;
	const struct timespec *c = &oi->inst->created, *b;

	if (!ours(oi, f))
		return 0;
	b = f->best.inst ? &f->best.inst->created : NULL;
	if (b && (c->tv_sec > b->tv_sec || (c->tv_sec == b->tv_sec && c->tv_nsec >= b->tv_nsec)))
		return 0;
	json_outbox_instance_clear(&f->best);
	f->best = *oi;
	memset(oi, 0, sizeof(*oi)); /* taken */
	return 0;
}

static void learn(struct outbox *ob, const struct ob_item *it, const struct json_outbox_instance *oi)
{
	char *owner = outbox_item_owner(it), *key = xasprintf("party:%s", owner);
	char *known = NULL;

	spool_fact_get(ob->spool, key, &known);
	if (!known || strcmp(known, oi->inst->party_id) != 0)
		spool_fact_set(ob->spool, key, oi->inst->party_id);
	free(known);
	known = NULL;
	spool_fact_get(ob->spool, "created_by", &known);
	if (oi->created_by && (!known || strcmp(known, oi->created_by) != 0))
		spool_fact_set(ob->spool, "created_by", oi->created_by);
	free(known);
	free(key);
	free(owner);
}

static void adopt(struct outbox *ob, struct ob_item *it, struct json_outbox_instance *oi)
{
	pthread_mutex_lock(&ob->lock);
	free(it->s.instance_id);
	it->s.instance_id = xstrdup(oi->inst->id);
	free(it->s.task);
	it->s.task = oi->task ? xstrdup(oi->task) : NULL;
	it->s.state = SPOOL_CREATED;
	pthread_mutex_unlock(&ob->lock);
}

/* CREATING: did the last attempt make an instance? */
static int resolve_create(struct outbox *ob, struct ob_item *it, const char *key,
			  const char *value, struct app_answer *ans)
{
	struct find_ctx f = { ob, it, key, value, NULL, { 0 } };
	char *owner = outbox_item_owner(it), *fact = xasprintf("party:%s", owner);
	char *party = NULL, *created_by = NULL;
	int r;

	r = settled(ob, it, it->s.attempt_at, ans);
	if (r < 0)
		goto out;
	if (strcmp(key, "partyId") == 0)
		party = xstrdup(value);
	else
		spool_fact_get(ob->spool, fact, &party);
	spool_fact_get(ob->spool, "created_by", &created_by);
	f.created_by = created_by;
	r = app_find_instances(ob->a, it->s.org, it->s.app, party,
			       it->s.attempt_at - OB_CLOCK_SLACK_MS, find_cb, &f, ans);
	if (r < 0)
		goto out;
	if (f.best.inst) {
		log_info("outbox: \"%s/%s\": instance \"%s\" was made by an attempt whose answer "
			 "was lost; using it", ob->apps[it->app].id, it->s.rel, f.best.inst->id);
		adopt(ob, it, &f.best);
	} else {
		log_info("outbox: \"%s/%s\": the lost attempt made no instance; trying again",
			 ob->apps[it->app].id, it->s.rel);
		pthread_mutex_lock(&ob->lock);
		it->s.state = SPOOL_RECEIVED;
		pthread_mutex_unlock(&ob->lock);
	}
	r = outbox_save(ob, it, false);
	if (r < 0)
		r = later(ans, "journal", r);
out:
	json_outbox_instance_clear(&f.best);
	free(created_by);
	free(party);
	free(fact);
	free(owner);
	return r;
}

/* ---- the steps */

/* The lock that makes creates and look-ups one at a time for this
 * item's app and owner (see struct outbox). */
static pthread_mutex_t *create_lock(struct outbox *ob, const struct ob_item *it,
				    const char *owner)
{
	uint64_t h = 0xcbf29ce484222325ull ^ it->app;

	for (const unsigned char *p = (const unsigned char *)owner; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return &ob->create_locks[h % OB_CREATE_LOCKS];
}

static int create_locked(struct outbox *ob, struct ob_item *it, const char *owner,
			 struct app_answer *ans);

static int step_create(struct outbox *ob, struct ob_item *it, struct app_answer *ans)
{
	char *owner = outbox_item_owner(it);
	pthread_mutex_t *lock = create_lock(ob, it, owner);
	int r;

	pthread_mutex_lock(lock);
	r = create_locked(ob, it, owner, ans);
	pthread_mutex_unlock(lock);
	free(owner);
	return r;
}

static int create_locked(struct outbox *ob, struct ob_item *it, const char *owner,
			 struct app_answer *ans)
{
	struct json_outbox_instance oi = { 0 };
	const char *key, *value;
	int r;

	if (!outbox_owner_parse(owner, &key, &value))
		return outcome_refuse(ob, it, "check", NULL, "not an owner folder (org-<9 digits>, "
				      "person-<11 digits> or party-<partyId>)");
	if (it->s.state == SPOOL_CREATING) {
		r = resolve_create(ob, it, key, value, ans);
		if (r < 0 || it->s.state == SPOOL_CREATED)
			goto out;
	}
	pthread_mutex_lock(&ob->lock);
	it->s.state = SPOOL_CREATING;
	it->s.attempt_at = outbox_now_ms();
	if (!it->s.first_attempt_at)
		it->s.first_attempt_at = it->s.attempt_at;
	pthread_mutex_unlock(&ob->lock);
	r = outbox_save(ob, it, true);
	if (r < 0) {
		r = later(ans, "journal", r);
		goto out;
	}
	r = app_create_instance(ob->a, it->s.org, it->s.app, key, value, &oi, ans);
	it->answered = ans->status != 0;
	if (r == 0 && spool_instance_claimed(ob->spool, oi.inst->id, it->s.id)) {
		/* a new instance was asked for and one of ours came back: two
		 * submissions in one instance, and process/next twice */
		char *why = xasprintf("the platform answered the create with instance %s, which "
				      "another submission already has; nothing was sent to it",
				      oi.inst->id);

		r = outcome_refuse(ob, it, "create_instance", NULL, why);
		free(why);
		goto out;
	}
	if (r == 0) {
		learn(ob, it, &oi);
		adopt(ob, it, &oi);
		r = outbox_save(ob, it, false);
		if (r < 0) /* the id is lost with it: the look finds it again */
			r = later(ans, "journal", r);
	} else if (ans->outcome == APP_LATER) {
		outbox_set_state(ob, it, SPOOL_RECEIVED, false);
	}
out:
	json_outbox_instance_clear(&oi);
	return r;
}

/* SENDING: did the last upload of element k arrive? */
static int resolve_upload(struct outbox *ob, struct ob_item *it, size_t k, struct app_answer *ans)
{
	struct spool_element *el = &it->s.els[k];
	struct json_outbox_instance oi = { 0 };
	const char *found = NULL;
	int r;

	r = settled(ob, it, el->attempt_at, ans);
	if (r == 0)
		r = app_get_instance(ob->a, it->s.instance_id, &oi, ans);
	if (r < 0)
		return r;
	for (size_t i = 0; i < oi.inst->n_data && !found; i++) {
		const struct alt_data_element *d = &oi.inst->data[i];
		bool taken = spool_data_claimed(ob->spool, d->id, it->s.id);

		for (size_t j = 0; j < it->s.n_els && !taken; j++)
			taken = j != k && it->s.els[j].data_id && strcmp(it->s.els[j].data_id, d->id) == 0;
		if (!taken && d->filename && strcmp(d->filename, el->filename) == 0 &&
		    strcmp(d->data_type, el->data_type) == 0 && d->size == el->size)
			found = d->id;
	}
	pthread_mutex_lock(&ob->lock);
	el->state = found ? SPOOL_EL_UPLOADED : SPOOL_EL_PENDING;
	el->data_id = found ? xstrdup(found) : NULL;
	pthread_mutex_unlock(&ob->lock);
	log_info("outbox: \"%s/%s\": the lost upload of \"%s\" %s", ob->apps[it->app].id,
		 it->s.rel, el->filename,
		 found ? "arrived; using it" : "did not arrive; sending it again");
	json_outbox_instance_clear(&oi);
	r = spool_save_element(ob->spool, &it->s, k);
	return r < 0 ? later(ans, "journal", r) : 0;
}

/* Hashes an upload's bytes as http.c sends them, so a large file is
 * read once; a body sent again after a rewind is not hashed twice. */
struct tap {
	struct sha256 *ctx;
	uint64_t pos;
	bool broken;
};

static void tap_send(void *arg, uint64_t off, const char *p, size_t n)
{
	struct tap *t = arg;

	if (t->broken || off + n <= t->pos)
		return;
	if (off > t->pos) {
		t->broken = true; /* a gap: hash the file afterwards instead */
		return;
	}
	sha256_update(t->ctx, p + (t->pos - off), n - (size_t)(t->pos - off));
	t->pos = off + n;
}

/* The sha256 of el once its upload is over: from the tap, or read again. */
static void tap_finish(struct outbox *ob, struct ob_item *it, struct spool_element *el,
		       struct tap *t)
{
	char sha[65] = "";
	char tapped[65];

	if (!t->ctx)
		return;
	sha256_finish(t->ctx, tapped);
	if (!t->broken && t->pos == el->size) {
		memcpy(sha, tapped, sizeof(sha));
	} else {
		int fd = open_file(ob, it, el->path);

		if (fd >= 0 && sha256_fd(fd, sha) < 0)
			sha[0] = '\0';
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_lock(&ob->lock);
	memcpy(el->sha256, sha, sizeof(el->sha256));
	pthread_mutex_unlock(&ob->lock);
}

static int step_upload(struct outbox *ob, struct ob_item *it, size_t k, struct app_answer *ans)
{
	struct spool_element *el = &it->s.els[k];
	struct tap tap = { 0 };
	char *id = NULL, *stored = NULL;
	int fd, r;

	if (el->state == SPOOL_EL_SENDING) {
		r = resolve_upload(ob, it, k, ans);
		if (r < 0 || el->state == SPOOL_EL_UPLOADED)
			return r;
	}
	fd = open_file(ob, it, el->path);
	if (fd < 0)
		return later(ans, "open the file", fd);
	pthread_mutex_lock(&ob->lock);
	el->state = SPOOL_EL_SENDING;
	el->attempt_at = outbox_now_ms();
	pthread_mutex_unlock(&ob->lock);
	r = spool_save_element(ob->spool, &it->s, k);
	if (r < 0) {
		close(fd);
		return later(ans, "journal", r);
	}
	if (!el->sha256[0]) {
		tap.ctx = sha256_new();
	}
	r = app_upload(ob->a, it->s.org, it->s.app, it->s.instance_id, el->data_type, el->filename,
		       el->content_type, fd, el->size, tap.ctx ? tap_send : NULL, &tap, &id,
		       &stored, ans);
	close(fd);
	tap_finish(ob, it, el, &tap);
	it->answered = ans->status != 0;
	if (r < 0 && ans->outcome != APP_LATER)
		return r;
	pthread_mutex_lock(&ob->lock);
	el->state = r == 0 ? SPOOL_EL_UPLOADED : SPOOL_EL_PENDING;
	el->data_id = id;
	free(el->stored_name);
	el->stored_name = stored;
	pthread_mutex_unlock(&ob->lock);
	if (spool_save_element(ob->spool, &it->s, k) < 0 && r == 0)
		return later(ans, "journal", -EIO);
	return r;
}

/* SUBMITTING: did the last process/next move the process? */
static int resolve_next(struct outbox *ob, struct ob_item *it, struct app_answer *ans)
{
	struct json_outbox_instance oi = { 0 };
	bool moved;
	int r;

	r = settled(ob, it, it->s.attempt_at, ans);
	if (r == 0)
		r = app_get_instance(ob->a, it->s.instance_id, &oi, ans);
	if (r < 0)
		return r;
	moved = oi.ended || !oi.task || !it->s.task || strcmp(oi.task, it->s.task) != 0;
	log_info("outbox: \"%s/%s\": the lost process/next %s", ob->apps[it->app].id, it->s.rel,
		 moved ? "moved the process" : "did not move the process; trying again");
	pthread_mutex_lock(&ob->lock);
	if (moved) {
		free(it->s.task);
		it->s.task = oi.task ? xstrdup(oi.task) : NULL;
	}
	it->s.state = moved ? SPOOL_SUBMITTED : SPOOL_UPLOADED;
	pthread_mutex_unlock(&ob->lock);
	json_outbox_instance_clear(&oi);
	r = outbox_save(ob, it, false);
	return r < 0 ? later(ans, "journal", r) : 0;
}

static int step_next(struct outbox *ob, struct ob_item *it, struct app_answer *ans)
{
	char *task = NULL;
	int r;

	if (it->s.state == SPOOL_SUBMITTING) {
		r = resolve_next(ob, it, ans);
		if (r < 0 || it->s.state == SPOOL_SUBMITTED)
			return r;
	}
	pthread_mutex_lock(&ob->lock);
	it->s.state = SPOOL_SUBMITTING;
	it->s.attempt_at = outbox_now_ms();
	pthread_mutex_unlock(&ob->lock);
	r = outbox_save(ob, it, false);
	if (r < 0)
		return later(ans, "journal", r);
	r = app_process_next(ob->a, it->s.org, it->s.app, it->s.instance_id, &task, ans);
	it->answered = ans->status != 0;
	if (r < 0 && ans->outcome != APP_LATER)
		return r;
	pthread_mutex_lock(&ob->lock);
	if (r == 0) {
		free(it->s.task);
		it->s.task = task;
	}
	it->s.state = r == 0 ? SPOOL_SUBMITTED : SPOOL_UPLOADED;
	pthread_mutex_unlock(&ob->lock);
	if (outbox_save(ob, it, false) < 0 && r == 0)
		return later(ans, "journal", -EIO);
	return r;
}

static const char *step_name(enum spool_state st)
{
	return st <= SPOOL_CREATING ? "create_instance" : st == SPOOL_CREATED ? "upload" : "process_next";
}

int deliver_item(struct outbox *ob, struct ob_item *it, struct app_answer *ans)
{
	char *reason = NULL;
	int r = 0;

	if (it->s.state == SPOOL_RECEIVED) {
		r = prepare(ob, it, ans, &reason);
		if (r == 0 && reason) {
			r = outcome_refuse(ob, it, "check", NULL, reason);
			free(reason);
			return r;
		}
	}
	if (r == 0 && (it->s.state == SPOOL_RECEIVED || it->s.state == SPOOL_CREATING))
		r = step_create(ob, it, ans);
	for (size_t k = 0; r == 0 && it->s.state == SPOOL_CREATED && k < it->s.n_els; k++)
		if (it->s.els[k].state != SPOOL_EL_UPLOADED)
			r = step_upload(ob, it, k, ans);
	if (r == 0 && it->s.state == SPOOL_CREATED)
		r = outbox_set_state(ob, it, ob->cfg->outbox_process_next ? SPOOL_UPLOADED
									 : SPOOL_SUBMITTED, false);
	if (r == 0 && (it->s.state == SPOOL_UPLOADED || it->s.state == SPOOL_SUBMITTING)) {
		if (it->s.task || it->s.state == SPOOL_SUBMITTING)
			r = step_next(ob, it, ans);
		else /* the process has no task to leave */
			r = outbox_set_state(ob, it, SPOOL_SUBMITTED, false);
	}
	if (r < 0 && ans->outcome == APP_REFUSED)
		return outcome_refuse(ob, it, step_name(it->s.state), ans, NULL);
	return r;
}
