/* cattach.c - a message's attachments: the files of its attachments/
 * folder, each made on the platform (POST /attachment, with the file's
 * MD5), uploaded (streamed from the file), and waited for until the
 * platform's scan has Published it; only then are the correspondences
 * initialized, with the ids as existingAttachments. Each attachment is
 * uploaded once however many recipients the message has.
 *
 * Progress is kept in the item's CF_ATTACHMENTS field, one line per
 * file, "name TAB id TAB state" (created, uploading, uploaded,
 * published), saved after each step, so a crash resumes where it was.
 * An upload is marked begun before its request: after a crash in it the
 * status says whether the bytes arrived (Initialized: send them again),
 * so a file the platform took is never sent twice. An upload whose
 * answer was lost, or which the platform refuses because it began
 * before, is settled by the attachment's status, not by a second
 * upload (the platform takes one upload per attachment). A create whose
 * answer was lost is made again: the first, never linked to a
 * correspondence, is left unused (Attachment has no idempotency key). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_corr.h"
#include "config.h"
#include "corr_i.h"
#include "log.h"
#include "sha256.h"
#include "xalloc.h"

/* attachments per message: each is a request and a scan before any
 * correspondence is made (Correspondence itself sets no number) */
#define MAX_ATTACHMENTS 100
/* how soon an attachment being scanned is looked at again */
#define SCAN_WAIT_MS 300

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cr_list_attachments(int at, struct message *m, char *err, size_t errlen)
{
	int fd = openat(at, "attachments", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	size_t n = 0;
	int r = 0;

	m->attachments = xcalloc(MAX_ATTACHMENTS + 1, sizeof(char *));
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "attachments/%s: not a plain file", de->d_name);
			r = -EINVAL;
		} else if (st.st_size == 0) {
			snprintf(err, errlen, "attachments/%s: empty", de->d_name);
			r = -EINVAL;
		} else if (n == MAX_ATTACHMENTS) {
			snprintf(err, errlen, "attachments: more than %d files", MAX_ATTACHMENTS);
			r = -EINVAL;
		} else if (corr_attachment_name_ok(de->d_name, err, errlen) < 0) {
			r = -EINVAL;
		} else {
			m->attachments[n++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	qsort(m->attachments, n, sizeof(char *), by_name);
	return r;
}

/* One line of the progress: its id and state for name, or NULLs. */
struct progress {
	char *id, *state;
};

static void find(const char *text, const char *name, struct progress *p)
{
	size_t n = strlen(name);

	p->id = p->state = NULL;
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *t1, *t2, *end;

		if (strncmp(l, name, n) != 0 || l[n] != '\t')
			continue;
		t1 = l + n + 1;
		t2 = strchr(t1, '\t');
		end = strchr(t1, '\n');
		if (!t2 || (end && t2 > end))
			continue;
		if (!end)
			end = t2 + strlen(t2);
		p->id = xasprintf("%.*s", (int)(t2 - t1), t1);
		p->state = xasprintf("%.*s", (int)(end - t2 - 1), t2 + 1);
		return;
	}
}

/* name's line set to id and state (replacing its old one) */
static void set(struct queue_item *it, const char *name, const char *id, const char *state)
{
	const char *text = it->f[CF_ATTACHMENTS] ? it->f[CF_ATTACHMENTS] : "";
	size_t n = strlen(name), cap = strlen(text) + strlen(name) + strlen(id) + 32, len = 0;
	char *out = xmalloc(cap);

	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) + 1 : strlen(l);

		if (!(strncmp(l, name, n) == 0 && l[n] == '\t')) {
			memcpy(out + len, l, ll);
			len += ll;
		}
		l += ll;
	}
	len += (size_t)snprintf(out + len, cap - len, "%s\t%s\t%s\n", name, id, state);
	queue_set(&it->f[CF_ATTACHMENTS], out);
	free(out);
}

static char *file_path(struct corr *c, const struct queue_item *it, const char *name)
{
	return xasprintf("%s/correspondence/%s/outbox/%s/attachments/%s", c->cfg->state_dir,
			 it->f[CF_RESOURCE], it->f[CF_NAME], name);
}

static int create(struct corr *c, struct queue_item *it, const char *name)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *path = file_path(c, it, name), md5[33], *id = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;
	uint64_t size;

	free(path);
	if (fd < 0 || md5_fd(fd, md5, &size) < 0) {
		char *why = xasprintf("attachments/%s: cannot read it (%s)", name, strerror(errno));

		if (fd >= 0)
			close(fd);
		cr_fail(c, it, why);
		free(why);
		return -EAGAIN;
	}
	close(fd);
	r = corr_attachment_create(c->a, it->f[CF_RESOURCE], name, it->f[CF_NAME], md5, &id,
				   &ans);
	if (r == 0) {
		set(it, name, id, "created");
		cr_save(c, it);
		log_info("correspondence: \"%s\": attachment %s is %s", it->key, name, id);
	} else if (ans.outcome == APP_REFUSED) {
		char *why = xasprintf("attachments/%s: %s", name, ans.summary);

		cr_fail(c, it, why);
		free(why);
		r = -EAGAIN;
	} else if (r != -ECANCELED) {
		cr_later(c, it, &ans);
		r = -EAGAIN;
	}
	free(id);
	app_answer_clear(&ans);
	return r;
}

static int upload(struct corr *c, struct queue_item *it, const char *name, const char *id)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *path = file_path(c, it, name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;
	struct stat st;

	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		char *why = xasprintf("attachments/%s: cannot read it (%s)", name, strerror(errno));

		if (fd >= 0)
			close(fd);
		cr_fail(c, it, why);
		free(why);
		return -EAGAIN;
	}
	set(it, name, id, "uploading");
	cr_save(c, it);
	r = corr_attachment_upload(c->a, id, fd, (uint64_t)st.st_size, &ans);
	close(fd);
	if (r == -ECANCELED) {
		app_answer_clear(&ans);
		return r;
	}
	if (r == 0 || ans.outcome == APP_UNKNOWN || ans.outcome == APP_REFUSED) {
		/* sent, maybe sent, or refused because it began before: the
		 * attachment's status decides */
		if (r < 0)
			log_warn("correspondence: \"%s\": attachment %s: %s; its status decides",
				 it->key, name, ans.summary);
		set(it, name, id, "uploaded");
		cr_save(c, it);
		r = 0;
	} else {
		cr_later(c, it, &ans);
		r = -EAGAIN;
	}
	app_answer_clear(&ans);
	return r;
}

/* uploaded: Published, still scanning (-EAGAIN, due soon), or failed */
static int follow(struct corr *c, struct queue_item *it, const char *name, const char *id)
{
	struct app_answer ans = { .retry_after_ms = -1 };
	char *status = NULL, *text = NULL;
	int r = corr_attachment_status(c->a, id, &status, &text, &ans);

	if (r == -ECANCELED)
		goto out;
	if (r < 0) {
		cr_later(c, it, &ans);
		r = -EAGAIN;
	} else if (strcmp(status, "Published") == 0) {
		set(it, name, id, "published");
		cr_save(c, it);
	} else if (strcmp(status, "Initialized") == 0) {
		/* the bytes never arrived (a 5xx before the upload was
		 * taken): upload again */
		set(it, name, id, "created");
		it->due_at = 0;
		cr_save(c, it);
		r = -EAGAIN;
	} else if (strcmp(status, "UploadProcessing") == 0) {
		it->due_at = queue_now_ms(c->q) + SCAN_WAIT_MS;
		cr_save(c, it);
		r = -EAGAIN;
	} else {
		char *why = xasprintf("attachments/%s: %s: %s", name, status, text ? text : "");

		cr_fail(c, it, why);
		free(why);
		r = -EAGAIN;
	}
out:
	app_answer_clear(&ans);
	free(status);
	free(text);
	return r;
}

int cr_attachments_ready(struct corr *c, struct queue_item *it, const struct message *m,
			 char ***ret_ids)
{
	size_t n = 0;
	char **ids;
	int r = 0;

	while (m->attachments[n])
		n++;
	ids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *name = m->attachments[i];
		struct progress p;

		find(it->f[CF_ATTACHMENTS], name, &p);
		if (!p.id) {
			r = create(c, it, name);
			if (r == 0)
				find(it->f[CF_ATTACHMENTS], name, &p);
		}
		if (r == 0 && strcmp(p.state, "created") == 0)
			r = upload(c, it, name, p.id);
		else if (r == 0 && strcmp(p.state, "uploading") == 0)
			log_info("correspondence: \"%s\": attachment %s: an upload was under way "
				 "at a stop; its status decides", it->key, name);
		if (r == 0 && strcmp(p.state, "published") != 0)
			r = follow(c, it, name, p.id);
		if (r == 0)
			ids[i] = xstrdup(p.id);
		free(p.id);
		free(p.state);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		return r == -ECANCELED ? r : -EAGAIN;
	}
	*ret_ids = ids;
	return 0;
}
