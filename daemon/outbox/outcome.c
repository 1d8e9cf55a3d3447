/* outcome.c - how an item ends: a receipt in sent/, or a dead letter and
 * the original bytes in failed/.
 *
 * Everything here is written by core's one writer of receipts and dead
 * letters (core/receipt.h), through the mount, from an uploader thread,
 * so inotify watchers of sent/ and failed/ see each file arrive whole. The name in sent/ or failed/ is chosen once, when the
 * outcome is decided, and recorded with the document before anything is
 * written: after a crash the same file is written again under the same
 * name (replacing our own copy, never anyone else's), and a name already
 * taken gets a numeric suffix, never an overwrite. */
#include "outcome.h"
#include "item.h"

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
#include "mountio.h"
#include "receipt.h"
#include "xalloc.h"

static struct timespec ts_of(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	return ts;
}

static bool taken(int dir_fd, const char *owner, const char *name)
{
	char *rel = xasprintf("%s/%s", owner, name);
	struct stat st;
	bool t = fstatat(dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;

	free(rel);
	return t;
}

/* The first of name, name-1, ... with name and name+tail both free. */
static char *free_name(int dir_fd, const char *owner, const char *name, const char *tail)
{
	for (unsigned n = 0;; n++) {
		char *candidate = mountio_suffixed(name, n);
		char *with_tail = xasprintf("%s%s", candidate, tail);
		bool t = taken(dir_fd, owner, with_tail) || (*tail && taken(dir_fd, owner, candidate));

		free(with_tail);
		if (!t)
			return candidate;
		free(candidate);
	}
}

static struct json_outbox_file *files_of(const struct ob_item *it)
{
	struct json_outbox_file *f = xcalloc(it->s.n_els + 1, sizeof(*f));

	for (size_t i = 0; i < it->s.n_els; i++) {
		const struct spool_element *el = &it->s.els[i];

		f[i] = (struct json_outbox_file){ el->path, el->filename, el->content_type,
						  el->data_type, el->data_id, el->sha256, el->size,
						  el->stored_name };
		if (!el->sha256[0])
			f[i].sha256 = NULL;
	}
	return f;
}

static void report_of(const struct outbox *ob, const struct ob_item *it, const char *owner,
		      struct json_outbox_report *r)
{
	memset(r, 0, sizeof(*r));
	r->app_id = ob->apps[it->app].id;
	r->owner = owner;
	r->name = outbox_item_name(it);
	r->instance_id = it->s.instance_id;
	r->files = files_of(it);
	r->n_files = it->s.n_els;
	r->attempts = it->s.attempts + (it->s.first_attempt_at ? 1 : 0);
	r->received_at = ts_of(it->s.received_at);
	r->first_attempt_at = ts_of(it->s.first_attempt_at);
	r->finished_at = ts_of(it->s.finished_at);
}

int outcome_refuse(struct outbox *ob, struct ob_item *it, const char *step,
		   const struct app_answer *ans, const char *reason)
{
	char *owner = outbox_item_owner(it), *name, *doc;
	struct json_outbox_report rep;

	name = free_name(ob->apps[it->app].dir_fd[OB_FAILED], owner, outbox_item_name(it),
			 ".error.json");
	pthread_mutex_lock(&ob->lock);
	it->s.finished_at = outbox_now_ms();
	pthread_mutex_unlock(&ob->lock);
	report_of(ob, it, owner, &rep);
	rep.stored_as = name;
	rep.step = step;
	if (ans) {
		rep.status = ans->status;
		rep.title = ans->title;
		rep.detail = ans->detail;
	}
	rep.reason = reason ? reason : ans ? ans->summary : it->s.last_error;
	doc = json_outbox_dead_letter(&rep);
	free((void *)rep.files);
	log_warn("outbox: \"%s/%s\" refused at %s: %s", ob->apps[it->app].id, it->s.rel, step,
		 rep.reason ? rep.reason : "");
	pthread_mutex_lock(&ob->lock);
	free(it->s.outcome_name);
	it->s.outcome_name = name;
	free(it->s.outcome_doc);
	it->s.outcome_doc = doc;
	free(it->s.last_error);
	it->s.last_error = xstrdup(rep.reason ? rep.reason : step);
	it->s.state = SPOOL_FAILING;
	pthread_mutex_unlock(&ob->lock);
	free(owner);
	/* recorded before anything is written: the same name after a crash */
	return outbox_save(ob, it, true);
}

/* Removes the item from outbox/ through the mount (a folder with its files). */
static int remove_item(struct outbox *ob, const struct ob_item *it)
{
	char *path = xasprintf("%s/%s", ob->apps[it->app].mount_dir[OB_OUTBOX], it->s.rel);
	int r = 0;

	if (it->s.is_dir) {
		for (size_t i = 0; i < it->s.n_els && r == 0; i++) {
			char *file = xasprintf("%s/%s", path, it->s.els[i].path);

			if (unlink(file) < 0 && errno != ENOENT)
				r = -errno;
			free(file);
		}
		if (r == 0 && rmdir(path) < 0 && errno != ENOENT)
			r = -errno;
	} else if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
	}
	if (r < 0)
		log_errno(r, "cannot remove \"%s\" from the outbox", path);
	free(path);
	return r;
}

static int finish_sent(struct outbox *ob, struct ob_item *it, const char *owner)
{
	struct ob_app *oa = &ob->apps[it->app];
	char *dir = NULL;
	int r;

	if (!it->s.outcome_doc) {
		char *base = xasprintf("%s.json", outbox_item_name(it));
		char *name = free_name(oa->dir_fd[OB_SENT], owner, base, "");
		struct json_outbox_report rep;
		char *doc;

		pthread_mutex_lock(&ob->lock);
		it->s.finished_at = outbox_now_ms();
		pthread_mutex_unlock(&ob->lock);
		report_of(ob, it, owner, &rep);
		rep.process_next = ob->cfg->outbox_process_next;
		rep.task = it->s.task;
		doc = json_outbox_receipt(&rep);
		free((void *)rep.files);
		pthread_mutex_lock(&ob->lock);
		it->s.outcome_name = name;
		it->s.outcome_doc = doc;
		pthread_mutex_unlock(&ob->lock);
		free(base);
		r = outbox_save(ob, it, false);
		if (r < 0)
			goto out;
	}
	r = receipt_dir(oa->mount_dir[OB_SENT], owner, &dir);
	if (r == 0)
		r = receipt_write(dir, it->s.outcome_name, it->s.outcome_doc, false, NULL);
	if (r == 0)
		r = remove_item(ob, it);
	if (r == 0)
		r = outbox_set_state(ob, it, SPOOL_DONE, false);
	if (r == 0)
		log_info("outbox: \"%s/%s\" sent as instance \"%s\"", oa->id, it->s.rel,
			 it->s.instance_id);
out:
	free(dir);
	return r;
}

static int finish_failed(struct outbox *ob, struct ob_item *it, const char *owner)
{
	struct ob_app *oa = &ob->apps[it->app];
	struct receipt_bytes bytes = { NULL, NULL, 0 };
	char *dir = NULL, *from = NULL;
	struct stat st;
	int r;

	if (!it->s.outcome_doc) { /* failing since a restart found the bytes gone */
		r = outcome_refuse(ob, it, "deliver", NULL, it->s.last_error);
		if (r < 0)
			return r;
	}
	/* the bytes are moved unless a crash came after they were */
	if (fstatat(oa->dir_fd[OB_OUTBOX], it->s.rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		from = xasprintf("%s/%s", oa->mount_dir[OB_OUTBOX], it->s.rel);
		bytes.move_from = from;
	}
	r = receipt_dir(oa->mount_dir[OB_FAILED], owner, &dir);
	if (r == 0)
		r = receipt_dead_letter(dir, it->s.outcome_name, &bytes, it->s.outcome_doc, false,
					NULL);
	if (r == 0)
		r = outbox_set_state(ob, it, SPOOL_FAILED, false);
	if (r == 0) {
		pthread_mutex_lock(&ob->lock);
		ob->failed++;
		pthread_mutex_unlock(&ob->lock);
	}
	free(from);
	free(dir);
	return r;
}

int outcome_finish(struct outbox *ob, struct ob_item *it)
{
	char *owner = outbox_item_owner(it);
	int r = -EINVAL;

	if (it->s.state == SPOOL_SUBMITTED)
		r = finish_sent(ob, it, owner);
	else if (it->s.state == SPOOL_FAILING)
		r = finish_failed(ob, it, owner);
	free(owner);
	return r;
}
