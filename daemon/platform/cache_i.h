/* cache_i.h - what cache.c, cache_fill.c and cache_disk.c share: the
 * entry and the cache, their caps, and the functions that cross files.
 * Private to the cache (docs/cache.md); cache.h is its face. */
#ifndef ALTINNFS_CACHE_I_H
#define ALTINNFS_CACHE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache.h"

struct md5;
struct sha256;

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
				      * instead of one per 16 KiB callback of curl;
				      * two such buffers, one written while the other
				      * fills */
#define CACHE_STAGE_BIG 8            /* downloads at once with CACHE_STAGEs; more get */
#define CACHE_STAGE_SMALL (128u << 10) /* ... two halves of this: 32 at once stay under
					* 20 MiB */
#define CACHE_KEEP (16ull << 20)     /* an entry's newest bytes kept in the page cache
				      * while it is written: the download's lead and
				      * its readers' window */

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
	struct sha256 *md; /* the download's: sha256 of bytes [0, have) as they
			    * were written, or NULL (it began past byte 0) */
	struct md5 *md5;   /* the same for want_md5, or NULL */
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
	bool checked;   /* cache_entry_get_checked's: the last byte waits for
			 * want_md5 to match, and no read takes a Range */
	char want_md5[33]; /* ... the MD5 its bytes must have, or "" */
	uint64_t have;  /* bytes [0, have) are in the file */
	uint64_t recorded; /* ... of which on disk and in its ".filled" record (the
			    * download's, or set at start) */
	uint64_t wanted; /* the furthest byte a reader asked for */
	/* The download's two buffers of stage_cap bytes each (one mapping):
	 * buf[cur], the stage, takes bytes [have + wlen, have + wlen + staged)
	 * from curl while its writer hashes and writes buf[!cur], bytes
	 * [have, have + wlen), to the file (cache_fill.c). */
	char *buf[2];
	int pins[2];    /* readers lent bytes of each */
	int cur;
	size_t staged;
	size_t wlen;
	size_t stage_cap;
	bool pin_wait;  /* the download waits for pins to drop */
	bool writer_on; /* the writer thread runs (else the download writes) */
	bool writer_end; /* ... and is told to end once wlen is written */
	pthread_cond_t wcond; /* wlen became 0 (written), or bytes to write came */
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

/* The bytes that came: in the file, being written, or in the stage */
static inline uint64_t cache_came(const struct cache_entry *e)
{
	return e->have + e->wlen + e->staged;
}

static inline time_t cache_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* cache_index.c: the index; called locked */
void cache_list_unlink(struct cache *c, struct cache_entry *e);
void cache_list_push_front(struct cache *c, struct cache_entry *e);
void cache_entry_free(struct cache_entry *e);
/* Takes e out of the index and removes its files; freed by its last user. */
void cache_entry_drop(struct cache *c, struct cache_entry *e);
/* Removes unused entries, least recently used first, until size more
 * bytes fit: 0 or -ENOSPC. */
int cache_make_room(struct cache *c, uint64_t size);
void cache_put_locked(struct cache_entry *e);
struct cache_entry *cache_entry_new(struct cache *c, const char *guid,
				    const struct timespec *changed, uint64_t size);

/* cache_fill.c: starts (or resumes) the download of e; locked */
void cache_fill_start(struct cache_entry *e);

/* cache_disk.c: the entry's file: complete (sha given) or partial */
char *cache_entry_path(const struct cache_entry *e, const char *sha);
/* The sha256 of the first size bytes of fd, in hex: 0, or -EIO when the
 * file is shorter. */
int cache_file_sha256(int fd, uint64_t size, char hex[65]);
bool cache_entry_check(struct cache_entry *e);
/* Makes [0, have) of a partial entry survive a restart: its file is
 * synced, then "<base>.filled" records have. The download's thread,
 * unlocked: 0 or -errno. */
int cache_record_filled(struct cache_entry *e, uint64_t have);
void cache_record_remove(const struct cache_entry *e);
/* cache_max unset: a quarter of what the cache could have at start */
uint64_t cache_auto_max(const char *dir);

/* cache_index.c: indexes what dir holds (the least recently used last),
 * removes the rest */
void cache_load_dir(struct cache *c);

#endif
