/* brshow.c - an inbox entry shown, and removed: what the searches
 * (brecv.c), Broker's events (brevents.c) and the first read (brfill.c)
 * share.
 *
 * A transfer is shown as inbox/<fileTransferId>/ made whole under a
 * dot-name and renamed into place (a watcher of inbox/ sees one
 * IN_MOVED_TO): transfer.json, the overview as Broker gave it, and the
 * file under its safe name with the transfer's size and no bytes (a
 * sparse file: nothing is downloaded to show it). Only then is it
 * journaled; a crash in between shows it again from the folder already
 * made. Everything here runs in the worker thread and goes through the
 * mount, so watchers see it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_brecv.h"
#include "brecv_i.h"
#include "log.h"
#include "mountio.h"
#include "xalloc.h"

#define NEW_NAME ".altinnfs-new"

char *brecv_key(const char *resource, const char *id)
{
	return xasprintf("%s/%s", resource, id);
}

static char *entry_dir(struct brecv *rx, const char *resource, const char *id)
{
	return xasprintf("%s/broker/%s/inbox/%s", rx->mountpoint, resource, id);
}

/* The name a platform's fileName gets: the app data rules (control
 * characters, '/', bad UTF-8), and never hidden, empty or transfer.json. */
static char *local_name(void *ctx, const char *file_name)
{
	struct brecv *rx = ctx;
	char *s = rx->safe_name(file_name, 255), *t;

	if (!*s) {
		free(s);
		return xstrdup("file");
	}
	if (s[0] == '.')
		s[0] = '_';
	if (strcmp(s, "transfer.json") == 0) {
		t = xasprintf("_%s", s);
		free(s);
		s = t;
	}
	return s;
}

/* ---- removing what the mount shows (worker thread: through the mount) */

void brecv_remove_entry(struct brecv *rx, const struct queue_item *it)
{
	char *dir = entry_dir(rx, it->f[RF_RESOURCE], it->f[RF_ID]);
	const char *names[] = { "transfer.json", it->f[RF_NAME], FILL_NAME, NEW_NAME };

	brecv_forget_bytes(rx->a, it->f[RF_ID]); /* its bytes go with its folder */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p;

		if (!names[i])
			continue;
		p = xasprintf("%s/%s", dir, names[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn("broker: cannot remove \"%s\": %s", p, strerror(errno));
		free(p);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("broker: cannot remove \"%s\": %s", dir, strerror(errno));
	free(dir);
}

/* ---- showing a transfer: its folder made whole under a dot-name, then
 * renamed into place, so a watcher of inbox/ sees it appear complete */

static int make_placeholder(const char *dir, const char *name, uint64_t size)
{
	char *tmp = xasprintf("%s/%s", dir, NEW_NAME), *path = xasprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r = 0;

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		r = -errno;
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	free(tmp);
	free(path);
	return r;
}

static int materialize(struct brecv *rx, const char *resource, const char *id,
		       const struct brecv_overview *ov, const char *name)
{
	char *stage = xasprintf("%s/broker/%s/inbox/.new-%s", rx->mountpoint, resource, id);
	char *dir = entry_dir(rx, resource, id);
	struct stat st;
	int r = 0;

	if (stat(dir, &st) == 0) /* made before a crash, before it was journaled */
		goto out;
	if (mkdir(stage, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0)
		r = mountio_write(stage, "transfer.json", ov->doc, ov->doc_len, false, NULL);
	if (r == 0)
		r = make_placeholder(stage, name, ov->size);
	if (r == 0 && rename(stage, dir) < 0)
		r = -errno;
out:
	if (r < 0)
		log_errno(r, "broker: cannot show transfer %s in inbox/", id);
	free(stage);
	free(dir);
	return r;
}

/* One transfer a search named that the journal does not know: its
 * overview, then its folder, then its item. 0, or -errno (stop the round
 * on a 429). */
int brecv_show(struct brecv *rx, const char *resource, const char *id, long *ret_wait)
{
	struct brecv_overview ov;
	struct app_answer ans = { .retry_after_ms = -1 };
	struct queue_item it = { .state = RX_SHOWN };
	char size[32], *name = NULL;
	int r = brecv_overview(rx->a, id, rx->me, local_name, rx, &ov, &ans);

	if (r < 0) {
		bool limited = ans.status == 429;

		if (limited)
			*ret_wait = ans.retry_after_ms > 0 ? ans.retry_after_ms : 60000;
		log_warn("broker: transfer %s: %s", id, ans.summary);
		app_answer_clear(&ans);
		return limited ? -EAGAIN : 0;
	}
	if (!ov.status || strcmp(ov.status, "Published") != 0 || !ov.my_status ||
	    strcmp(ov.my_status, "DownloadConfirmed") == 0)
		goto out;
	name = local_name(rx, ov.file_name);
	r = materialize(rx, resource, id, &ov, name);
	if (r < 0)
		goto out;
	it.key = brecv_key(resource, id);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)ov.size);
	queue_set(&it.f[RF_RESOURCE], resource);
	queue_set(&it.f[RF_ID], id);
	queue_set(&it.f[RF_NAME], name);
	queue_set(&it.f[RF_SIZE], size);
	queue_set(&it.f[RF_CHECKSUM], ov.checksum);
	queue_set(&it.f[RF_SENDER], ov.sender);
	if (strcmp(ov.my_status, "DownloadStarted") == 0)
		queue_set(&it.f[RF_PROBED], "1");
	r = queue_replace(rx->q, &it, QUEUE_STATE(RX_GONE));
	if (r == 0)
		log_info("broker: transfer %s from %s is in inbox/ as \"%s\"", id,
			 ov.sender ? ov.sender : "?", name);
	queue_item_clear(&it);
out:
	free(name);
	brecv_overview_clear(&ov);
	app_answer_clear(&ans);
	return 0;
}

bool brecv_known(struct brecv *rx, const char *resource, const char *id)
{
	char *key = brecv_key(resource, id);
	struct queue_item it;
	bool known = queue_find(rx->q, key, QUEUE_ALL_STATES & ~QUEUE_STATE(RX_GONE), &it) == 0;

	if (known)
		queue_item_clear(&it);
	free(key);
	return known;
}

/* rel "<id>[/<name>]": its depth and id */
int brecv_split(const char *rel, char *id, size_t cap)
{
	const char *slash = strchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : strlen(rel);

	snprintf(id, cap, "%.*s", (int)n, rel);
	return !*rel ? 0 : slash ? (strchr(slash + 1, '/') ? 3 : 2) : 1;
}
