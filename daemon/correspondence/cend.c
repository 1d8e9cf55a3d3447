/* cend.c - how a message ends, and its receipt after: the item saved,
 * the dead letter in failed/ (the folder moved there, beside
 * <name>.error.json), the receipt in sent/ with the folder removed from
 * outbox/ (the receipt first, so a crash between leaves the receipt and
 * a folder that the next try removes), and a try again later. Shared
 * by csend.c (recipients) and cattach.c (attachments), so neither needs
 * the other's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_corr.h"
#include "config.h"
#include "corr_i.h"
#include "log.h"
#include "receipt.h"
#include "xalloc.h"

/* how soon a sent message's correspondences are first looked at */
#define FOLLOW_MS 500

char *cr_disk_dir(struct corr *c, const struct queue_item *it)
{
	return xasprintf("%s/correspondence/%s/outbox/%s", c->cfg->state_dir,
			 it->f[CF_RESOURCE], it->f[CF_NAME]);
}

char *cr_mount_path(struct corr *c, const struct queue_item *it, const char *area,
			const char *name)
{
	return xasprintf("%s/correspondence/%s/%s%s%s", c->mountpoint, it->f[CF_RESOURCE], area,
			 name ? "/" : "", name ? name : "");
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
	char *mdir = cr_mount_path(c, it, "failed", NULL);
	char *from = cr_mount_path(c, it, "outbox", it->f[CF_NAME]);
	char *disk = cr_disk_dir(c, it);
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
void cr_sent(struct corr *c, struct queue_item *it)
{
	char *doc = corr_receipt_doc(it->f[CF_RESOURCE], it->f[CF_NAME], it->f[CF_RESULTS], NULL,
				     (long long)it->created_at);
	char *mdir = cr_mount_path(c, it, "sent", NULL);
	char *odir = cr_mount_path(c, it, "outbox", NULL);
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

void cr_rewrite_receipt(struct corr *c, const struct queue_item *it)
{
	char *doc = corr_receipt_doc(it->f[CF_RESOURCE], it->f[CF_NAME], it->f[CF_RESULTS], NULL,
				     (long long)it->created_at);
	char *mdir = cr_mount_path(c, it, "sent", NULL);
	char *name = xasprintf("%s.json", it->f[CF_NAME]);

	receipt_write(mdir, name, doc, false, NULL);
	free(doc);
	free(mdir);
	free(name);
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

