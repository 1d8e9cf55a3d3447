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
	char *dir = cr_disk_dir(c, it);
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
		cr_sent(c, it);
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
	unsigned states = CR_LIVE | QUEUE_STATE(CR_FOLLOWING) |
			  (c->cfg->correspondence_events ? QUEUE_STATE(CR_CURSOR) : 0);
	struct corr_event *pushed;
	const char *resource;
	int r;

	if (cpush_take(c->push, &resource, &pushed)) {
		log_info("correspondence: pushed: %s about %s", pushed->type, pushed->instance);
		cr_apply_events(c, resource, pushed, 1);
		corr_events_free(pushed, 1);
		return 1;
	}
	r = queue_next_due(c->q, states, NULL, NULL, &it, ret_wait_ms);
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
		cr_follow(c, &it);
	else if (it.state == CR_CURSOR)
		cr_events(c, &it);
	queue_item_clear(&it);
	return 1;
}
