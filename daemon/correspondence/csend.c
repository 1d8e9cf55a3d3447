/* csend.c - sending one message folder, a recipient at a time (the
 * states are drawn in corr_i.h).
 *
 * The folder is read and checked whole before anything goes to the
 * platform: a message the platform would refuse (no title, a recipient
 * with a wrong check digit, an unknown meta.json field) goes to failed/
 * with the field named, and nothing is sent. Then each recipient gets
 * one initialize under its own idempotentKey, a GUID derived from the
 * item's seed and the recipient, and its result (id and status, or the
 * platform's refusal) is saved before the next. A lost answer, a 5xx or
 * a crash asks again with the same key: a 409 says the platform made
 * it, and the list by idempotentKey names it. So no recipient ever
 * gets two. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_corr.h"
#include "caps.h"
#include "config.h"
#include "corr_i.h"
#include "log.h"
#include "receipt.h"
#include "sha256.h"
#include "xalloc.h"

/* how soon, and how often at most, a sent message's correspondences are
 * looked at until they are published, and for how long */
#define FOLLOW_MS 500
#define FOLLOW_MAX_MS 30000
#define FOLLOW_FOR_MS (3600 * 1000)

static void message_clear(struct message *m)
{
	free(m->markdown);
	free(m->meta);
	free(m->recipients_text);
	for (size_t i = 0; m->recipients && m->recipients[i]; i++)
		free(m->recipients[i]);
	free(m->recipients);
	for (size_t i = 0; m->attachments && m->attachments[i]; i++)
		free(m->attachments[i]);
	free(m->attachments);
	free(m->prepared);
	memset(m, 0, sizeof(*m));
}

static char *disk_dir(struct corr *c, const struct queue_item *it)
{
	return xasprintf("%s/correspondence/%s/outbox/%s", c->cfg->state_dir,
			 it->f[CF_RESOURCE], it->f[CF_NAME]);
}

static char *mount_path(struct corr *c, const struct queue_item *it, const char *area,
			const char *name)
{
	return xasprintf("%s/correspondence/%s/%s%s%s", c->mountpoint, it->f[CF_RESOURCE], area,
			 name ? "/" : "", name ? name : "");
}

/* dirfd/name whole, at most max bytes: 0, -ENOENT, -EFBIG or -errno */
static int read_small(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t n = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		int r = S_ISREG(st.st_mode) ? -EFBIG : -EISDIR;

		close(fd);
		return r;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);

		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

static int refuse(char *err, size_t errlen, const char *what, int r)
{
	snprintf(err, errlen, "%s", what);
	return r;
}

/* recipients: one a line, blank lines skipped, each checked */
static int parse_recipients(struct message *m, char *err, size_t errlen)
{
	char *save = NULL, *copy = xstrdup(m->recipients_text);
	size_t n = 0, line = 0;
	int r = 0;

	m->recipients = xcalloc(ALT_CORR_MAX_RECIPIENTS + 1, sizeof(char *));
	for (char *p = copy, *l; r == 0 && (l = strtok_r(p, "\n", &save)); p = NULL) {
		char *e = l + strlen(l);

		line++;
		while (*l == ' ' || *l == '\t')
			l++;
		while (e > l && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (!*l)
			continue;
		if (!corr_recipient_ok(l)) {
			snprintf(err, errlen,
				 "recipients: line %zu: \"%.40s\" is not a 9-digit organisation "
				 "number or an 11-digit person number with valid check digits",
				 line, l);
			r = -EINVAL;
		} else if (n == ALT_CORR_MAX_RECIPIENTS) {
			snprintf(err, errlen, "recipients: more than %d", ALT_CORR_MAX_RECIPIENTS);
			r = -EINVAL;
		} else {
			for (size_t i = 0; i < n && r == 0; i++)
				if (strcmp(m->recipients[i], l) == 0) {
					snprintf(err, errlen, "recipients: line %zu: %s is listed twice",
						 line, l);
					r = -EINVAL;
				}
			if (r == 0)
				m->recipients[n++] = xstrdup(l);
		}
	}
	if (r == 0 && n == 0)
		r = refuse(err, errlen, "recipients: no recipient", -EINVAL);
	free(copy);
	return r;
}

/* The folder read and checked: 0, -EINVAL (err says why), -ENOENT (gone)
 * or another -errno. */
static int read_message(struct corr *c, const struct queue_item *it, struct message *m,
			char *err, size_t errlen)
{
	char *dir = disk_dir(c, it);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	size_t len;
	int r;

	free(dir);
	memset(m, 0, sizeof(*m));
	if (dfd < 0)
		return -errno;
	r = read_small(dfd, "message.md", ALT_CORR_MAX_MARKDOWN, &m->markdown, &m->markdown_len);
	if (r == -ENOENT)
		r = refuse(err, errlen, "messageTitle: no message.md in the folder", -EINVAL);
	else if (r < 0)
		snprintf(err, errlen, "message.md: %s", strerror(-r)), r = -EINVAL;
	if (r == 0) {
		r = read_small(dfd, "recipients", 1u << 20, &m->recipients_text, &len);
		if (r == -ENOENT)
			r = refuse(err, errlen, "recipients: no recipients file in the folder",
				   -EINVAL);
		else if (r < 0)
			snprintf(err, errlen, "recipients: %s", strerror(-r)), r = -EINVAL;
	}
	if (r == 0) {
		r = read_small(dfd, "meta.json", ALT_CORR_MAX_META, &m->meta, &m->meta_len);
		if (r == -ENOENT)
			r = 0;
		else if (r < 0)
			snprintf(err, errlen, "meta.json: %s", strerror(-r)), r = -EINVAL;
	}
	if (r == 0)
		r = cr_list_attachments(dfd, m, err, errlen);
	close(dfd);
	if (r == 0)
		r = corr_prepare(&(struct corr_message){ .resource = it->f[CF_RESOURCE],
							 .name = it->f[CF_NAME],
							 .markdown = m->markdown,
							 .markdown_len = m->markdown_len,
							 .meta = m->meta, .meta_len = m->meta_len },
				 &m->prepared, err, errlen);
	if (r == 0)
		r = parse_recipients(m, err, errlen);
	if (r < 0)
		message_clear(m);
	return r;
}

void cr_save(struct corr *c, struct queue_item *it)
{
	int r = queue_save(c->q, it);

	if (r < 0)
		log_errno(r, "correspondence: cannot save \"%s\"", it->key);
}

/* The folder, removed through the mount (so watchers see it go). */
static int remove_tree(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? (unlinkat(at, name, 0) < 0 ? -errno : 0) : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && r == 0)
			r = remove_tree(dirfd(d), de->d_name);
	closedir(d);
	if (r == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

/* The end of a message: the folder and why in failed/. */
void cr_fail(struct corr *c, struct queue_item *it, const char *why)
{
	char *doc = corr_receipt_doc(it->f[CF_RESOURCE], it->f[CF_NAME], it->f[CF_RESULTS], why,
				     (long long)it->created_at);
	char *mdir = mount_path(c, it, "failed", NULL);
	char *from = mount_path(c, it, "outbox", it->f[CF_NAME]);
	char *disk = disk_dir(c, it);
	struct receipt_bytes bytes = { NULL, NULL, 0 };
	int r;

	if (access(disk, F_OK) == 0)
		bytes.move_from = from;
	r = receipt_dead_letter(mdir, it->f[CF_NAME], &bytes, doc, true, NULL);
	if (r < 0) {
		queue_retry(c->q, it, "cannot write the dead letter", -1);
		cr_save(c, it);
	} else {
		it->state = CR_FAILED;
		it->done_at = queue_now_ms(c->q);
		queue_set(&it->last_error, why);
		cr_save(c, it);
		log_error("correspondence: \"%s\" failed: %s", it->key, why);
	}
	free(doc);
	free(mdir);
	free(from);
	free(disk);
}

/* Every recipient answered: the receipt in sent/, the folder gone. */
static void sent(struct corr *c, struct queue_item *it)
{
	char *doc = corr_receipt_doc(it->f[CF_RESOURCE], it->f[CF_NAME], it->f[CF_RESULTS], NULL,
				     (long long)it->created_at);
	char *mdir = mount_path(c, it, "sent", NULL);
	char *odir = mount_path(c, it, "outbox", NULL);
	char *name = xasprintf("%s.json", it->f[CF_NAME]);
	int r = receipt_write(mdir, name, doc, false, NULL), ofd;

	if (r == 0) {
		ofd = open(odir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = ofd < 0 ? -errno : remove_tree(ofd, it->f[CF_NAME]);
		if (ofd >= 0)
			close(ofd);
		if (r == -ENOENT)
			r = 0;
	}
	if (r < 0) {
		log_errno(r, "correspondence: cannot finish \"%s\"", it->key);
		queue_retry(c->q, it, "cannot write the receipt", -1);
		cr_save(c, it);
	} else {
		it->state = CR_FOLLOWING;
		it->tries = 0;
		it->due_at = queue_now_ms(c->q) + FOLLOW_MS;
		queue_set(&it->last_error, NULL);
		cr_save(c, it);
		log_info("correspondence: \"%s\" sent", it->key);
	}
	free(doc);
	free(mdir);
	free(odir);
	free(name);
}

/* following: each correspondence's status until it is past publication;
 * the receipt rewritten when one changed. Publication is the platform's
 * background job (seconds); after FOLLOW_FOR_MS the receipt stays as it
 * is. */
static void step_follow(struct corr *c, struct queue_item *it)
{
	char **rcp = NULL, **ids = NULL;
	bool changed = false;
	int64_t now = queue_now_ms(c->q), wait;

	corr_result_unsettled(it->f[CF_RESULTS], &rcp, &ids);
	for (size_t i = 0; rcp[i]; i++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		char *status = NULL, *results;

		if (corr_status(c->a, ids[i], &status, &ans) == 0 && status &&
		    strcmp(status, "Initialized") != 0) {
			results = corr_result_add(it->f[CF_RESULTS], rcp[i], ids[i], status, NULL,
						  0);
			queue_set(&it->f[CF_RESULTS], results);
			free(results);
			changed = true;
		}
		app_answer_clear(&ans);
		free(status);
	}
	for (size_t i = 0; rcp[i]; i++) {
		free(rcp[i]);
		free(ids[i]);
	}
	free(rcp);
	free(ids);
	if (changed) {
		char *doc = corr_receipt_doc(it->f[CF_RESOURCE], it->f[CF_NAME],
					     it->f[CF_RESULTS], NULL, (long long)it->created_at);
		char *mdir = mount_path(c, it, "sent", NULL);
		char *name = xasprintf("%s.json", it->f[CF_NAME]);

		receipt_write(mdir, name, doc, false, NULL);
		free(doc);
		free(mdir);
		free(name);
	}
	corr_result_unsettled(it->f[CF_RESULTS], &rcp, &ids);
	if (!rcp[0] || now - it->created_at > FOLLOW_FOR_MS) {
		it->state = CR_SENT;
		it->done_at = now;
	} else {
		wait = FOLLOW_MS << (it->tries < 6 ? it->tries : 6);
		it->tries++;
		it->due_at = now + (wait < FOLLOW_MAX_MS ? wait : FOLLOW_MAX_MS);
	}
	for (size_t i = 0; rcp[i]; i++) {
		free(rcp[i]);
		free(ids[i]);
	}
	free(rcp);
	free(ids);
	cr_save(c, it);
}

/* A step that failed in a way that may pass: later, or given up. */
void cr_later(struct corr *c, struct queue_item *it, const struct app_answer *ans)
{
	if (queue_given_up(c->q, it, CORR_GIVE_UP_MS)) {
		char *why = xasprintf("given up after 3 days: %s", ans->summary);

		cr_fail(c, it, why);
		free(why);
		return;
	}
	queue_retry(c->q, it, ans->summary, ans->retry_after_ms);
	cr_save(c, it);
	log_warn("correspondence: \"%s\": %s; again later", it->key, ans->summary);
}

/* The idempotentKey of one recipient: a GUID (version 5 form) of the
 * SHA-256 of the item's seed and the recipient. */
static void key_of(const char *seed, const char *recipient, char out[37])
{
	struct sha256 *s = sha256_new();
	char hex[65];

	sha256_update(s, seed, strlen(seed));
	sha256_update(s, "/", 1);
	sha256_update(s, recipient, strlen(recipient));
	sha256_finish(s, hex);
	hex[12] = '5';
	hex[16] = "89ab"[(hex[16] >= 'a' ? hex[16] - 'a' + 10 : hex[16] - '0') & 3];
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}

static char *urn_of(const char *recipient)
{
	return strlen(recipient) == 9
		       ? xasprintf("urn:altinn:organization:identifier-no:%s", recipient)
		       : xasprintf("urn:altinn:person:identifier-no:%s", recipient);
}

static void record(struct queue_item *it, const char *recipient, const char *id,
		   const char *status, const char *error, long http_status)
{
	char *results = corr_result_add(it->f[CF_RESULTS], recipient, id, status, error,
					http_status);

	queue_set(&it->f[CF_RESULTS], results);
	free(results);
}

/* One recipient: 0 when its result is recorded, -EAGAIN when it must
 * wait (the item is then saved for later), -ECANCELED when stopping. */
static int send_one(struct corr *c, struct queue_item *it, const struct message *m,
		    const char *const *attachments, const char *recipient)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char key[37], *urn = urn_of(recipient), *id = NULL, *status = NULL;
	int r;

	key_of(it->f[CF_SEED], recipient, key);
	r = corr_initialize(c->a, m->prepared, urn, key, attachments, &id, &status, &ans);
	if (r < 0 && ans.status == 409) { /* made before: its answer was lost */
		app_answer_clear(&ans);
		ans = (struct app_answer){ .retry_after_ms = -1 };
		r = corr_find_by_key(c->a, it->f[CF_RESOURCE], key, &id, &ans);
		if (r == 0) {
			log_info("correspondence: \"%s\" to %s was made as %s (found by key)",
				 it->key, recipient, id);
			if (corr_status(c->a, id, &status, &ans) < 0)
				status = NULL;
		} else if (r == -ENOENT) {
			snprintf(ans.summary, sizeof(ans.summary),
				 "initialize: 409, but no correspondence has key %s", key);
		}
	} else if (r < 0 && ans.outcome == APP_REFUSED) {
		record(it, recipient, NULL, NULL, ans.summary, ans.status);
		r = 0;
		goto out;
	}
	if (r == 0 && id) {
		record(it, recipient, id, status ? status : "Initialized", NULL, 0);
		goto out;
	}
	if (r == -ECANCELED)
		goto out;
	cr_later(c, it, &ans);
	r = -EAGAIN;
out:
	app_answer_clear(&ans);
	free(urn);
	free(id);
	free(status);
	return r;
}

static void step_send(struct corr *c, struct queue_item *it)
{
	struct message m;
	char err[512];
	size_t ok, failed;
	char **ids = NULL;
	int r = read_message(c, it, &m, err, sizeof(err));

	if (r < 0) { /* it was checked on the way in: only a lost folder lands here */
		cr_fail(c, it, r == -EINVAL ? err : strerror(-r));
		return;
	}
	if (cr_attachments_ready(c, it, &m, &ids) < 0)
		goto out;
	for (size_t i = 0; m.recipients[i]; i++) {
		if (corr_result_has(it->f[CF_RESULTS], m.recipients[i]))
			continue;
		if (worker_stopping(&c->worker))
			goto out;
		r = send_one(c, it, &m, (const char *const *)ids, m.recipients[i]);
		if (r < 0)
			goto out;
		it->tries = 0;
		cr_save(c, it);
	}
	corr_result_count(it->f[CF_RESULTS], &ok, &failed);
	if (ok == 0)
		cr_fail(c, it, "the platform refused every recipient");
	else
		sent(c, it);
out:
	for (size_t i = 0; ids && ids[i]; i++)
		free(ids[i]);
	free(ids);
	message_clear(&m);
}

int cr_work_one(void *ctx, int64_t *ret_wait_ms)
{
	struct corr *c = ctx;
	struct queue_item it;
	struct message m;
	char err[512];
	int r = queue_next_due(c->q, CR_LIVE | QUEUE_STATE(CR_FOLLOWING), NULL, NULL, &it,
			       ret_wait_ms);

	if (r != 1)
		return r;
	if (worker_stopping(&c->worker)) {
		queue_item_clear(&it);
		return 1;
	}
	if (it.state == CR_RECEIVED) {
		pthread_mutex_lock(&c->lock);
		/* from here on the user's changes to the folder are EBUSY */
		r = read_message(c, &it, &m, err, sizeof(err));
		if (r == 0) {
			it.state = CR_SENDING;
			cr_save(c, &it);
			message_clear(&m);
		}
		pthread_mutex_unlock(&c->lock);
		if (r == -ENOENT) {
			queue_delete(c->q, it.id); /* moved away before it was read */
		} else if (r < 0) {
			cr_fail(c, &it, r == -EINVAL ? err : strerror(-r));
			log_warn("correspondence: \"%s\" refused before sending: %s", it.key,
				 it.last_error ? it.last_error : "");
		}
		if (r < 0) {
			queue_item_clear(&it);
			return 1;
		}
	}
	if (it.state == CR_SENDING)
		step_send(c, &it);
	else if (it.state == CR_FOLLOWING)
		step_follow(c, &it);
	queue_item_clear(&it);
	return 1;
}
