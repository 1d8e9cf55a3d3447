/* reader_stream.c - a read-ahead stream: one thread, one ring.
 *
 * The thread fetches the element in range windows, RD_WIN_MIN first and
 * twice as large each time up to RD_WIN_MAX, into a ring of
 * ALT_STREAM_WINDOW bytes, asking for the next window once reading has
 * reached the middle of the last one; it blocks while the ring is full,
 * so memory is bounded whatever the element's size. Readers are lent
 * bytes in place; a lent range is pinned until it is given back. A
 * stream no one reads for RD_IDLE_S seconds gives its ring back. When a
 * read uses a stream, and the whole design, is in reader.c. */
#include "reader_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altinn.h"
#include "altinn_i.h"
#include "caps.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "xalloc.h"

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

void rd_stream_unref(struct rd_stream *s)
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
	return rd_min(floor, s->end);
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
			if (rd_mono_s() - s->consumed_at >= RD_IDLE_S) {
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
		if (rd_mono_s() - s->consumed_at >= RD_IDLE_S) {
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
		s->asked = rd_min(s->asked + s->win, s->eof);
		s->win = rd_min(s->win * 2, RD_WIN_MAX);
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

struct rd_stream *rd_stream_start(struct altinn *a, const char *url, uint64_t size, uint64_t off,
				  size_t len)
{
	struct rd_stream *s;

	if (!slot_take(a))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->a = a;
	s->http = a->http;
	s->url = xstrdup(url);
	s->timeout = a->cfg->timeout > 0 ? a->cfg->timeout : 30; /* as http.c */
	atomic_init(&s->refs, 1);
	atomic_init(&s->cancel, false);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->more, NULL);
	pthread_cond_init(&s->room, NULL);
	s->ring = xmalloc(ALT_STREAM_WINDOW);
	s->start = s->end = s->hi = s->win_first = s->asked = off;
	s->eof = size;
	s->win = len > RD_WIN_MIN ? len : RD_WIN_MIN;
	s->consumed_at = rd_mono_s();
	if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
		log_warn("cannot start a stream thread; reading with ranges");
		rd_stream_unref(s);
		return NULL;
	}
	log_debug("stream of \"%s\" from %llu", url, (unsigned long long)off);
	return s;
}

/* Ends the transfer, waits for the thread and drops the reader's reference.
 * Called by whoever took the stream out of its reader, never locked. */
void rd_stream_stop(struct rd_stream *s)
{
	if (!s)
		return;
	atomic_store(&s->cancel, true);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->more);
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	rd_stream_unref(s);
}

/* ---- reading from a stream */

/* Could the stream serve [off, off+len) now or soon? s locked. Bytes
 * not in yet are worth waiting for when they are near and the ring can
 * hold them beside the RD_KEEP bytes behind the furthest read. Bytes lent
 * to readers may hold the ring back meanwhile, but only until their
 * replies are written. */
bool rd_stream_covers(struct rd_stream *s, uint64_t off, size_t len)
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
bool rd_stream_near(struct rd_stream *s, uint64_t off, size_t len)
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
void rd_stream_unpin(struct rd_stream *s, struct rd_pin *pin)
{
	unpin(s, pin);
	if (s->done && s->err == 0 && s->hi >= s->end && !s->pins)
		stream_release_ring(s); /* all handed out */
	stream_poke(s);
}

/* 0 with the bytes lent from the ring (the loan pins them), RD_FALLBACK,
 * or -errno. */
int rd_stream_read(struct rd_stream *s, uint64_t off, size_t len, struct alt_loan *loan,
		       struct alt_bytes *ret)
{
	struct rd_pin *pin = &loan->pin;
	time_t since = rd_mono_s();
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->timed_out || !rd_stream_covers(s, off, len)) {
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
			size_t n = s->end > off ? (size_t)rd_min(len, s->end - off) : 0;

			lend_ring(s, off, n, ret);
			pin->need = 0;
			if (off + n > s->hi)
				s->hi = off + n;
			s->consumed_at = rd_mono_s();
			stream_poke(s);
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (s->done) {
			r = RD_FALLBACK; /* a stall set timed_out above */
			break;
		}
		if (!rd_stream_covers(s, off, len)) {
			r = RD_FALLBACK;
			break;
		}
		if (rd_mono_s() - since >= s->timeout) {
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
	rd_stream_unpin(s, pin);
	pthread_mutex_unlock(&s->lock);
	return r;
}
