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
 * server back meanwhile.
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
#include "cache.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

#define RD_RANGE_MIN (128u << 10) /* smallest range request */
#define RD_WIN_MIN (1u << 20)     /* the first window of a stream */
#define RD_WIN_MAX (16u << 20)    /* windows grow up to this */
#define RD_KEEP (2u << 20)        /* consumed bytes kept for late readers */
#define RD_AHEAD (4u << 20)       /* how far past the arrived bytes a read may wait */
#define RD_IDLE_S 30              /* a stream no one reads stops after this */
#define RD_FALLBACK 1             /* "the stream cannot serve this read" */

/* A reader inside the stream keeps [off, ...) in the ring, however far
 * other readers have got, until it gives its bytes back. */
struct rd_pin {
	uint64_t off;
	uint64_t need; /* waiting for the bytes up to here; 0 once served */
	struct rd_pin *next;
};

struct rd_stream {
	struct http *http;
	char *url;
	int timeout;        /* cfg->timeout, seconds */
	atomic_int refs;    /* the reader's pointer + reads and loans in progress */
	atomic_bool cancel; /* set once by whoever stops the stream */
	pthread_t thread;
	struct altinn *a;   /* for the stream slot count */

	pthread_mutex_t lock;
	pthread_cond_t more; /* bytes arrived or the stream ended */
	pthread_cond_t room; /* for the thread: bytes consumed, a reader waits, or stop */
	/* protected by lock: */
	char *ring;          /* NULL once given back (idle, or all consumed) */
	uint64_t start;      /* lowest offset still in the ring */
	uint64_t end;        /* offset after the last byte received */
	uint64_t hi;         /* furthest offset handed to a reader */
	uint64_t eof;        /* where the element ends (its size, or less if the
			      * platform says so) */
	uint64_t win_first;  /* the latest window is [win_first, asked) */
	uint64_t asked;
	uint64_t win;        /* the size of the next window */
	uint64_t skip;       /* bytes to drop first (a 200 answer to our range) */
	struct rd_pin *pins;
	bool done;           /* no more bytes will come */
	bool idle;           /* ... because no one was reading */
	int err;             /* its result, 0 or -errno */
	bool timed_out;      /* it stalled, or kept a read waiting cfg->timeout:
			      * every read of it fails, none falls back */
	bool thread_waiting; /* the thread waits on room */
	time_t consumed_at;  /* CLOCK_MONOTONIC seconds of the last bytes out */
};

/* What keeps lent bytes: a pin in a stream's ring, or a buffer of ours. */
struct alt_loan {
	struct rd_stream *stream;
	struct rd_pin pin;
	char *buf;
	struct cache_span span; /* bytes of the cache */
};

struct alt_reader {
	struct altinn *a;
	char *url;
	uint64_t size;
	char *data_guid;
	struct timespec changed;  /* the element's lastChanged: its cache key */
	char want_sha[65];        /* its contentHash as a sha256 in hex, or "" */
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

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static uint64_t min_u64(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

/* ---- stream slots: ALT_MAX_STREAMS rings at most */

static bool slot_take(struct altinn *a)
{
	int n = atomic_load(&a->n_streams);

	while (n < ALT_MAX_STREAMS)
		if (atomic_compare_exchange_weak(&a->n_streams, &n, n + 1))
			return true;
	return false;
}

/* Gives the ring back; locked. */
static void stream_release_ring(struct rd_stream *s)
{
	if (!s->ring)
		return;
	free(s->ring);
	s->ring = NULL;
	atomic_fetch_sub(&s->a->n_streams, 1);
}

static void stream_unref(struct rd_stream *s)
{
	if (atomic_fetch_sub(&s->refs, 1) > 1)
		return;
	stream_release_ring(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->more);
	pthread_cond_destroy(&s->room);
	free(s->url);
	free(s);
}

/* Wakes the thread if it waits for room or for readers; locked. */
static void stream_poke(struct rd_stream *s)
{
	if (s->thread_waiting)
		pthread_cond_signal(&s->room);
}

static void wait_1s(pthread_cond_t *cond, pthread_mutex_t *lock)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_cond_timedwait(cond, lock, &until);
}

/* ---- the stream thread */

static int stream_head(void *ctx, const struct http_head *head)
{
	struct rd_stream *s = ctx;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	s->skip = 0;
	if (head->status == 200 || head->status == 206)
		cache_note_ranges(s->a->cache, head->status == 206);
	if (head->status == 200) {
		/* the server ignored Range: this answer is the whole element,
		 * and it is the last one we ask for */
		s->skip = s->win_first;
		s->asked = s->eof;
	} else if (head->status != 206 || !head->has_range || head->range_first != s->win_first ||
		   head->range_last >= s->asked) {
		log_warn("window %llu-%llu of \"%s\": the platform answered another range",
			 (unsigned long long)s->win_first, (unsigned long long)s->asked - 1, s->url);
		r = -EIO;
	} else if (head->range_last + 1 < s->asked) {
		/* the document gave the element's size: an answer that ends
		 * before it is broken, not the end of the file, or a cp would
		 * exit 0 with a short copy */
		log_warn("window %llu-%llu of \"%s\": the platform says the element ends at "
			 "%llu, its document says %llu", (unsigned long long)s->win_first,
			 (unsigned long long)s->asked - 1, s->url,
			 (unsigned long long)head->range_last + 1, (unsigned long long)s->eof);
		r = -EIO;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The lowest offset the ring must still hold: RD_KEEP behind the furthest
 * read, or lower for a reader still using its bytes; locked. Bytes below
 * it are dropped only when their room is needed. */
static uint64_t stream_floor(struct rd_stream *s)
{
	uint64_t floor = s->hi > RD_KEEP ? s->hi - RD_KEEP : 0;

	for (struct rd_pin *p = s->pins; p; p = p->next)
		if (p->off < floor)
			floor = p->off;
	if (floor < s->start)
		floor = s->start;
	return min_u64(floor, s->end);
}

/* Is a reader waiting for bytes that have now arrived? locked */
static bool stream_need_met(struct rd_stream *s)
{
	for (struct rd_pin *p = s->pins; p; p = p->next)
		if (p->need && p->need <= s->end)
			return true;
	return false;
}

/* Copies n bytes in at s->end, waiting for room; locked. */
static int stream_put(struct rd_stream *s, const char *p, size_t n)
{
	while (n > 0) {
		size_t space, at, k;

		if (atomic_load(&s->cancel))
			return -ECANCELED;
		/* drop only the oldest bytes this write needs room for, down
		 * to the floor: the rest stays for late readers */
		if (s->end + n > s->start + ALT_STREAM_WINDOW) {
			uint64_t floor = stream_floor(s);
			uint64_t want = s->end + n - ALT_STREAM_WINDOW;

			s->start = want < floor ? want : floor;
		}
		space = ALT_STREAM_WINDOW - (size_t)(s->end - s->start);
		if (space == 0) {
			if (mono_s() - s->consumed_at >= RD_IDLE_S) {
				s->idle = true;
				return -ECANCELED;
			}
			s->thread_waiting = true;
			wait_1s(&s->room, &s->lock);
			s->thread_waiting = false;
			continue;
		}
		at = (size_t)(s->end % ALT_STREAM_WINDOW);
		k = n < space ? n : space;
		if (k > ALT_STREAM_WINDOW - at)
			k = ALT_STREAM_WINDOW - at; /* up to the wrap; the rest next turn */
		/* copy unlocked so readers copy out meanwhile: this is room
		 * past s->end, which no reader may touch */
		pthread_mutex_unlock(&s->lock);
		memcpy(s->ring + at, p, k);
		pthread_mutex_lock(&s->lock);
		s->end += k;
		p += k;
		n -= k;
		if (stream_need_met(s))
			pthread_cond_broadcast(&s->more);
	}
	return 0;
}

static int stream_data(void *ctx, const char *p, size_t n)
{
	struct rd_stream *s = ctx;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->skip) {
		size_t k = n < s->skip ? n : (size_t)s->skip;
		s->skip -= k;
		p += k;
		n -= k;
	}
	if (!s->ring)
		r = -ECANCELED;
	else if (n)
		r = stream_put(s, p, n);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Should the next window be asked for now? Once reading has reached the
 * middle of the latest window, or a reader waits past it; locked. */
static bool stream_wanted(struct rd_stream *s)
{
	if (s->hi >= s->win_first + (s->asked - s->win_first) / 2)
		return true;
	for (struct rd_pin *p = s->pins; p; p = p->next)
		if (p->need > s->asked)
			return true;
	return false;
}

/* Waits until the next window is wanted: 0, or -ECANCELED when the stream
 * is stopped or no one has read for RD_IDLE_S; locked. */
static int stream_wait_wanted(struct rd_stream *s)
{
	for (;;) {
		if (atomic_load(&s->cancel) || !s->ring)
			return -ECANCELED;
		if (stream_wanted(s))
			return 0;
		if (mono_s() - s->consumed_at >= RD_IDLE_S) {
			s->idle = true;
			return -ECANCELED;
		}
		s->thread_waiting = true;
		wait_1s(&s->room, &s->lock);
		s->thread_waiting = false;
	}
}

/* Fetches [s->win_first, s->asked); locked, unlocked meanwhile. */
static int stream_fetch(struct rd_stream *s)
{
	struct http_request req = {
		.url = s->url,
		.accept = "*/*",
		.has_range = true,
		.range_first = s->win_first,
		.range_last = s->asked - 1,
		.bulk = true,
		.on_head = stream_head,
		.on_data = stream_data,
		.ctx = s,
		.cancel = &s->cancel,
	};
	int r;

	pthread_mutex_unlock(&s->lock);
	r = http_request(s->http, &req);
	pthread_mutex_lock(&s->lock);
	if (r == -ERANGE) { /* 416 inside the size the document gave: broken */
		log_warn("window %llu-%llu of \"%s\": 416, but the element is %llu bytes",
			 (unsigned long long)s->win_first, (unsigned long long)s->asked - 1, s->url,
			 (unsigned long long)s->eof);
		r = -EIO;
	}
	if (r == 0 && s->end != s->asked && s->asked != s->eof) {
		log_warn("window %llu-%llu of \"%s\": %llu bytes came", (unsigned long long)s->win_first,
			 (unsigned long long)s->asked - 1, s->url,
			 (unsigned long long)(s->end - s->win_first));
		r = -EIO;
	}
	return r;
}

static void *stream_main(void *arg)
{
	struct rd_stream *s = arg;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	while (r == 0 && s->asked < s->eof) {
		r = stream_wait_wanted(s);
		if (r < 0)
			break;
		s->win_first = s->asked;
		s->asked = min_u64(s->asked + s->win, s->eof);
		s->win = min_u64(s->win * 2, RD_WIN_MAX);
		r = stream_fetch(s);
	}
	s->done = true;
	s->err = r;
	if (r == -ETIMEDOUT)
		s->timed_out = true;
	if (s->idle) {
		log_debug("stream of \"%s\" idle at %llu; stopped", s->url,
			  (unsigned long long)s->end);
		stream_release_ring(s);
	}
	pthread_cond_broadcast(&s->more);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static struct rd_stream *stream_start(struct alt_reader *r, uint64_t off, size_t len)
{
	struct rd_stream *s;

	if (!slot_take(r->a))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->a = r->a;
	s->http = r->a->http;
	s->url = xstrdup(r->url);
	s->timeout = r->a->cfg->timeout > 0 ? r->a->cfg->timeout : 30; /* as http.c */
	atomic_init(&s->refs, 1);
	atomic_init(&s->cancel, false);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->more, NULL);
	pthread_cond_init(&s->room, NULL);
	s->ring = xmalloc(ALT_STREAM_WINDOW);
	s->start = s->end = s->hi = s->win_first = s->asked = off;
	s->eof = r->size;
	s->win = len > RD_WIN_MIN ? len : RD_WIN_MIN;
	s->consumed_at = mono_s();
	if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
		log_warn("cannot start a stream thread; reading with ranges");
		stream_unref(s);
		return NULL;
	}
	log_debug("stream of \"%s\" from %llu", r->url, (unsigned long long)off);
	return s;
}

/* Ends the transfer, waits for the thread and drops the reader's reference.
 * Called by whoever took the stream out of r->stream, never locked. */
static void stream_stop(struct rd_stream *s)
{
	if (!s)
		return;
	atomic_store(&s->cancel, true);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->more);
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	stream_unref(s);
}

/* ---- reading from a stream */

/* Could the stream serve [off, off+len) now or soon? s locked. Bytes
 * not in yet are worth waiting for when they are near and the ring can
 * hold them beside the RD_KEEP bytes behind the furthest read. Bytes lent
 * to readers may hold the ring back meanwhile, but only until their
 * replies are written. */
static bool stream_covers(struct rd_stream *s, uint64_t off, size_t len)
{
	uint64_t low = s->hi > s->start + RD_KEEP ? s->hi - RD_KEEP : s->start;

	if (!s->ring || atomic_load(&s->cancel) || off < s->start)
		return false;
	if (s->done)
		return s->err == 0 || off + len <= s->end;
	return off <= s->end + RD_AHEAD && off + len <= low + ALT_STREAM_WINDOW;
}

/* Is the stream worth keeping for reads around off? s locked. A read
 * just behind it (late from another thread) does not stop it. */
static bool stream_near(struct rd_stream *s, uint64_t off, size_t len)
{
	if (!s->ring || (s->done && s->err != 0))
		return false;
	return off + len + RD_KEEP >= s->start && off <= s->end + RD_AHEAD;
}

/* The ring's bytes [off, off+n) as one or two pieces; s locked or pinned. */
static void lend_ring(struct rd_stream *s, uint64_t off, size_t n, struct alt_bytes *ret)
{
	size_t at = (size_t)(off % ALT_STREAM_WINDOW);
	size_t first = n < ALT_STREAM_WINDOW - at ? n : ALT_STREAM_WINDOW - at;

	ret->iov[0] = (struct iovec){ s->ring + at, first };
	ret->n_iov = 1;
	if (n > first) {
		ret->iov[1] = (struct iovec){ s->ring, n - first };
		ret->n_iov = 2;
	}
	ret->len = n;
}

static void unpin(struct rd_stream *s, struct rd_pin *pin)
{
	for (struct rd_pin **p = &s->pins; *p; p = &(*p)->next)
		if (*p == pin) {
			*p = pin->next;
			return;
		}
}

/* Takes the pin out; when everything has been handed out, the ring is no
 * longer needed. s locked. */
static void stream_unpin(struct rd_stream *s, struct rd_pin *pin)
{
	unpin(s, pin);
	if (s->done && s->err == 0 && s->hi >= s->end && !s->pins)
		stream_release_ring(s); /* all handed out */
	stream_poke(s);
}

/* 0 with the bytes lent from the ring (the loan pins them), RD_FALLBACK,
 * or -errno. */
static int stream_read(struct rd_stream *s, uint64_t off, size_t len, struct alt_loan *loan,
		       struct alt_bytes *ret)
{
	struct rd_pin *pin = &loan->pin;
	time_t since = mono_s();
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->timed_out || !stream_covers(s, off, len)) {
		r = s->timed_out ? -ETIMEDOUT : RD_FALLBACK;
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	pin->off = off;
	pin->need = off + len;
	pin->next = s->pins;
	s->pins = pin;
	stream_poke(s); /* perhaps the next window is wanted now */
	for (;;) {
		if (s->timed_out) {
			r = -ETIMEDOUT;
			break;
		}
		if (!s->ring || atomic_load(&s->cancel) || off < s->start) {
			r = RD_FALLBACK;
			break;
		}
		if (s->end >= off + len || (s->done && s->err == 0)) {
			size_t n = s->end > off ? (size_t)min_u64(len, s->end - off) : 0;

			lend_ring(s, off, n, ret);
			pin->need = 0;
			if (off + n > s->hi)
				s->hi = off + n;
			s->consumed_at = mono_s();
			stream_poke(s);
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (s->done) {
			r = RD_FALLBACK; /* a stall set timed_out above */
			break;
		}
		if (!stream_covers(s, off, len)) {
			r = RD_FALLBACK;
			break;
		}
		if (mono_s() - since >= s->timeout) {
			/* stalled, or trickling too slowly to be of use: the
			 * readers waiting with us must not try again either */
			s->timed_out = true;
			atomic_store(&s->cancel, true);
			pthread_cond_broadcast(&s->more);
			r = -ETIMEDOUT;
			break;
		}
		wait_1s(&s->more, &s->lock);
	}
	stream_unpin(s, pin);
	pthread_mutex_unlock(&s->lock);
	return r;
}

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

void altinn_reader_close(struct alt_reader *r)
{
	if (!r)
		return;
	stream_stop(r->stream);
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
	size_t want = (size_t)min_u64(len > RD_RANGE_MIN ? len : RD_RANGE_MIN, r->size - off);
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
	err = stream_read(s, off, len, loan, ret);
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
	stream_unref(s);
	return err;
}

/* Gives err to this open file's reads for cfg->timeout (see the top). */
static void hold_failure(struct alt_reader *r, int err)
{
	pthread_mutex_lock(&r->lock);
	r->fail_err = err;
	r->fail_until = mono_s() + (r->a->cfg->timeout > 0 ? r->a->cfg->timeout : 30);
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
	len = (size_t)min_u64(len, r->size - off);
	loan = xcalloc(1, sizeof(*loan));
	loan->span.fd = -1;
	ret->loan = loan;

	pthread_mutex_lock(&r->lock);
	if (r->fail_err && mono_s() < r->fail_until) {
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
		covers = stream_covers(s, off, len);
		near = stream_near(s, off, len);
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
		s = r->stream = stream_start(r, off, len);
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
	stream_stop(dead[0]);
	stream_stop(dead[1]);
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
		stream_unpin(s, &loan->pin);
		pthread_mutex_unlock(&s->lock);
		stream_unref(s);
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
