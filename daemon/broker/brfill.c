/* brfill.c - the bytes of an inbox entry, fetched when it is read.
 *
 * An entry of broker/<resourceId>/inbox/ is shown with its size and no
 * bytes, since a download changes our status on the platform
 * (DownloadStarted). When a user opens the file for reading (the area's
 * fill hook, in the FUSE thread of that open), the open is handed a
 * reader of the transfer through the content cache (keyed by its id):
 * the read streams as the download proceeds, many readers share one
 * download, a reader that stops early stops it, and the MD5 of Broker's
 * checksum is checked before the last byte is served; later opens read
 * the cache's copy. Where the cache cannot take it (off, or full) the
 * transfer is downloaded whole into a dot-file beside the file instead,
 * streamed to disk, its size and MD5 checked against the overview's, and
 * renamed over the empty file; the journal then says it is fetched and
 * later opens read the disk. One such download at a time: a second
 * reader of the same file waits for the first one's and finds it
 * fetched. A failed download fails the open (or, streamed, the read)
 * with its errno and leaves the entry as it was, to be tried again at
 * the next open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api_brecv.h"
#include "brecv_i.h"
#include "log.h"
#include "xalloc.h"

/* Downloads the transfer into its folder beside the empty file, checks
 * it, and puts it in place. */
static int fetch(struct brecv *rx, const struct local_call *c, struct queue_item *it)
{
	char *tmp = xasprintf("%s/%s", it->f[RF_ID], FILL_NAME), md5[33] = "";
	struct app_answer ans = { .retry_after_ms = -1 };
	uint64_t n = 0, size = strtoull(it->f[RF_SIZE] ? it->f[RF_SIZE] : "0", NULL, 10);
	int fd = openat(c->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r;

	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	r = brecv_download(rx->a, it->f[RF_ID], fd, false, md5, &n, &ans);
	if (r < 0) {
		log_warn("broker: reading transfer %s: %s", it->f[RF_ID], ans.summary);
	} else if (n != size || (it->f[RF_CHECKSUM] && strcasecmp(md5, it->f[RF_CHECKSUM]))) {
		log_warn("broker: transfer %s came as %llu bytes with MD5 %s; Broker said %llu and "
			 "%s", it->f[RF_ID], (unsigned long long)n, md5, (unsigned long long)size,
			 it->f[RF_CHECKSUM]);
		r = -EIO;
	}
	close(fd);
	if (r == 0 && renameat(c->dirfd, tmp, c->dirfd, c->rel) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(c->dirfd, tmp, 0);
	} else {
		queue_set(&it->f[RF_FETCHED], "1");
		r = queue_save(rx->q, it);
	}
	app_answer_clear(&ans);
	free(tmp);
	return r;
}

/* Hands the open a reader of the transfer through the content cache, so
 * it reads the bytes as they arrive: 0, or -ENOSPC when the cache cannot
 * take it (off, full, an empty file) and the file is fetched whole. */
static int stream(struct brecv *rx, const struct local_call *c, struct queue_item *it)
{
	uint64_t size = strtoull(it->f[RF_SIZE] ? it->f[RF_SIZE] : "0", NULL, 10);
	int r;

	if (!c->reader)
		return -ENOSPC;
	r = brecv_reader_open(rx->a, it->f[RF_ID], size, it->f[RF_CHECKSUM], c->reader);
	if (r == 0 && !it->f[RF_PROBED]) {
		/* its download has begun (or came before): rm confirms without
		 * a probe, and should Broker say otherwise (error 19), the
		 * confirmation probes after all */
		queue_set(&it->f[RF_PROBED], "1");
		queue_save(rx->q, it);
	}
	return r;
}

int brecv_fill(struct brecv *rx, const struct local_call *c)
{
	char id[256], *key;
	struct queue_item it = { 0 };
	int r;

	if (brecv_split(c->rel, id, sizeof(id)) != 2 || id[0] == '.' ||
	    strcmp(strchr(c->rel, '/') + 1, "transfer.json") == 0)
		return 0;
	key = brecv_key(c->scope, id);
	pthread_mutex_lock(&rx->fill_lock);
	r = queue_find(rx->q, key, RX_LIVE, &it);
	if (r == 0 && !it.f[RF_FETCHED] && it.f[RF_NAME] &&
	    strcmp(strchr(c->rel, '/') + 1, it.f[RF_NAME]) == 0) {
		r = stream(rx, c, &it);
		if (r == -ENOSPC)
			r = fetch(rx, c, &it);
	} else if (r == -ENOENT) {
		r = 0;
	}
	queue_item_clear(&it);
	pthread_mutex_unlock(&rx->fill_lock);
	free(key);
	return r;
}
