/* cache_fill.c - the download that fills a cache entry (docs/cache.md).
 *
 * One thread per entry being filled: one streaming GET, from the bytes
 * the entry has on (a Range where the server honours it, else from byte
 * 0, dropping what is here). It runs at most CACHE_AHEAD past the
 * furthest byte a reader asked for (TCP flow control holds the server
 * back meanwhile), ends CACHE_PAUSE_S after readers stopped asking, and at
 * once when no open file holds the entry. curl hands over 16 KiB at a
 * time, so the bytes gather in a stage of memory (CACHE_STAGE, less when
 * many download at once); a full stage goes to the download's writer
 * thread, which hashes it and writes it to the file in one write while
 * the download fills the other buffer; the file's page cache keeps only
 * its newest bytes (fill_recycle). Readers are lent
 * bytes from both buffers (cache.c), and only the readers whose bytes
 * came are woken. Once all bytes are in, the hash is checked against the
 * element's contentHash if it has one, and the file is renamed to its
 * complete name. */
#include "cache_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "sha256.h"
#include "xalloc.h"

/* ---- the download */

static int fill_head(void *ctx, const struct http_head *head)
{
	struct cache_entry *e = ctx;
	struct cache *c = e->c;
	uint64_t first;

	if (head->status == 200) {
		atomic_store(&c->ranges, CACHE_RANGES_NO);
		first = 0;
	} else if (head->status == 206 && head->has_range && head->range_last + 1 == e->size) {
		atomic_store(&c->ranges, CACHE_RANGES_YES);
		first = head->range_first;
	} else {
		log_warn("download of \"%s\": the platform answered another range", e->url);
		return -EIO;
	}
	pthread_mutex_lock(&c->lock);
	/* a retry after a cut answer: the bytes in the stage came too */
	if (first > cache_came(e)) {
		pthread_mutex_unlock(&c->lock);
		log_warn("download of \"%s\": the answer starts past the bytes we have", e->url);
		return -EIO;
	}
	e->skip = cache_came(e) - first;
	pthread_cond_broadcast(&e->cond); /* a read far ahead may take a range now */
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Waits while the download is CACHE_AHEAD past what readers want: 0, or
 * -ECANCELED when no one holds the entry or it waited CACHE_PAUSE_S. */
static int fill_wait_wanted(struct cache_entry *e)
{
	time_t since = cache_mono_s();

	while (cache_came(e) >= e->wanted + CACHE_AHEAD && !atomic_load(&e->cancel)) {
		struct timespec until;

		if (cache_mono_s() - since >= CACHE_PAUSE_S) {
			e->paused = true;
			return -ECANCELED;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		e->throttled = true;
		if (pthread_cond_timedwait(&e->cond, &e->c->lock, &until) == ETIMEDOUT &&
		    e->recorded < e->have) {
			/* idle: a good moment to make what came survive a restart */
			uint64_t have = e->have;

			pthread_mutex_unlock(&e->c->lock);
			if (cache_record_filled(e, have) == 0)
				e->recorded = have;
			pthread_mutex_lock(&e->c->lock);
		}
		e->throttled = false;
	}
	return atomic_load(&e->cancel) ? -ECANCELED : 0;
}

/* The page cache of the entry's file holds only its newest bytes: what
 * was just written starts its way to the disk at once, and what is
 * CACHE_KEEP behind and on disk by now leaves the page cache (pages still
 * dirty stay: this never waits for the disk). A read again comes from
 * the kernel's cache of the FUSE file, not from this one, and the pages
 * given back are the next ones written to: on a VM a page the kernel has
 * not used lately is dear to touch (the host takes free pages back). */
static void fill_recycle(struct cache_entry *e, uint64_t at, size_t n)
{
	sync_file_range(e->fd, (off_t)at, (off_t)n, SYNC_FILE_RANGE_WRITE);
	if (at + n > CACHE_KEEP)
		posix_fadvise(e->fd, 0, (off_t)(at + n - CACHE_KEEP), POSIX_FADV_DONTNEED);
}

/* Hashes and writes buf[!cur], bytes [have, have + wlen), to the file
 * and moves have past them; called and returns locked. On a local
 * failure (-errno) local_err is set and the bytes stay where they were:
 * readers may still be lent them, the entry ends and its readers go on
 * uncached. Only the writer writes the file, so it needs no lock.
 *
 * The bytes are hashed on the way: no second read of the file after the
 * last byte. */
static int write_step(struct cache_entry *e)
{
	struct cache *c = e->c;
	const char *p = e->buf[!e->cur];
	uint64_t at = e->have;
	size_t n = e->wlen;
	int r = 0;

	pthread_mutex_unlock(&c->lock);
	if (e->md)
		sha256_update(e->md, p, n);
	if (e->md5)
		md5_update(e->md5, p, n);
	for (size_t done = 0; done < n;) {
		ssize_t k = pwrite(e->fd, p + done, n - done, (off_t)(at + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			log_warn("cannot write cache entry \"%s\": %s", e->base, strerror(-r));
			break;
		}
		done += (size_t)k;
	}
	if (r == 0)
		fill_recycle(e, at, n);
	pthread_mutex_lock(&c->lock);
	if (r < 0) {
		e->local_err = true;
	} else {
		e->have += n;
		e->wlen = 0;
		c->unwritten -= n;
	}
	pthread_cond_broadcast(&e->wcond);
	return r;
}

/* The writer: one thread per download, so that the hash and the write of
 * one buffer overlap the download of the next. */
static void *fill_writer(void *arg)
{
	struct cache_entry *e = arg;

	pthread_mutex_lock(&e->c->lock);
	for (;;) {
		while (e->wlen == 0 && !e->writer_end)
			pthread_cond_wait(&e->wcond, &e->c->lock);
		if (e->wlen == 0 || e->local_err || write_step(e) < 0)
			break;
	}
	pthread_mutex_unlock(&e->c->lock);
	return NULL;
}

/* Hands the stage to the writer (after its last buffer is written and no
 * reader is lent it any more) and makes that buffer the stage: 0, or
 * -EIO after a local failure. Locked. */
static int fill_hand_off(struct cache_entry *e)
{
	struct cache *c = e->c;

	while (e->wlen > 0 && !e->local_err)
		pthread_cond_wait(&e->wcond, &c->lock);
	if (e->local_err)
		return -EIO;
	while (e->pins[!e->cur] > 0) { /* a reply is being written from it */
		e->pin_wait = true;
		pthread_cond_wait(&e->cond, &c->lock);
	}
	e->pin_wait = false;
	e->cur = !e->cur;
	e->wlen = e->staged;
	e->staged = 0;
	if (e->writer_on) {
		pthread_cond_broadcast(&e->wcond);
		return 0;
	}
	return write_step(e) < 0 ? -EIO : 0;
}

static int fill_data(void *ctx, const char *p, size_t n)
{
	struct cache_entry *e = ctx;
	struct cache *c = e->c;
	int r;

	if (e->skip) {
		size_t k = n < e->skip ? n : (size_t)e->skip;

		e->skip -= k;
		p += k;
		n -= k;
	}
	while (n > 0) {
		size_t k;

		pthread_mutex_lock(&c->lock);
		r = e->staged ? 0 : fill_wait_wanted(e);
		if (r == 0 && e->local_err)
			r = -EIO;
		if (r == 0 && cache_came(e) + n > e->size) {
			log_warn("download of \"%s\": more bytes than its %" PRIu64, e->url, e->size);
			r = -EIO;
		}
		if (r < 0) {
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		k = n < e->stage_cap - e->staged ? n : e->stage_cap - e->staged;
		memcpy(e->buf[e->cur] + e->staged, p, k);
		e->staged += k;
		c->fetched += k;
		e->progress_at = cache_mono_s();
		if (cache_came(e) >= e->need) { /* wake readers only for their bytes */
			e->need = UINT64_MAX;
			pthread_cond_broadcast(&e->cond);
		}
		r = e->staged == e->stage_cap ? fill_hand_off(e) : 0;
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

/* Hashes a full entry (its readers go on meanwhile: the bytes are all
 * there) and renames it to its complete name; called and returns locked. */
static int fill_finish(struct cache_entry *e)
{
	char sha[65], md5[33] = "", *from, *to;
	int r;

	pthread_mutex_unlock(&e->c->lock);
	if (e->md) { /* hashed as written, from byte 0 */
		sha256_finish(e->md, sha);
		e->md = NULL;
		r = 0;
	} else {
		r = cache_file_sha256(e->fd, e->size, sha);
	}
	if (r == 0 && e->want_md5[0]) {
		if (e->md5) {
			md5_finish(e->md5, md5);
			e->md5 = NULL;
		} else { /* resumed: the file, read whole once */
			uint64_t got = 0;

			r = md5_fd(e->fd, md5, &got);
			if (r == 0 && got != e->size)
				r = -EIO;
		}
	}
	pthread_mutex_lock(&e->c->lock);
	if (r < 0 || !e->indexed)
		return r < 0 ? r : -ECANCELED;
	if (e->want_md5[0] && strcmp(md5, e->want_md5) != 0) {
		log_warn("download of \"%s\": its MD5 is %s, Broker's checksum says %s; not served",
			 e->url, md5, e->want_md5);
		return -EBADMSG;
	}
	if (e->want_sha[0] && strcmp(sha, e->want_sha) != 0) {
		log_warn("download of \"%s\": its sha256 is %s, its contentHash says %s; not served",
			 e->url, sha, e->want_sha);
		return -EBADMSG;
	}
	memcpy(e->sha, sha, sizeof(sha));
	from = cache_entry_path(e, NULL);
	to = cache_entry_path(e, e->sha);
	if (rename(from, to) < 0)
		r = -errno;
	else if (e->recorded)
		cache_record_remove(e);
	free(from);
	free(to);
	return r;
}

static void stage_free(struct cache_entry *e)
{
	if (e->buf[0])
		munmap(e->buf[0], 2 * e->stage_cap);
	e->buf[0] = e->buf[1] = NULL;
}

static void *fill_main(void *arg)
{
	struct cache_entry *e = arg;
	struct cache *c = e->c;
	struct http_request req = {
		.url = e->url,
		.accept = "*/*",
		.has_range = true,
		.range_last = UINT64_MAX,
		.bulk = true,
		/* curl's buffer, kept by its pooled handle: as the stage */
		.bulk_buffer = e->stage_cap < CACHE_STAGE ? CACHE_STAGE_SMALL / 2 : 0,
		.on_head = fill_head,
		.on_data = fill_data,
		.ctx = e,
		.restartable = true,
		.cancel = &e->cancel,
	};
	pthread_t writer;
	int r;

	e->md = e->have == 0 ? sha256_new() : NULL;
	e->md5 = e->have == 0 && e->want_md5[0] ? md5_new() : NULL;
	pthread_mutex_lock(&c->lock);
	req.range_first = e->have;
	e->writer_end = false;
	e->writer_on = pthread_create(&writer, NULL, fill_writer, e) == 0;
	pthread_mutex_unlock(&c->lock);
	r = http_request(c->http, &req);
	pthread_mutex_lock(&c->lock);
	if (e->staged && !e->local_err)
		fill_hand_off(e);
	e->writer_end = true; /* once it wrote what it holds */
	pthread_cond_broadcast(&e->wcond);
	pthread_mutex_unlock(&c->lock);
	if (e->writer_on)
		pthread_join(writer, NULL);
	if (e->local_err && r == 0)
		r = -EIO; /* a write failed: its readers go on uncached */
	if (r == -ECANCELED && !e->local_err && e->have < e->size && e->have > e->recorded &&
	    cache_record_filled(e, e->have) == 0)
		e->recorded = e->have; /* stopped for want of readers: kept */

	pthread_mutex_lock(&c->lock);
	while (e->pins[0] > 0 || e->pins[1] > 0) {
		e->pin_wait = true;
		pthread_cond_wait(&e->cond, &c->lock);
	}
	e->pin_wait = false;
	e->staged = 0;
	e->wlen = 0;
	stage_free(e);
	if (r == -ECANCELED && e->have == e->size)
		r = 0; /* stopped after the last byte (its reader closed): complete */
	if (r == 0 && e->have != e->size) {
		log_warn("download of \"%s\": %" PRIu64 " bytes came, the element is %" PRIu64,
			 e->url, e->have, e->size);
		r = -EIO;
	}
	if (r == 0 && e->indexed) {
		r = fill_finish(e);
		e->local_err = r < 0 && r != -EBADMSG;
		if (r == -EBADMSG)
			r = -EIO; /* the platform's bytes are not what it says */
	}
	if (r == -ERANGE) /* a 416 inside the size the document gave: broken */
		r = -EIO;
	if (r == 0 && e->indexed) {
		e->state = E_COMPLETE;
		e->verified = true;
	} else if (!(r == -ECANCELED && e->indexed && e->have > 0 && !e->local_err)) {
		if (r != -ECANCELED)
			log_warn("download of \"%s\" into the cache failed (%s); reading it uncached",
				 e->url, strerror(-r));
		cache_entry_drop(c, e);
		e->state = E_FAILED;
		if (!e->err)
			e->err = r < 0 ? r : -EIO;
	}
	if (e->md) { /* not complete: the hash is of no use */
		char unused[65];

		sha256_finish(e->md, unused);
		e->md = NULL;
	}
	if (e->md5) {
		char unused[33];

		md5_finish(e->md5, unused);
		e->md5 = NULL;
	}
	e->downloading = false;
	c->downloads--;
	pthread_cond_broadcast(&e->cond);
	pthread_cond_broadcast(&c->idle);
	cache_put_locked(e);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Starts (or resumes) the download of e; locked. */
void cache_fill_start(struct cache_entry *e)
{
	struct cache *c = e->c;
	pthread_attr_t attr;
	pthread_t t;

	e->paused = false;
	atomic_store(&e->cancel, false);
	e->downloading = true;
	/* mapped, not malloc'd: given back to the system when it ends, not
	 * kept in an arena of the thread (32 downloads at once would hold
	 * their stages for good) */
	e->stage_cap = c->downloads < CACHE_STAGE_BIG ? CACHE_STAGE : CACHE_STAGE_SMALL / 2;
	e->buf[0] = mmap(NULL, 2 * e->stage_cap, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e->buf[0] == MAP_FAILED)
		abort(); /* out of memory, as xmalloc */
	e->buf[1] = e->buf[0] + e->stage_cap;
	e->cur = 0;
	e->staged = 0;
	e->wlen = 0;
	e->progress_at = cache_mono_s();
	e->refs++;
	c->downloads++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, fill_main, e) != 0) {
		log_warn("cannot start a download thread; reading \"%s\" uncached", e->url);
		e->local_err = true;
		e->downloading = false;
		stage_free(e);
		c->downloads--;
		cache_entry_drop(c, e);
		e->refs--; /* the reader's reference remains */
	}
	pthread_attr_destroy(&attr);
}

/* ---- entries */
