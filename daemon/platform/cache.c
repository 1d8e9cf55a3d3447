/* cache.c - data element bytes on local disk, filled by one download each.
 *
 * Storage ignores Range on data downloads (docs/cache.md): every read at
 * offset X would cost X bytes first. So the bytes of an element are fetched
 * once, by one streaming GET from byte 0 that writes them to a file here,
 * and every reader of the element reads that file: from disk at once when
 * its bytes are there, after a wait when the download has yet to reach
 * them. The download runs at most CACHE_AHEAD past the furthest byte a
 * reader asked for (TCP flow control holds the server back meanwhile), and
 * stops when no open file holds the entry any more, so `head -c 4096` of a
 * large element fetches little. A download held back for CACHE_PAUSE_S
 * ends; the next read past it resumes it (with a Range where the server
 * honours it, else from byte 0, dropping what is already here).
 *
 * Speed: curl hands over 16 KiB at a time, and a write of that size into
 * the page cache, with a wake-up of the readers each time, ran the fill at
 * half curl's speed. So the download gathers CACHE_STAGE bytes in memory
 * and writes them at once; a reader whose bytes are in that stage is lent
 * them from there (a pin holds the stage until its reply is written), and
 * waiting readers are woken only when the bytes they wait for are in.
 *
 * Guarantees: the entries' sizes never add up to more than max (an element
 * that does not fit once the unused entries are gone is read uncached);
 * the file system keeps a reserve free; an entry is served only up to the
 * bytes written by its download, and after a restart only when complete,
 * of the size its name records, and (checked at its first use) of the
 * sha256 its name records. Memory does not grow with element sizes. */
#include "cache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "sha256.h"
#include "xalloc.h"

#define CACHE_AHEAD (8ull << 20)   /* the download's lead on the furthest read */
#define CACHE_FAR (1ull << 20)      /* a read this far ahead takes a Range instead */
#define CACHE_SLOW_BPS (64u << 10) /* a wait longer than the timeout fails below this */
#define CACHE_PAUSE_S 10            /* a download held back this long ends */
#define CACHE_RESERVE (256ull << 20) /* free space left on the cache's file system, */
#define CACHE_RESERVE_PCT 5          /* ... or this share of it when smaller */
#define CACHE_AUTO_SHARE 4           /* cache_max unset: 1/4 of the free space at start, */
#define CACHE_AUTO_CAP (16ull << 30) /* ... at most this: a cache larger than a day's
				      * reading only costs start-up scans and disk */
#define CACHE_STAGE (1u << 20)       /* a download's bytes kept in memory, then written
				      * to the file at once: one large write per MiB
				      * instead of one per 16 KiB callback of curl */

enum entry_state { E_FILLING, E_COMPLETE, E_FAILED };

struct cache_entry {
	struct cache *c;
	char *base;   /* "<guid>-<sec>.<nsec>-<size>"; immutable */
	char *guid;
	struct timespec changed;
	uint64_t size;
	char *url;    /* NULL for an entry found on disk */
	atomic_bool cancel;
	uint64_t skip;  /* the download's: bytes to drop before new ones */
	pthread_cond_t cond; /* bytes arrived, a download ended, or a reader wants more */
	/* protected by c->lock: */
	int refs;       /* open readers + the download under way */
	int fd;         /* -1 while no one uses it */
	enum entry_state state;
	bool indexed;   /* in c's list, counted in c->used */
	bool verified;  /* its bytes are known good (written or checked since start) */
	bool downloading;
	bool paused;    /* the download ended for want of readers */
	bool throttled; /* the download waits for readers to want more */
	int err;        /* why it failed: -errno, for its readers */
	bool local_err; /* ... on this side (disk): read uncached instead */
	char sha[65];   /* of a complete entry */
	char want_sha[65]; /* the platform's contentHash (sha256), or "": the
			    * entry serves nothing before its bytes match it */
	uint64_t have;  /* bytes [0, have) are in the file */
	uint64_t wanted; /* the furthest byte a reader asked for */
	char *stage;    /* the download's: bytes [have, have + staged) of the */
	size_t staged;  /* ... element, received but not in the file yet */
	int stage_pins; /* readers lent bytes of the stage */
	bool pin_wait;  /* the download waits for stage_pins to drop */
	uint64_t need;  /* the lowest end a waiting reader needs; UINT64_MAX none */
	int waiters;
	time_t progress_at;
	struct cache_entry *prev, *next; /* most recently used first */
};

struct cache {
	char *dir;
	uint64_t max;
	int timeout;
	struct http *http;
	atomic_int ranges; /* enum cache_ranges */
	pthread_mutex_t lock;
	pthread_cond_t idle; /* a download ended */
	/* protected by lock: */
	struct cache_entry *head, *tail;
	uint64_t used;      /* sizes of the indexed entries */
	uint64_t unwritten; /* ... of which not yet on disk */
	uint64_t n_entries, hits, misses, fetched;
	int downloads;
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static char *entry_path(const struct cache_entry *e, const char *sha)
{
	return sha ? xasprintf("%s/%s-%s", e->c->dir, e->base, sha)
		   : xasprintf("%s/%s.part", e->c->dir, e->base);
}

/* ---- the index; everything here is called locked */

static void list_unlink(struct cache *c, struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void list_push_front(struct cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void entry_free(struct cache_entry *e)
{
	if (e->fd >= 0)
		close(e->fd);
	pthread_cond_destroy(&e->cond);
	free(e->base);
	free(e->guid);
	free(e->url);
	free(e);
}

/* Takes e out of the index and removes its file; freed by its last user. */
static void entry_drop(struct cache *c, struct cache_entry *e)
{
	char *path;

	if (!e->indexed)
		return;
	path = entry_path(e, e->state == E_COMPLETE ? e->sha : NULL);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove \"%s\" from the cache: %s", path, strerror(errno));
	free(path);
	list_unlink(c, e);
	e->indexed = false;
	c->used -= e->size;
	if (e->state != E_COMPLETE)
		c->unwritten -= e->size - e->have;
	c->n_entries--;
	if (e->state == E_FILLING)
		e->state = E_FAILED;
}

static struct cache_entry *find(struct cache *c, const char *guid, const struct timespec *changed)
{
	for (struct cache_entry *e = c->head; e; e = e->next)
		if (e->changed.tv_sec == changed->tv_sec && e->changed.tv_nsec == changed->tv_nsec &&
		    strcmp(e->guid, guid) == 0)
			return e;
	return NULL;
}

/* Does the file system have room for `size` more bytes beside the
 * entries still being written, and the reserve? */
static bool disk_has_room(struct cache *c, uint64_t size)
{
	struct statvfs sv;
	uint64_t avail, reserve;

	if (statvfs(c->dir, &sv) < 0)
		return false;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 100 * CACHE_RESERVE_PCT;
	if (reserve > CACHE_RESERVE)
		reserve = CACHE_RESERVE;
	return avail >= size + reserve + c->unwritten;
}

/* Removes unused complete entries, least recently used first, until size
 * more bytes fit: 0 or -ENOSPC. */
static int make_room(struct cache *c, uint64_t size)
{
	struct cache_entry *e = c->tail;

	if (size > c->max)
		return -ENOSPC;
	while (c->used + size > c->max || !disk_has_room(c, size)) {
		while (e && (e->refs > 0 || e->state != E_COMPLETE))
			e = e->prev;
		if (!e)
			return -ENOSPC;
		struct cache_entry *victim = e;
		e = e->prev;
		log_debug("cache: evicting \"%s\"", victim->base);
		entry_drop(c, victim);
		entry_free(victim);
	}
	return 0;
}

static void put_locked(struct cache_entry *e)
{
	struct cache *c = e->c;

	e->refs--;
	if (e->refs == 1 && e->downloading) {
		/* only the download holds it: no one will read what comes */
		atomic_store(&e->cancel, true);
		pthread_cond_broadcast(&e->cond);
	}
	if (e->refs > 0)
		return;
	if (e->state != E_COMPLETE)
		entry_drop(c, e); /* a partial entry is kept only while read */
	if (!e->indexed) {
		entry_free(e);
		return;
	}
	close(e->fd);
	e->fd = -1;
}

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
	if (first > e->have) {
		pthread_mutex_unlock(&c->lock);
		log_warn("download of \"%s\": the answer starts past the bytes we have", e->url);
		return -EIO;
	}
	e->skip = e->have - first;
	pthread_cond_broadcast(&e->cond); /* a read far ahead may take a range now */
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Waits while the download is CACHE_AHEAD past what readers want: 0, or
 * -ECANCELED when no one holds the entry or it waited CACHE_PAUSE_S. */
static int fill_wait_wanted(struct cache_entry *e)
{
	time_t since = mono_s();

	while (e->have + e->staged >= e->wanted + CACHE_AHEAD && !atomic_load(&e->cancel)) {
		struct timespec until;

		if (mono_s() - since >= CACHE_PAUSE_S) {
			e->paused = true;
			return -ECANCELED;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		e->throttled = true;
		pthread_cond_timedwait(&e->cond, &e->c->lock, &until);
		e->throttled = false;
	}
	return atomic_load(&e->cancel) ? -ECANCELED : 0;
}

/* Writes the stage to the file and moves have past it: 0, or -errno (a
 * local failure: the entry's readers go on uncached). Only the download's
 * thread writes the stage and past have, so the file needs no lock. */
static int fill_flush(struct cache_entry *e)
{
	struct cache *c = e->c;
	uint64_t at = e->have;
	size_t n = e->staged;
	int r = 0;

	for (size_t done = 0; done < n;) {
		ssize_t k = pwrite(e->fd, e->stage + done, n - done, (off_t)(at + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			log_warn("cannot write cache entry \"%s\": %s", e->base, strerror(-r));
			break;
		}
		done += (size_t)k;
	}
	pthread_mutex_lock(&c->lock);
	while (e->stage_pins > 0) { /* a reply is being written from the stage */
		e->pin_wait = true;
		pthread_cond_wait(&e->cond, &c->lock);
	}
	e->pin_wait = false;
	if (r < 0) {
		e->local_err = true;
	} else {
		e->have += n;
		c->unwritten -= n;
	}
	e->staged = 0;
	pthread_mutex_unlock(&c->lock);
	return r;
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
		bool full;

		pthread_mutex_lock(&c->lock);
		r = e->staged ? 0 : fill_wait_wanted(e);
		if (r == 0 && e->have + e->staged + n > e->size) {
			log_warn("download of \"%s\": more bytes than its %" PRIu64, e->url, e->size);
			r = -EIO;
		}
		if (r < 0) {
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		k = n < CACHE_STAGE - e->staged ? n : CACHE_STAGE - e->staged;
		memcpy(e->stage + e->staged, p, k);
		e->staged += k;
		c->fetched += k;
		e->progress_at = mono_s();
		if (e->have + e->staged >= e->need) { /* wake readers only for their bytes */
			e->need = UINT64_MAX;
			pthread_cond_broadcast(&e->cond);
		}
		full = e->staged == CACHE_STAGE;
		pthread_mutex_unlock(&c->lock);
		p += k;
		n -= k;
		if (full && (r = fill_flush(e)) < 0)
			return r;
	}
	return 0;
}

/* The sha256 of the first size bytes of fd, in hex: 0, or -EIO when the
 * file is shorter. */
static int file_sha256(int fd, uint64_t size, char hex[65])
{
	struct sha256 *md = sha256_new();
	char *buf = xmalloc(1 << 20);
	uint64_t total = 0;
	ssize_t n = 0;

	while (total < size && (n = pread(fd, buf, 1 << 20, (off_t)total)) > 0) {
		size_t take = (uint64_t)n < size - total ? (size_t)n : (size_t)(size - total);

		sha256_update(md, buf, take);
		total += take;
	}
	sha256_finish(md, hex);
	free(buf);
	return total == size && n >= 0 ? 0 : -EIO;
}

/* Hashes a full entry (its readers go on meanwhile: the bytes are all
 * there) and renames it to its complete name; called and returns locked. */
static int fill_finish(struct cache_entry *e)
{
	char sha[65], *from, *to;
	int r;

	pthread_mutex_unlock(&e->c->lock);
	r = file_sha256(e->fd, e->size, sha);
	pthread_mutex_lock(&e->c->lock);
	if (r < 0 || !e->indexed)
		return r < 0 ? r : -ECANCELED;
	if (e->want_sha[0] && strcmp(sha, e->want_sha) != 0) {
		log_warn("download of \"%s\": its sha256 is %s, its contentHash says %s; not served",
			 e->url, sha, e->want_sha);
		return -EBADMSG;
	}
	memcpy(e->sha, sha, sizeof(sha));
	from = entry_path(e, NULL);
	to = entry_path(e, e->sha);
	if (rename(from, to) < 0)
		r = -errno;
	free(from);
	free(to);
	return r;
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
		.on_head = fill_head,
		.on_data = fill_data,
		.ctx = e,
		.restartable = true,
		.cancel = &e->cancel,
	};
	int r;

	pthread_mutex_lock(&c->lock);
	req.range_first = e->have;
	pthread_mutex_unlock(&c->lock);
	r = http_request(c->http, &req);
	if (e->staged && !e->local_err && fill_flush(e) < 0 && r == 0)
		r = -EIO; /* local_err is set: its readers go on uncached */

	pthread_mutex_lock(&c->lock);
	while (e->stage_pins > 0) {
		e->pin_wait = true;
		pthread_cond_wait(&e->cond, &c->lock);
	}
	e->pin_wait = false;
	e->staged = 0;
	free(e->stage);
	e->stage = NULL;
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
	} else if (!(r == -ECANCELED && e->paused && e->indexed)) {
		if (r != -ECANCELED)
			log_warn("download of \"%s\" into the cache failed (%s); reading it uncached",
				 e->url, strerror(-r));
		entry_drop(c, e);
		e->state = E_FAILED;
		if (!e->err)
			e->err = r < 0 ? r : -EIO;
	}
	e->downloading = false;
	c->downloads--;
	pthread_cond_broadcast(&e->cond);
	pthread_cond_broadcast(&c->idle);
	put_locked(e);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Starts (or resumes) the download of e; locked. */
static void fill_start(struct cache_entry *e)
{
	struct cache *c = e->c;
	pthread_attr_t attr;
	pthread_t t;

	e->paused = false;
	atomic_store(&e->cancel, false);
	e->downloading = true;
	e->stage = xmalloc(CACHE_STAGE);
	e->staged = 0;
	e->progress_at = mono_s();
	e->refs++;
	c->downloads++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, fill_main, e) != 0) {
		log_warn("cannot start a download thread; reading \"%s\" uncached", e->url);
		e->local_err = true;
		e->downloading = false;
		free(e->stage);
		e->stage = NULL;
		c->downloads--;
		entry_drop(c, e);
		e->refs--; /* the reader's reference remains */
	}
	pthread_attr_destroy(&attr);
}

/* ---- entries */

int cache_sha256_hex(const char *hash, char ret[65])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[33];
	size_t len, n = 0;
	unsigned acc = 0;
	int bits = 0;

	if (strncasecmp(hash, "sha256:", 7) == 0)
		hash += 7;
	len = strlen(hash);
	if (len == 64 && strspn(hash, "0123456789abcdefABCDEF") == 64) {
		for (size_t i = 0; i < 64; i++)
			ret[i] = (char)tolower((unsigned char)hash[i]);
		ret[64] = '\0';
		return 0;
	}
	while (len && hash[len - 1] == '=')
		len--;
	if (len != 43) /* 32 bytes of base64 */
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		const char *p = strchr(b64, hash[i]);
		unsigned v = hash[i] == '-' ? 62 : hash[i] == '_' ? 63 : 64; /* base64url too */

		if (p && hash[i])
			v = (unsigned)(p - b64);
		if (v == 64)
			return -EINVAL;
		acc = (acc << 6 | v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (unsigned char)(acc >> bits);
		}
	}
	for (size_t i = 0; i < 32; i++)
		snprintf(ret + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static struct cache_entry *entry_new(struct cache *c, const char *guid,
				     const struct timespec *changed, uint64_t size)
{
	struct cache_entry *e = xcalloc(1, sizeof(*e));

	e->c = c;
	e->guid = xstrdup(guid);
	e->changed = *changed;
	e->size = size;
	e->base = xasprintf("%s-%lld.%09ld-%" PRIu64, guid, (long long)changed->tv_sec,
			    changed->tv_nsec, size);
	e->fd = -1;
	e->need = UINT64_MAX;
	atomic_init(&e->cancel, false);
	pthread_cond_init(&e->cond, NULL);
	return e;
}

/* Is a complete entry found on disk what its name says? Read in full
 * once, at its first use since the start. */
static bool entry_check(struct cache_entry *e)
{
	char hex[65];

	return file_sha256(e->fd, e->size, hex) == 0 && strcmp(hex, e->sha) == 0;
}

/* Opens the file of a complete entry for its first reader; locked. */
static int entry_open_complete(struct cache *c, struct cache_entry *e)
{
	char *path = entry_path(e, e->sha);
	struct stat st;

	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd >= 0)
		futimens(e->fd, NULL); /* its mtime orders the LRU after a restart */
	free(path);
	if (e->fd < 0 || fstat(e->fd, &st) < 0 || (uint64_t)st.st_size != e->size ||
	    (!e->verified && !entry_check(e))) {
		log_warn("cache entry \"%s\" is damaged; fetching it again", e->base);
		return -EIO;
	}
	e->verified = true;
	return 0;
}

int cache_entry_get(struct cache *c, const char *guid, const struct timespec *changed,
		    uint64_t size, const char *want_sha, const char *url,
		    struct cache_entry **ret)
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
		entry_drop(c, e); /* its readers keep their file; the last frees it */
		if (e->refs == 0)
			entry_free(e);
		e = NULL;
	}
	if (e && e->refs == 0 && e->state == E_COMPLETE && entry_open_complete(c, e) < 0) {
		entry_drop(c, e);
		entry_free(e);
		e = NULL;
	}
	if (e && want_sha && !e->want_sha[0])
		memcpy(e->want_sha, want_sha, sizeof(e->want_sha));
	if (e) {
		e->refs++;
		list_unlink(c, e);
		list_push_front(c, e);
		if (e->state == E_COMPLETE)
			c->hits++;
		else
			c->misses++;
		goto out;
	}
	c->misses++;
	if (make_room(c, size) < 0) {
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	e = entry_new(c, guid, changed, size);
	e->url = xstrdup(url);
	if (want_sha)
		memcpy(e->want_sha, want_sha, sizeof(e->want_sha));
	path = entry_path(e, NULL);
	e->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (e->fd < 0) {
		log_warn("cannot create \"%s\": %s; reading uncached", path, strerror(errno));
		free(path);
		entry_free(e);
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	free(path);
	e->indexed = true;
	e->refs = 1;
	list_push_front(c, e);
	c->used += size;
	c->unwritten += size;
	c->n_entries++;
	fill_start(e);
out:
	pthread_mutex_unlock(&c->lock);
	*ret = e;
	return 0;
}

void cache_entry_put(struct cache_entry *e)
{
	struct cache *c;

	if (!e)
		return;
	c = e->c;
	pthread_mutex_lock(&c->lock);
	put_locked(e);
	pthread_mutex_unlock(&c->lock);
}

/* [off, end) is all here: says where; locked. A read inside the stage is
 * lent from it (pinned until cache_span_done); one across its start is
 * copied, the file's part and the stage's. */

static void span_set(struct cache_entry *e, uint64_t off, uint64_t end, struct cache_span *ret)
{
	ret->len = (size_t)(end - off);

	if (e->state == E_COMPLETE || end <= e->have) {
		ret->fd = e->fd;
		return;
	}
	if (off >= e->have) {
		ret->mem = e->stage + (off - e->have);
		ret->pinned = e;
		e->stage_pins++;
		return;
	}
	size_t head = (size_t)(e->have - off);

	ret->copy = xmalloc(ret->len);
	ret->mem = ret->copy;
	for (size_t done = 0; done < head;) {
		ssize_t k = pread(e->fd, ret->copy + done, head - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) { /* the file lost bytes we wrote: serve none */
			free(ret->copy);
			ret->copy = NULL;
			ret->mem = NULL;
			ret->len = 0;
			return;
		}
		done += (size_t)k;
	}
	memcpy(ret->copy + head, e->stage, ret->len - head);
}

void cache_span_done(struct cache_span *s)
{
	if (s->pinned) {
		struct cache_entry *e = s->pinned;

		pthread_mutex_lock(&e->c->lock);
		if (--e->stage_pins == 0 && e->pin_wait)
			pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->c->lock);
	}
	free(s->copy);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

ssize_t cache_wait(struct cache_entry *e, uint64_t off, size_t len, struct cache_span *ret)
{
	struct cache *c = e->c;
	uint64_t end = off + len > e->size ? e->size : off + len;
	time_t since = mono_s();
	uint64_t had, wait_end;

	memset(ret, 0, sizeof(*ret));
	ret->fd = -1;
	if (off >= e->size)
		return 0;
	pthread_mutex_lock(&c->lock);
	/* a contentHash to check: nothing is served before all bytes are */
	wait_end = e->want_sha[0] ? e->size : end;
	had = e->have + e->staged;
	if (wait_end > e->wanted) {
		/* also when the bytes are here: the download keeps its lead */
		e->wanted = wait_end;
		if (e->throttled)
			pthread_cond_broadcast(&e->cond);
	}
	for (;;) {
		if (e->state == E_COMPLETE || (!e->want_sha[0] && end <= e->have + e->staged))
			break;
		if (e->state == E_FAILED) {
			int r = e->local_err || e->err == -ECANCELED ? CACHE_UNCACHED : e->err;

			pthread_mutex_unlock(&c->lock);
			return r;
		}
		if (atomic_load(&c->ranges) == CACHE_RANGES_YES && !e->want_sha[0] &&
		    off > e->have + e->staged + CACHE_FAR) {
			pthread_mutex_unlock(&c->lock);
			return CACHE_UNCACHED;
		}
		if (!e->downloading) {
			fill_start(e);
			continue;
		}
		if (mono_s() - since >= c->timeout &&
		    (mono_s() - e->progress_at >= c->timeout ||
		     e->have + e->staged - had < (uint64_t)c->timeout * CACHE_SLOW_BPS)) {
			/* stalled, or trickling too slowly to be of use: the
			 * readers waiting with us fail too, and a new open
			 * tries again */
			e->err = -ETIMEDOUT;
			e->state = E_FAILED;
			atomic_store(&e->cancel, true);
			entry_drop(c, e);
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
		n = e->state == E_COMPLETE ? e->size : e->have + e->staged;
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

/* ---- start and stop */

struct loaded {
	struct cache_entry *e;
	struct timespec mtime;
};

static int by_mtime(const void *x, const void *y)
{
	const struct loaded *a = x, *b = y;

	if (a->mtime.tv_sec != b->mtime.tv_sec)
		return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
	return (a->mtime.tv_nsec > b->mtime.tv_nsec) - (a->mtime.tv_nsec < b->mtime.tv_nsec);
}

/* One file of the directory: a complete entry into *list, anything else
 * (a partial entry, a stray or damaged file) removed. */
static void load_one(struct cache *c, int dfd, const char *name, struct loaded **list, size_t *n)
{
	char guid[64], sha[65];
	long long sec;
	long nsec;
	uint64_t size;
	int used = 0;
	struct stat st;
	struct cache_entry *e;

	if (sscanf(name, "%36[0-9a-f-]-%lld.%9ld-%" SCNu64 "-%64[0-9a-f]%n", guid, &sec, &nsec,
		   &size, sha, &used) != 5 || name[used] || strlen(sha) != 64 ||
	    fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size || size == 0) {
		if (unlinkat(dfd, name, 0) == 0)
			log_info("cache: removed \"%s\" (partial or damaged)", name);
		return;
	}
	e = entry_new(c, guid, &(struct timespec){ sec, nsec }, size);
	if (strncmp(e->base, name, strlen(e->base)) != 0) { /* not our spelling */
		entry_free(e);
		unlinkat(dfd, name, 0);
		return;
	}
	memcpy(e->sha, sha, sizeof(sha));
	e->state = E_COMPLETE;
	e->indexed = true;
	e->have = size;
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = (struct loaded){ e, st.st_mtim };
}

/* Indexes the complete entries, the least recently used (oldest mtime)
 * last, and removes everything else. */
static void load_dir(struct cache *c)
{
	struct loaded *list = NULL;
	size_t n = 0;
	DIR *d = opendir(c->dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			load_one(c, dirfd(d), de->d_name, &list, &n);
	closedir(d);
	if (n)
		qsort(list, n, sizeof(*list), by_mtime);
	for (size_t i = 0; i < n; i++) {
		list_push_front(c, list[i].e);
		c->used += list[i].e->size;
		c->n_entries++;
	}
	free(list);
	if (make_room(c, 0) < 0)
		log_warn("cache: \"%s\" holds more than cache_max", c->dir);
}

/* cache_max unset: a quarter of what the cache could have at start (the
 * free space and its own entries), at most CACHE_AUTO_CAP. */
static uint64_t auto_max(const char *dir)
{
	struct statvfs sv;
	uint64_t have = 0, max;
	DIR *d;
	struct dirent *de;
	struct stat st;

	if (statvfs(dir, &sv) < 0)
		return 0;
	d = opendir(dir);
	while (d && (de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			have += (uint64_t)st.st_size;
	if (d)
		closedir(d);
	max = ((uint64_t)sv.f_bavail * sv.f_frsize + have) / CACHE_AUTO_SHARE;
	return max < CACHE_AUTO_CAP ? max : CACHE_AUTO_CAP;
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
		max = auto_max(dir);
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
	load_dir(c);
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

		list_unlink(c, e);
		if (e->state != E_COMPLETE) {
			char *path = entry_path(e, NULL);

			unlink(path);
			free(path);
		}
		entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c->dir);
	free(c);
}
