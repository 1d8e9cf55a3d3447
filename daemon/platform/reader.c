/* reader.c - a data element's bytes, read with HTTP ranges.
 *
 * Reading must cost what is read: the first 4 KiB of a 256 MiB element is
 * one small range request, never the whole element, and a reader that
 * stops early leaves little in flight. Sequential reading must run near
 * the speed of one plain download, which many small range requests cannot
 * (each is a round trip). So a reader starts with bounded range requests
 * (RD_RANGE_MIN at least; the surplus is kept for the next small read),
 * and when a read starts where the previous one ended it opens a stream:
 * a thread of its own that fetches the element in bounded range windows,
 * RD_WIN_MIN first and twice as large each time up to RD_WIN_MAX, into a
 * ring of ALT_STREAM_WINDOW bytes. The next window is asked for once
 * reading has reached the middle of the last one, so a short read costs
 * at most a small window, and a long one finds the next bytes already on
 * their way. The thread blocks when the ring is full, so memory stays
 * bounded whatever the element's size, and TCP flow control holds the
 * server back meanwhile. The stream itself is reader_stream.c.
 *
 * Readers are lent bytes in place (altinn_reader_borrow), so a FUSE reply
 * is written straight from the ring: a lent range is pinned, and the
 * thread does not overwrite it until it is given back.
 *
 * The kernel sends reads from several FUSE threads, slightly out of order
 * and slightly ahead, so the ring keeps RD_KEEP bytes already handed out
 * and lets a read wait for bytes up to RD_AHEAD past what has arrived. A
 * read far from the stream (a seek) stops it and becomes a range request;
 * if reading goes on sequentially from there, a new stream starts, with a
 * small window again. A stream no one reads for RD_IDLE_S seconds gives
 * up its ring. At most ALT_MAX_STREAMS streams exist at once; readers
 * beyond that use range requests only.
 *
 * A read waits for its bytes cfg->timeout at most, however slowly they
 * trickle in; a stream that kept a read waiting that long is stopped. A
 * read that failed is not tried again by the next read of the same open
 * file within cfg->timeout: the kernel reads a page again at once when
 * its readahead failed, and that second try would wait out the whole
 * timeout a second time for one `cat`. A new open tries again.
 *
 * Answers are checked: a 206 must carry the Content-Range we asked for,
 * and a server that ignores Range and answers 200 is handled by skipping
 * to the offset and taking the rest of that one answer. Reads are short
 * only at the end of the element. */
#include "altinn.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "altinn_i.h"
#include "reader_stream.h"
#include "cache.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

#define RD_RANGE_MIN (128u << 10) /* smallest range request */

struct alt_reader {
	struct altinn *a;
	char *url;
	uint64_t size;
	char *data_guid;
	struct timespec changed;  /* the element's lastChanged: its cache key */
	char want_sha[65];        /* its contentHash as a sha256 in hex, or "" */
	bool checked;             /* read through its cache entry only (never
				   * uncached: the MD5 is checked there) */
	struct cache_entry *entry; /* set once by the first read; NULL: uncached */
	bool entry_tried;         /* protected by lock */

	pthread_mutex_t lock;
	/* protected by lock: */
	struct rd_stream *stream; /* NULL when not streaming */
	bool have_read;
	uint64_t last_end;        /* where the latest read ended */
	char *cache;              /* the surplus of the last small range read */
	uint64_t cache_off;
	size_t cache_len;
	int fail_err;             /* the latest failed read's error, given */
	time_t fail_until;        /* ... to reads until then (mono_s) */
};

/* ---- range requests */

struct range_sink {
	uint64_t off;
	size_t want;
	char *buf;
	size_t got;
	uint64_t skip;
	bool whole;         /* a 200: the body is the whole element */
	uint64_t total;     /* from Content-Range; UINT64_MAX unknown */
	const char *url;
	struct cache *cache; /* told whether the server honours ranges */
};

static int range_head(void *ctx, const struct http_head *head)
{
	struct range_sink *k = ctx;

	k->got = 0;
	k->skip = 0;
	k->whole = false;
	k->total = UINT64_MAX;
	if (head->status == 200 || head->status == 206)
		cache_note_ranges(k->cache, head->status == 206);
	if (head->status == 200) {
		k->whole = true;
		k->skip = k->off;
		return 0;
	}
	if (head->status == 206 && head->has_range && head->range_first == k->off &&
	    head->range_last >= head->range_first && head->range_last - k->off < k->want) {
		k->total = head->range_total;
		return 0;
	}
	log_warn("range %llu+%zu of \"%s\": the platform answered another range",
		 (unsigned long long)k->off, k->want, k->url);
	return -EIO;
}

static int range_data(void *ctx, const char *p, size_t n)
{
	struct range_sink *k = ctx;
	size_t take;

	if (k->skip) {
		size_t d = n < k->skip ? n : (size_t)k->skip;
		k->skip -= d;
		p += d;
		n -= d;
	}
	take = n < k->want - k->got ? n : k->want - k->got;
	memcpy(k->buf + k->got, p, take);
	k->got += take;
	/* a 200 would go on to the end of the element: stop it here */
	return k->whole && k->got == k->want && n > take ? 1 : 0;
}

/* [off, off+want) into buf; *ret_n short only at the element's end. */
static int range_get(struct alt_reader *r, uint64_t off, size_t want, char *buf, size_t *ret_n)
{
	struct range_sink k = { .off = off, .want = want, .buf = buf, .url = r->url,
				.cache = r->a->cache };
	struct http_request req = {
		.url = r->url,
		.accept = "*/*",
		.has_range = true,
		.range_first = off,
		.range_last = off + want - 1,
		.on_head = range_head,
		.on_data = range_data,
		.ctx = &k,
		.restartable = true,
	};
	int ret = http_request(r->a->http, &req);

	if (ret == -ERANGE && off >= r->size) { /* 416 past the end: nothing there */
		*ret_n = 0;
		return 0;
	}
	if (ret == -ERANGE) {
		log_warn("range %llu+%zu of \"%s\": 416, but the element is %llu bytes",
			 (unsigned long long)off, want, r->url, (unsigned long long)r->size);
		return -EIO;
	}
	if (ret < 0)
		return ret;
	if (k.got < want && off + k.got < r->size) {
		/* the document says there is more: a short answer is broken */
		log_warn("range %llu+%zu of \"%s\": %zu bytes came, the element is %llu",
			 (unsigned long long)off, want, r->url, k.got, (unsigned long long)r->size);
		return -EIO;
	}
	if (k.got < want && !k.whole && k.total != off + k.got) {
		log_warn("range %llu+%zu of \"%s\": %zu bytes came", (unsigned long long)off, want,
			 r->url, k.got);
		return -EIO;
	}
	*ret_n = k.got;
	return 0;
}

/* ---- the reader */

int altinn_reader_open(struct altinn *a, const char *party_id, const char *instance_guid,
		       const char *data_guid, uint64_t size, const struct timespec *last_changed,
		       const char *content_hash, struct alt_reader **ret)
{
	struct alt_reader *r;

	if (!party_id || !instance_guid || !data_guid || !json_is_party_id(party_id) ||
	    !json_is_guid(instance_guid) || !json_is_guid(data_guid))
		return -ENOENT;
	r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->size = size;
	r->data_guid = xstrdup(data_guid);
	r->changed = *last_changed;
	if (content_hash && cache_sha256_hex(content_hash, r->want_sha) < 0)
		log_debug("contentHash \"%s\" of \"%s\" is no sha256: not checked", content_hash,
			  data_guid);
	r->url = xasprintf("%s/instances/%s/%s/data/%s", a->storage, party_id, instance_guid,
			   data_guid);
	pthread_mutex_init(&r->lock, NULL);
	*ret = r;
	return 0;
}

int reader_open_checked(struct altinn *a, const char *url, const char *key, uint64_t size,
			const char *md5, struct alt_reader **ret)
{
	struct alt_reader *r;
	int err;

	if (!a->cache || size == 0 || strlen(key) != 36 ||
	    strspn(key, "0123456789abcdef-") != 36)
		return -ENOSPC;
	r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->size = size;
	r->data_guid = xstrdup(key);
	r->url = xstrdup(url);
	r->checked = true;
	r->entry_tried = true;
	pthread_mutex_init(&r->lock, NULL);
	err = cache_entry_get_checked(a->cache, key, size, md5, url, &r->entry);
	if (err < 0) {
		altinn_reader_close(r);
		return err;
	}
	*ret = r;
	return 0;
}

void altinn_reader_close(struct alt_reader *r)
{
	if (!r)
		return;
	rd_stream_stop(r->stream);
	cache_entry_put(r->entry);
	free(r->data_guid);
	free(r->cache);
	free(r->url);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static bool sequential(struct alt_reader *r, uint64_t off)
{
	return r->have_read && off + RD_KEEP >= r->last_end && off <= r->last_end + RD_KEEP;
}

/* Lends a buffer of ours holding n bytes. */
static void lend_buf(struct alt_loan *loan, char *buf, size_t n, struct alt_bytes *ret)
{
	loan->buf = buf;
	ret->iov[0] = (struct iovec){ buf, n };
	ret->n_iov = n ? 1 : 0;
	ret->len = n;
}

/* A small read fetches RD_RANGE_MIN and keeps the rest for the next one. */
static int range_read(struct alt_reader *r, uint64_t off, size_t len, struct alt_loan *loan,
		      struct alt_bytes *ret)
{
	size_t want = (size_t)rd_min(len > RD_RANGE_MIN ? len : RD_RANGE_MIN, r->size - off);
	char *tmp = xmalloc(want), *buf;
	size_t n;
	int err;

	err = range_get(r, off, want, tmp, &n);
	if (err < 0) {
		free(tmp);
		return err;
	}
	if (want <= len) {
		lend_buf(loan, tmp, n, ret);
		return 0;
	}
	n = n < len ? n : len;
	buf = xmalloc(n ? n : 1);
	memcpy(buf, tmp, n);
	lend_buf(loan, buf, n, ret);
	pthread_mutex_lock(&r->lock);
	free(r->cache);
	r->cache = tmp;
	r->cache_off = off;
	r->cache_len = n;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* A stream that will serve no read again. A read it merely could not
 * serve (too far behind) leaves it running for the others. */
static bool stream_broken(struct rd_stream *s)
{
	bool broken;

	pthread_mutex_lock(&s->lock);
	broken = !s->ring || atomic_load(&s->cancel) || (s->done && s->err != 0);
	pthread_mutex_unlock(&s->lock);
	return broken;
}

/* Serves from the stream if it covers the read: 0, RD_FALLBACK or -errno.
 * Called locked; returns unlocked unless RD_FALLBACK. On success the loan
 * holds a reference to the stream. */
static int try_stream(struct alt_reader *r, struct rd_stream *s, uint64_t off, size_t len,
		      struct alt_loan *loan, struct alt_bytes *ret, struct rd_stream **ret_dead)
{
	int err;

	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&r->lock);
	err = rd_stream_read(s, off, len, loan, ret);
	if (err == 0) {
		loan->stream = s;
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	if ((err == RD_FALLBACK || err == -ETIMEDOUT) && r->stream == s && stream_broken(s)) {
		r->stream = NULL;
		*ret_dead = s;
	}
	if (err != RD_FALLBACK)
		pthread_mutex_unlock(&r->lock);
	rd_stream_unref(s);
	return err;
}

/* Gives err to this open file's reads for cfg->timeout (see the top). */
static void hold_failure(struct alt_reader *r, int err)
{
	pthread_mutex_lock(&r->lock);
	r->fail_err = err;
	r->fail_until = rd_mono_s() + (r->a->cfg->timeout > 0 ? r->a->cfg->timeout : 30);
	pthread_mutex_unlock(&r->lock);
}

/* The cache entry of this reader's element, asked for at its first read
 * (an open that reads nothing fetches nothing); NULL: read uncached. */
static struct cache_entry *reader_entry(struct alt_reader *r)
{
	struct cache_entry *e;

	pthread_mutex_lock(&r->lock);
	if (!r->entry_tried) {
		r->entry_tried = true;
		if (cache_entry_get(r->a->cache, r->data_guid, &r->changed, r->size,
				    r->want_sha[0] ? r->want_sha : NULL, r->url, &r->entry) < 0)
			r->entry = NULL;
	}
	e = r->entry;
	pthread_mutex_unlock(&r->lock);
	return e;
}

/* Serves a read from the cache: its length, CACHE_UNCACHED, or -errno. */
static ssize_t cached_read(struct alt_reader *r, struct cache_entry *e, uint64_t off,
			   size_t len, struct alt_loan *loan, struct alt_bytes *ret)
{
	ssize_t n = cache_wait(e, off, len, &loan->span);

	if (n < 0) {
		if (n != CACHE_UNCACHED)
			hold_failure(r, (int)n);
		return n;
	}
	if ((size_t)n < len && off + (uint64_t)n < r->size)
		return -EIO;
	ret->len = (size_t)n;
	if (loan->span.fd >= 0) {
		/* the entry, held by r until it closes, keeps the file */
		ret->is_fd = true;
		ret->fd = loan->span.fd;
		ret->fd_off = off;
	} else {
		ret->iov[0] = (struct iovec){ (void *)loan->span.mem, (size_t)n };
		ret->n_iov = 1;
	}
	return n;
}

ssize_t altinn_reader_borrow(struct alt_reader *r, uint64_t off, size_t len,
			     struct alt_bytes *ret)
{
	struct rd_stream *s, *dead[2] = { NULL, NULL };
	struct alt_loan *loan;
	bool seq;
	int err;

	memset(ret, 0, sizeof(*ret));
	if (off >= r->size || len == 0)
		return 0;
	len = (size_t)rd_min(len, r->size - off);
	loan = xcalloc(1, sizeof(*loan));
	loan->span.fd = -1;
	ret->loan = loan;

	pthread_mutex_lock(&r->lock);
	if (r->fail_err && rd_mono_s() < r->fail_until) {
		err = r->fail_err; /* the same read again: no second wait */
		pthread_mutex_unlock(&r->lock);
		return err;
	}
	if (r->a->cache) {
		struct cache_entry *e;
		ssize_t n;

		pthread_mutex_unlock(&r->lock);
		e = reader_entry(r);
		n = e ? cached_read(r, e, off, len, loan, ret) : CACHE_UNCACHED;
		if (n == CACHE_UNCACHED && r->checked) {
			/* bytes read around the entry would go unchecked: a
			 * new open fetches them again */
			log_warn("\"%s\": the cache could not serve it; not read unchecked",
				 r->url);
			hold_failure(r, -EIO);
			return -EIO;
		}
		if (n != CACHE_UNCACHED)
			return n;
		pthread_mutex_lock(&r->lock);
	}
	seq = sequential(r, off);
	r->have_read = true;
	r->last_end = off + len;
	s = r->stream;
	if (s) {
		bool covers, near, timed_out;
		pthread_mutex_lock(&s->lock);
		covers = rd_stream_covers(s, off, len);
		near = rd_stream_near(s, off, len);
		timed_out = s->timed_out;
		pthread_mutex_unlock(&s->lock);
		if (timed_out) { /* a read of it waited out the timeout */
			r->stream = NULL;
			dead[0] = s;
			pthread_mutex_unlock(&r->lock);
			err = -ETIMEDOUT;
			goto out_stop;
		}
		if (covers) {
			err = try_stream(r, s, off, len, loan, ret, &dead[0]);
			if (err != RD_FALLBACK)
				goto out_stop;
		} else if (!near) { /* a seek: this stream's bytes are no use */
			r->stream = NULL;
			dead[0] = s;
		}
	}
	if (r->cache && off >= r->cache_off && off + len <= r->cache_off + r->cache_len) {
		char *buf = xmalloc(len);

		memcpy(buf, r->cache + (off - r->cache_off), len);
		pthread_mutex_unlock(&r->lock);
		lend_buf(loan, buf, len, ret);
		err = 0;
		goto out_stop;
	}
	s = NULL;
	if (!r->stream && seq && off + len < r->size)
		s = r->stream = rd_stream_start(r->a, r->url, r->size, off, len);
	if (s) {
		err = try_stream(r, s, off, len, loan, ret, &dead[1]);
		if (err != RD_FALLBACK)
			goto out_stop;
	}
	pthread_mutex_unlock(&r->lock);
	err = range_read(r, off, len, loan, ret);
out_stop:
	if (err < 0 && err != -ECANCELED)
		hold_failure(r, err); /* before the wait for a stream to stop */
	rd_stream_stop(dead[0]);
	rd_stream_stop(dead[1]);
	return err < 0 ? err : (ssize_t)ret->len;
}

void altinn_reader_release(struct alt_bytes *b)
{
	struct alt_loan *loan = b->loan;
	struct rd_stream *s;

	if (!loan)
		return;
	s = loan->stream;
	if (s) {
		pthread_mutex_lock(&s->lock);
		rd_stream_unpin(s, &loan->pin);
		pthread_mutex_unlock(&s->lock);
		rd_stream_unref(s);
	}
	cache_span_done(&loan->span);
	free(loan->buf);
	free(loan);
	memset(b, 0, sizeof(*b));
}

ssize_t altinn_reader_read(struct alt_reader *r, uint64_t off, size_t len, char *buf)
{
	struct alt_bytes b;
	ssize_t n = altinn_reader_borrow(r, off, len, &b);

	if (n > 0 && b.is_fd) {
		size_t done = 0;

		while (done < (size_t)n) {
			ssize_t k = pread(b.fd, buf + done, (size_t)n - done,
					  (off_t)(b.fd_off + done));

			if (k <= 0) {
				n = k < 0 ? -errno : -EIO;
				break;
			}
			done += (size_t)k;
		}
	} else if (n > 0) {
		memcpy(buf, b.iov[0].iov_base, b.iov[0].iov_len);
		if (b.n_iov == 2)
			memcpy(buf + b.iov[0].iov_len, b.iov[1].iov_base, b.iov[1].iov_len);
	}
	altinn_reader_release(&b);
	return n;
}

uint64_t altinn_cached_bytes(struct altinn *a, const char *data_guid,
			     const struct timespec *last_changed)
{
	return cache_local_bytes(a->cache, data_guid, last_changed);
}
