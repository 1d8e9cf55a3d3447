/* cache.c - data element bytes on local disk, filled by one download each.
 *
 * Storage ignores Range on data downloads (docs/cache.md): every read at
 * offset X would cost X bytes first. So the bytes of an element are fetched
 * once, by one streaming GET from byte 0 that writes them to a file here
 * (cache_fill.c), and every reader of the element reads that file: from
 * disk at once when its bytes are there, from the download's memory when
 * they just came, after a wait when the download has yet to reach them.
 * This file hands entries to readers and tells them where their bytes
 * are; cache_index.c keeps the index (least recently used last) and what
 * a start finds, cache_disk.c the files' names, records and hashes.
 *
 * Guarantees: the entries' sizes never add up to more than max (an element
 * that does not fit once the unused entries are gone is read uncached);
 * the file system keeps a reserve free; an entry is served only up to the
 * bytes written by its download, and after a restart only when complete,
 * of the size its name records, and (checked at its first use) of the
 * sha256 its name records. Memory does not grow with element sizes. */
#include "cache_i.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"


static struct cache_entry *find(struct cache *c, const char *guid, const struct timespec *changed)
{
	for (struct cache_entry *e = c->head; e; e = e->next)
		if (e->changed.tv_sec == changed->tv_sec && e->changed.tv_nsec == changed->tv_nsec &&
		    strcmp(e->guid, guid) == 0)
			return e;
	return NULL;
}

/* Opens the file of a partial entry (kept from before, or since its
 * readers left) for its next reader; locked. */
static int entry_open_partial(struct cache_entry *e, const char *url)
{
	char *path = cache_entry_path(e, NULL);
	struct stat st;

	e->fd = open(path, O_RDWR | O_CLOEXEC);
	free(path);
	if (e->fd < 0 || fstat(e->fd, &st) < 0 || (uint64_t)st.st_size < e->have) {
		log_warn("partial cache entry \"%s\" is damaged; fetching it again", e->base);
		return -EIO;
	}
	if (!e->url)
		e->url = xstrdup(url);
	return 0;
}

/* Opens the file of a complete entry for its first reader; locked. */
static int entry_open_complete(struct cache *c, struct cache_entry *e)
{
	char *path = cache_entry_path(e, e->sha);
	struct stat st;

	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd >= 0)
		futimens(e->fd, NULL); /* its mtime orders the LRU after a restart */
	free(path);
	if (e->fd < 0 || fstat(e->fd, &st) < 0 || (uint64_t)st.st_size != e->size ||
	    (!e->verified && !cache_entry_check(e))) {
		log_warn("cache entry \"%s\" is damaged; fetching it again", e->base);
		return -EIO;
	}
	e->verified = true;
	return 0;
}

/* A checked entry's MD5 (lowercase) and mark, before its download starts */
static void set_checked(struct cache_entry *e, const char *md5)
{
	e->checked = true;
	if (md5 && strlen(md5) == 32 && !e->want_md5[0])
		for (int i = 0; i < 33; i++)
			e->want_md5[i] = (char)tolower((unsigned char)md5[i]);
}

static int entry_get(struct cache *c, const char *guid, const struct timespec *changed,
		     uint64_t size, const char *want_sha, bool checked, const char *md5,
		     const char *url, struct cache_entry **ret)
{
	struct cache_entry *e;
	char *path;

	if (!c || size == 0)
		return -ENOSPC;
	pthread_mutex_lock(&c->lock);
	e = find(c, guid, changed);
	if (e && e->size != size) { /* the same version cannot change size */
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	if (e && want_sha && e->state == E_COMPLETE && strcmp(e->sha, want_sha) != 0) {
		log_warn("cache entry \"%s\" is not what its contentHash says; fetching it again",
			 e->base);
		cache_entry_drop(c, e); /* its readers keep their file; the last frees it */
		if (e->refs == 0)
			cache_entry_free(e);
		e = NULL;
	}
	if (e && e->refs == 0 && e->state == E_FILLING && entry_open_partial(e, url) < 0) {
		cache_entry_drop(c, e);
		cache_entry_free(e);
		e = NULL;
	}
	if (e && e->refs == 0 && e->state == E_COMPLETE && entry_open_complete(c, e) < 0) {
		cache_entry_drop(c, e);
		cache_entry_free(e);
		e = NULL;
	}
	if (e && want_sha && !e->want_sha[0])
		memcpy(e->want_sha, want_sha, sizeof(e->want_sha));
	if (e && checked)
		set_checked(e, md5);
	if (e) {
		e->refs++;
		cache_list_unlink(c, e);
		cache_list_push_front(c, e);
		if (e->state == E_COMPLETE)
			c->hits++;
		else
			c->misses++;
		goto out;
	}
	c->misses++;
	if (cache_make_room(c, size) < 0) {
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	e = cache_entry_new(c, guid, changed, size);
	e->url = xstrdup(url);
	if (want_sha)
		memcpy(e->want_sha, want_sha, sizeof(e->want_sha));
	if (checked)
		set_checked(e, md5);
	path = cache_entry_path(e, NULL);
	e->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (e->fd < 0) {
		log_warn("cannot create \"%s\": %s; reading uncached", path, strerror(errno));
		free(path);
		cache_entry_free(e);
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	free(path);
	e->indexed = true;
	e->refs = 1;
	cache_list_push_front(c, e);
	c->used += size;
	c->unwritten += size;
	c->n_entries++;
	cache_fill_start(e);
out:
	pthread_mutex_unlock(&c->lock);
	*ret = e;
	return 0;
}

int cache_entry_get(struct cache *c, const char *guid, const struct timespec *changed,
		    uint64_t size, const char *want_sha, const char *url,
		    struct cache_entry **ret)
{
	return entry_get(c, guid, changed, size, want_sha, false, NULL, url, ret);
}

int cache_entry_get_checked(struct cache *c, const char *key, uint64_t size, const char *md5,
			    const char *url, struct cache_entry **ret)
{
	return entry_get(c, key, &(struct timespec){ 0, 0 }, size, NULL, true, md5, url, ret);
}

void cache_forget_checked(struct cache *c, const char *key)
{
	struct cache_entry *e;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	e = find(c, key, &(struct timespec){ 0, 0 });
	if (e && e->refs == 0) {
		cache_entry_drop(c, e);
		cache_entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_entry_put(struct cache_entry *e)
{
	struct cache *c;

	if (!e)
		return;
	c = e->c;
	pthread_mutex_lock(&c->lock);
	cache_put_locked(e);
	pthread_mutex_unlock(&c->lock);
}

/* Copies of reads across the edges of the download's buffers (most of
 * a download's reads: the kernel's are not aligned to them) go to
 * COPY_BUFS buffers kept for reuse. A fresh one each time is a fresh
 * mapping whose every page faults in: perf saw 18 % of the daemon's time
 * there on a cold 64 MiB read. One that finds them all in use, or a
 * read larger than COPY_KEEP, gets a buffer of its own. */
#define COPY_BUFS 4
#define COPY_KEEP (4u << 20)

static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *p;
	size_t cap;
} copy_bufs[COPY_BUFS]; /* protected by copy_lock */
static int n_copy_bufs; /* kept ones: copy_bufs[0..n) */

static void copy_take(struct cache_span *s, size_t len)
{
	pthread_mutex_lock(&copy_lock);
	if (n_copy_bufs > 0 && len <= COPY_KEEP) {
		n_copy_bufs--;
		s->copy = copy_bufs[n_copy_bufs].p;
		s->copy_cap = copy_bufs[n_copy_bufs].cap;
	}
	pthread_mutex_unlock(&copy_lock);
	if (s->copy_cap < len) {
		free(s->copy);
		s->copy_cap = len > COPY_KEEP / 4 ? len : COPY_KEEP / 4;
		s->copy = xmalloc(s->copy_cap);
	}
}

static void copy_give(struct cache_span *s)
{
	if (!s->copy)
		return;
	pthread_mutex_lock(&copy_lock);
	if (n_copy_bufs < COPY_BUFS && s->copy_cap <= COPY_KEEP) {
		copy_bufs[n_copy_bufs].p = s->copy;
		copy_bufs[n_copy_bufs].cap = s->copy_cap;
		n_copy_bufs++;
		s->copy = NULL;
	}
	pthread_mutex_unlock(&copy_lock);
	free(s->copy);
	s->copy = NULL;
}

/* [off, end) is all here: says where; locked. A read inside one of the
 * download's buffers is lent from it (pinned until cache_span_done); one
 * across their edges is copied, from the file and the buffers. */

static void span_set(struct cache_entry *e, uint64_t off, uint64_t end, struct cache_span *ret)
{
	uint64_t wend = e->have + e->wlen;
	const char *wbuf = e->buf[!e->cur], *stage = e->buf[e->cur];

	ret->len = (size_t)(end - off);
	if (e->state == E_COMPLETE || end <= e->have) {
		ret->fd = e->fd;
		return;
	}
	if (off >= e->have && (end <= wend || off >= wend)) {
		ret->pin = end <= wend ? !e->cur : e->cur;
		ret->mem = end <= wend ? wbuf + (off - e->have) : stage + (off - wend);
		ret->pinned = e;
		e->pins[ret->pin]++;
		return;
	}
	copy_take(ret, ret->len);
	ret->mem = ret->copy;
	for (uint64_t at = off; at < end;) {
		size_t n;

		if (at < e->have) { /* the file's part */
			ssize_t k = pread(e->fd, ret->copy + (at - off), (size_t)(e->have - at),
					  (off_t)at);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) { /* the file lost bytes we wrote: serve none */
				copy_give(ret);
				ret->mem = NULL;
				ret->len = 0;
				return;
			}
			at += (uint64_t)k;
			continue;
		}
		if (at < wend) {
			n = (size_t)((end < wend ? end : wend) - at);
			memcpy(ret->copy + (at - off), wbuf + (at - e->have), n);
		} else {
			n = (size_t)(end - at);
			memcpy(ret->copy + (at - off), stage + (at - wend), n);
		}
		at += n;
	}
}

void cache_span_done(struct cache_span *s)
{
	if (s->pinned) {
		struct cache_entry *e = s->pinned;

		pthread_mutex_lock(&e->c->lock);
		if (--e->pins[s->pin] == 0 && e->pin_wait)
			pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->c->lock);
	}
	copy_give(s);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

ssize_t cache_wait(struct cache_entry *e, uint64_t off, size_t len, struct cache_span *ret)
{
	struct cache *c = e->c;
	uint64_t end = off + len > e->size ? e->size : off + len;
	time_t since = cache_mono_s();
	uint64_t had, wait_end, wanted_before;
	bool hold;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	if (off >= e->size)
		return 0;
	pthread_mutex_lock(&c->lock);
	/* a contentHash to check: nothing is served before all bytes are;
	 * an MD5: not the last byte */
	hold = e->want_sha[0] || (e->checked && end == e->size);
	wait_end = e->want_sha[0] ? e->size : end;
	had = cache_came(e);
	wanted_before = e->wanted;
	if (wait_end > e->wanted) {
		/* also when the bytes are here: the download keeps its lead */
		e->wanted = wait_end;
		if (e->throttled)
			pthread_cond_broadcast(&e->cond);
	}
	for (;;) {
		if (e->state == E_COMPLETE || (!hold && end <= cache_came(e)))
			break;
		if (e->state == E_FAILED) {
			int r = e->local_err || e->err == -ECANCELED ? CACHE_UNCACHED : e->err;

			pthread_mutex_unlock(&c->lock);
			return r;
		}
		if (atomic_load(&c->ranges) == CACHE_RANGES_YES && !e->want_sha[0] &&
		    !e->checked && off > cache_came(e) + CACHE_FAR) {
			/* served by its own Range: the download from the
			 * start must not run ahead to this read's end (a
			 * `tail` would fetch the whole element meanwhile) */
			if (e->wanted == wait_end)
				e->wanted = wanted_before;
			pthread_mutex_unlock(&c->lock);
			return CACHE_UNCACHED;
		}
		if (!e->downloading) {
			cache_fill_start(e);
			continue;
		}
		if (cache_mono_s() - since >= c->timeout &&
		    (cache_mono_s() - e->progress_at >= c->timeout ||
		     cache_came(e) - had < (uint64_t)c->timeout * CACHE_SLOW_BPS)) {
			/* stalled, or trickling too slowly to be of use: the
			 * readers waiting with us fail too, and a new open
			 * tries again */
			e->err = -ETIMEDOUT;
			e->state = E_FAILED;
			atomic_store(&e->cancel, true);
			cache_entry_drop(c, e);
			pthread_cond_broadcast(&e->cond);
			pthread_mutex_unlock(&c->lock);
			return -ETIMEDOUT;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (wait_end < e->need)
			e->need = wait_end;
		e->waiters++;
		pthread_cond_timedwait(&e->cond, &c->lock, &until);
		e->waiters--;
	}
	span_set(e, off, end, ret);
	pthread_mutex_unlock(&c->lock);
	return ret->len ? (ssize_t)ret->len : -EIO;
}

uint64_t cache_local_bytes(struct cache *c, const char *guid, const struct timespec *changed)
{
	struct cache_entry *e;
	uint64_t n = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = find(c, guid, changed);
	if (e)
		n = e->state == E_COMPLETE ? e->size : cache_came(e);
	pthread_mutex_unlock(&c->lock);
	return n;
}

void cache_note_ranges(struct cache *c, bool honoured)
{
	if (c)
		atomic_store(&c->ranges, honoured ? CACHE_RANGES_YES : CACHE_RANGES_NO);
}

enum cache_ranges cache_ranges(struct cache *c)
{
	return c ? (enum cache_ranges)atomic_load(&c->ranges) : CACHE_RANGES_UNKNOWN;
}

void cache_get_stats(struct cache *c, struct alt_cache_status *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	ret->on = true;
	snprintf(ret->dir, sizeof(ret->dir), "%s", c->dir);
	ret->max = c->max;
	ret->used = c->used;
	ret->entries = c->n_entries;
	ret->hits = c->hits;
	ret->misses = c->misses;
	ret->bytes_fetched = c->fetched;
	pthread_mutex_unlock(&c->lock);
}

int cache_new(const char *dir, uint64_t max, int timeout, struct http *http, struct cache **ret)
{
	struct cache *c;

	*ret = NULL;
	if (max == 0)
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_errno(-errno, "cannot create cache_dir \"%s\"", dir);
	if (max == CONFIG_CACHE_MAX_AUTO) {
		max = cache_auto_max(dir);
		log_info("cache: cache_max not set: %" PRIu64 " MiB, a quarter of the free space",
			 max >> 20);
		if (max == 0)
			return 0;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(dir);
	c->max = max;
	c->timeout = timeout > 0 ? timeout : 30;
	c->http = http;
	atomic_init(&c->ranges, CACHE_RANGES_UNKNOWN);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	cache_load_dir(c);
	log_info("cache: \"%s\", %" PRIu64 " of %" PRIu64 " bytes in %" PRIu64 " entries", dir,
		 c->used, max, c->n_entries);
	*ret = c;
	return 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (struct cache_entry *e = c->head; e; e = e->next)
		if (e->downloading) {
			atomic_store(&e->cancel, true);
			pthread_cond_broadcast(&e->cond);
		}
	while (c->downloads > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	while (c->head) {
		struct cache_entry *e = c->head;

		cache_list_unlink(c, e);
		if (e->state != E_COMPLETE && !e->recorded) {
			char *path = cache_entry_path(e, NULL);

			unlink(path); /* a partial entry without a record is no use */
			free(path);
		}
		cache_entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c->dir);
	free(c);
}
