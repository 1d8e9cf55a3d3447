/* instsend.c - the worker that sends journaled instance writes.
 *
 * One thread takes the oldest item that is due, marks it `sending`
 * (durably) before the request, and sorts the answer: done, refused for
 * good (a dead letter), or to be tried again later with backoff. An item
 * found `sending` may have reached the platform: a POST is looked for
 * there first (an element of its type and name created since the attempt
 * and claimed by no other item); a PUT or DELETE is repeated. Outcomes
 * are written through the mount, from this thread, which serves no FUSE
 * request. */
#include "instsend.h"

#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_app.h"
#include "config.h"
#include "json.h"
#include "journal.h"
#include "log.h"
#include "retry.h"
#include "receipt.h"
#include "xalloc.h"

void iw_row_clear(struct iw_row *row)
{
	char **s[] = { &row->org,  &row->app, &row->party,   &row->guid, &row->type,
		       &row->name, &row->op,  &row->data_id, &row->stored_name };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(*s[i]);
	memset(row, 0, sizeof(*row));
}

static bool held_open(void *ctx, int64_t id)
{
	return iw_held_open(ctx, id); /* its release wakes us */
}

/* The oldest due item; 1 when found, 0 when none (*ret_wait_ms: until
 * the next one is due, -1 for none), or -errno. Called with lock held. */
static int next_due(struct instwrite *iw, struct iw_row *ret, int64_t *ret_wait_ms)
{
	struct queue_item it;
	int r = queue_next_due(iw->q, QUEUE_STATE(IW_PENDING) | QUEUE_STATE(IW_SENDING), held_open,
			       iw, &it, ret_wait_ms);

	if (r == 1)
		iw_row_take(ret, &it);
	return r;
}

/* Saves the row's state (and data id, attempt time, error, backoff). */
static int save_row(struct instwrite *iw, const struct iw_row *row, int64_t next_at,
		    const char *error)
{
	struct queue_item it;
	int r;

	iw_item_of(&it, row, next_at, error);
	pthread_mutex_lock(&iw->lock);
	r = queue_save(iw->q, &it);
	pthread_mutex_unlock(&iw->lock);
	queue_item_clear(&it);
	return r;
}

static void set_state(struct iw_row *row, enum iw_state state)
{
	row->state = state;
}

/* Is this element id held by another item of ours (a POST that found it)? */
static bool claimed(struct instwrite *iw, const char *data_id, int64_t skip)
{
	struct queue_query qq = { .skip_id = skip };
	uint64_t n = 0;

	qq.match[IW_F_OP] = "post";
	qq.match[IW_F_DATA_ID] = data_id;
	pthread_mutex_lock(&iw->lock);
	/* a journal that cannot answer: taken as claimed, so nothing is taken twice */
	if (queue_count(iw->q, &qq, &n) < 0)
		n = 1;
	pthread_mutex_unlock(&iw->lock);
	return n > 0;
}

/* A POST whose outcome is unknown: 1 and row->data_id when the platform
 * has the element, 0 when it has not, -errno when we cannot tell. */
static int find_posted(struct instwrite *iw, struct iw_row *row, struct app_answer *ans)
{
	struct json_outbox_instance oi = { 0 };
	char *id = xasprintf("%s/%s", row->party, row->guid);
	int64_t since = row->attempt_at - IW_CLOCK_SLACK_MS;
	int r = app_get_instance(iw->a, id, &oi, ans);

	free(id);
	if (r < 0)
		return r;
	r = 0;
	for (size_t i = 0; i < oi.inst->n_data; i++) {
		const struct alt_data_element *el = &oi.inst->data[i];
		int64_t created = (int64_t)el->created.tv_sec * 1000;

		if (strcmp(el->data_type, row->type) == 0 && el->filename &&
		    strcmp(el->filename, row->name) == 0 && el->size == row->size &&
		    created >= since && !claimed(iw, el->id, row->id)) {
			row->data_id = xstrdup(el->id);
			r = 1;
			break;
		}
	}
	json_outbox_instance_clear(&oi);
	return r;
}

/* One request for the item; 0 or -errno with the answer in *ans. */
static int send_row(struct instwrite *iw, struct iw_row *row, struct app_answer *ans)
{
	char *inst = xasprintf("%s/%s", row->party, row->guid);
	const char *type = app_content_type(row->name);
	char *stage = iw_stage_name(row->id), *new_id = NULL;
	int fd = -1, r;

	if (!type)
		type = "application/octet-stream";
	if (strcmp(row->op, "delete") != 0) {
		fd = openat(iw->stage_fd, stage, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			r = log_errno(-errno, "instance writes: staging file \"%s\" is gone", stage);
			app_answer_clear(ans);
			ans->outcome = APP_REFUSED;
			snprintf(ans->summary, sizeof(ans->summary), "the staged bytes are gone");
			goto out;
		}
	}
	if (strcmp(row->op, "post") == 0) {
		r = app_upload(iw->a, row->org, row->app, inst, row->type, row->name, type, fd,
			       row->size, NULL, NULL, &new_id, &row->stored_name, ans);
		if (r == 0)
			row->data_id = new_id;
	} else if (strcmp(row->op, "put") == 0) {
		r = app_replace_data(iw->a, row->org, row->app, inst, row->data_id, row->name, type,
				     fd, row->size, &row->stored_name, ans);
	} else {
		r = app_delete_data(iw->a, row->org, row->app, inst, row->data_id, ans);
		if (r < 0 && ans->status == 404) /* gone already: what was asked */
			r = 0;
	}
out:
	if (fd >= 0)
		close(fd);
	free(stage);
	free(inst);
	return r;
}

/* ----- outcomes, through the mount ----- */

static char *render(const struct iw_row *row, const char *reason)
{
	char *app = xasprintf("%s/%s", row->org, row->app);
	char *inst = xasprintf("%s/%s", row->party, row->guid);
	const struct json_write_report rep = {
		.app_id = app, .instance_id = inst, .data_type = row->type, .name = row->name,
		.op = row->op, .data_id = row->data_id, .stored_name = row->stored_name,
		.size = row->size,
		.attempts = row->attempts + 1,
		.at = { (time_t)(iw_now_ms() / 1000), 0 }, .error = reason,
	};
	char *doc = json_write_report(&rep);

	free(app);
	free(inst);
	return doc;
}

/* area/instance-<party>-<guid>/<type>, made where missing, through the mount */
static char *outcome_dir(struct instwrite *iw, const struct iw_row *row, const char *area)
{
	char *app = xasprintf("%s/apps/%s/%s/%s", iw->mountpoint, row->org, row->app, area);
	char *sub = xasprintf("instance-%s-%s/%s", row->party, row->guid, row->type);
	char *dir;

	receipt_dir(app, sub, &dir); /* a failure is named by the write that follows */
	free(sub);
	free(app);
	return dir;
}

static int write_receipt(struct instwrite *iw, const struct iw_row *row)
{
	char *dir = outcome_dir(iw, row, "sent");
	char *name = xasprintf("%s.json", row->name);
	char *doc = render(row, NULL);
	int r = receipt_write(dir, name, doc, true, NULL);

	free(doc);
	free(name);
	free(dir);
	return r;
}

static char *read_stage(struct instwrite *iw, const struct iw_row *row, size_t *ret_len)
{
	char *stage = iw_stage_name(row->id), *buf = NULL;
	int fd = openat(iw->stage_fd, stage, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t got;

	free(stage);
	if (fd < 0 || row->size > IW_MAX_DEAD_COPY) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = xmalloc(row->size ? row->size : 1);
	while (len < row->size && (got = pread(fd, buf + len, row->size - len, (off_t)len)) > 0)
		len += (size_t)got;
	close(fd);
	*ret_len = len;
	return buf;
}

static int write_dead_letter(struct instwrite *iw, const struct iw_row *row, const char *reason)
{
	char *dir = outcome_dir(iw, row, "failed");
	struct receipt_bytes bytes = { NULL, NULL, 0 };
	char *doc, *why = NULL;
	size_t len = 0;
	int r;

	if (strcmp(row->op, "delete") != 0) {
		bytes.data = read_stage(iw, row, &len);
		bytes.len = len;
		if (!bytes.data)
			why = xasprintf("%s (the bytes are kept in %s/%lld)", reason, iw->stage_dir,
					(long long)row->id);
	}
	doc = render(row, why ? why : reason);
	r = receipt_dead_letter(dir, row->name, &bytes, doc, true, NULL);
	free(why);
	free((void *)bytes.data);
	free(doc);
	free(dir);
	return r;
}

static void finish(struct instwrite *iw, struct iw_row *row, const char *reason)
{
	int r = reason ? write_dead_letter(iw, row, reason) : write_receipt(iw, row);

	if (r < 0)
		log_errno(r, "instance writes: cannot write the outcome of \"%s\"", row->name);
	set_state(row, reason ? IW_FAILED : IW_DONE);
	/* bytes too large to copy into failed/ stay until the item is forgotten */
	if (save_row(iw, row, 0, reason) == 0 && !(reason && row->size > IW_MAX_DEAD_COPY))
		iw_stage_unlink(iw, row->id);
	if (reason)
		log_warn("instance writes: %s of \"%s/%s\" in %s/%s refused: %s", row->op, row->type,
			 row->name, row->party, row->guid, reason);
	else
		log_info("instance writes: %s of \"%s/%s\" in %s/%s done", row->op, row->type,
			 row->name, row->party, row->guid);
	pthread_mutex_lock(&iw->inval_lock);
	if (iw->invalidate && !iw->inval_off)
		iw->invalidate(iw->invalidate_ctx, row->org, row->app, row->party, row->guid);
	pthread_mutex_unlock(&iw->inval_lock);
}

/* Runs one due item to its next wait or its end. */
static void run_row(struct instwrite *iw, struct iw_row *row)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	int r;

	if (row->state == IW_SENDING && strcmp(row->op, "post") == 0) {
		r = find_posted(iw, row, &ans);
		if (r == 1) {
			finish(iw, row, NULL);
			goto out;
		}
		if (r < 0)
			goto later;
	}
	set_state(row, IW_SENDING);
	row->attempt_at = iw_now_ms();
	if (save_row(iw, row, 0, NULL) < 0) {
		ans.outcome = APP_LATER;
		snprintf(ans.summary, sizeof(ans.summary), "cannot save the journal");
		goto later;
	}
	r = send_row(iw, row, &ans);
	if (r == 0) {
		finish(iw, row, NULL);
		goto out;
	}
	if (ans.outcome == APP_REFUSED) {
		finish(iw, row, ans.summary);
		goto out;
	}
later:
	/* tried long enough: given up, as the outbox does after outbox_give_up */
	if (iw_now_ms() - row->received_at > (int64_t)iw->cfg->instance_writes_give_up * 1000) {
		char *why = xasprintf("given up after %d s (instance_writes_give_up)%s: %s",
				      iw->cfg->instance_writes_give_up,
				      ans.outcome == APP_UNKNOWN ? "; the last attempt may have "
				      "reached the platform" : "", ans.summary);

		finish(iw, row, why);
		free(why);
		goto out;
	}
	/* not done, or maybe done: `sending` stays for a lost answer */
	if (ans.outcome != APP_UNKNOWN)
		set_state(row, IW_PENDING);
	log_warn("instance writes: %s of \"%s\" will be tried again: %s", row->op, row->name,
		 ans.summary);
	row->attempts++;
	save_row(iw, row,
		 queue_now_ms(iw->q) + retry_backoff_ms(row->attempts, IW_MAX_BACKOFF_MS,
							ans.retry_after_ms),
		 ans.summary);
out:
	app_answer_clear(&ans);
}

int iw_work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct instwrite *iw = ctx;
	struct iw_row row = { 0 };
	int r;

	pthread_mutex_lock(&iw->lock);
	r = next_due(iw, &row, ret_wait_ms);
	pthread_mutex_unlock(&iw->lock);
	if (r != 1)
		return r;
	run_row(iw, &row);
	iw_row_clear(&row);
	return 1;
}

int instwrite_start(struct instwrite *iw)
{
	return worker_start(&iw->worker);
}

void instwrite_stop(struct instwrite *iw)
{
	if (!iw)
		return;
	worker_stop(&iw->worker);
	/* waits for an invalidation under way: the session goes next */
	pthread_mutex_lock(&iw->inval_lock);
	iw->inval_off = true;
	pthread_mutex_unlock(&iw->inval_lock);
}

void instwrite_free(struct instwrite *iw)
{
	if (!iw)
		return;
	instwrite_stop(iw);
	worker_destroy(&iw->worker);
	while (iw->metas) {
		struct iw_meta *m = iw->metas;

		iw->metas = m->next;
		alt_app_free(m->meta);
		free(m->org);
		free(m->app);
		free(m);
	}
	queue_close(iw->q);
	journal_free(iw->j);
	if (iw->stage_fd >= 0)
		close(iw->stage_fd);
	pthread_mutex_destroy(&iw->meta_lock);
	pthread_mutex_destroy(&iw->inval_lock);
	pthread_mutex_destroy(&iw->lock);
	free(iw->held_open);
	free(iw->stage_dir);
	free(iw->mountpoint);
	free(iw);
}
