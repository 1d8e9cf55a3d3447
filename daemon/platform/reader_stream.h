/* reader_stream.h - the read-ahead streams of reader.c, for platform/ only.
 *
 * A stream is a thread that fetches one element in growing range windows
 * into a bounded ring, lending readers bytes in place (reader.c's opening
 * comment tells the whole design); reader_stream.c runs it, reader.c
 * decides when a read uses one. */
#ifndef ALTINNFS_READER_STREAM_H
#define ALTINNFS_READER_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"

struct altinn;
struct alt_bytes;

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

static inline time_t rd_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static inline uint64_t rd_min(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

/* Starts a stream of the element at url (size bytes) from off, its first
 * window at least len: NULL when ALT_MAX_STREAMS run already or no thread
 * could start (read with ranges then). The caller holds one reference. */
struct rd_stream *rd_stream_start(struct altinn *a, const char *url, uint64_t size, uint64_t off,
				  size_t len);
/* Ends the transfer, waits for the thread and drops the caller's
 * reference; NULL is fine. Never called locked. */
void rd_stream_stop(struct rd_stream *s);
void rd_stream_unref(struct rd_stream *s);
/* Could the stream serve [off, off+len) now or soon (covers)? Is it
 * worth keeping for reads around off (near)? s locked. */
bool rd_stream_covers(struct rd_stream *s, uint64_t off, size_t len);
bool rd_stream_near(struct rd_stream *s, uint64_t off, size_t len);
/* 0 with [off, off+len) lent from the ring (loan pins it), RD_FALLBACK
 * when the stream cannot serve it, or -errno. */
int rd_stream_read(struct rd_stream *s, uint64_t off, size_t len, struct alt_loan *loan,
		   struct alt_bytes *ret);
/* Gives a loan's pin back; s locked. */
void rd_stream_unpin(struct rd_stream *s, struct rd_pin *pin);

#endif
