/* cache.h - data element bytes kept on local disk (docs/cache.md).
 *
 * An entry is the bytes of one data element as it was at one lastChanged:
 * a replaced element is another entry. One streaming download per entry
 * fills it from byte 0, shared by every reader of it; a reader whose bytes
 * are on disk is served at once, a reader ahead of the download waits for
 * it. The cache holds at most `max` bytes of entries (least recently used
 * unused entries go first, entries in use never) and leaves a free-space
 * reserve on its file system; an element it cannot hold is read uncached.
 * A download that no open file holds any longer stops at once; what it
 * fetched stays as a partial entry.
 *
 * On disk: "<guid>-<sec>.<nsec>-<size>-<sha256>" for a complete entry and
 * "....part" while one fills, with "....filled" recording how many of its
 * first bytes are on disk. Complete entries and recorded partial ones
 * survive a restart; a complete one is checked (size, then its sha256 at
 * its first use) before it is served; a truncated or corrupted one, or a
 * partial one without a record, is removed and fetched again.
 *
 * Every function may be called from any thread at once. */
#ifndef ALTINNFS_CACHE_H
#define ALTINNFS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "altinn.h"

struct http;
struct cache;
struct cache_entry;

/* Opens dir (made if missing), indexes the complete entries and the
 * recorded partial ones, and removes the rest. max 0: *ret is NULL and nothing is cached;
 * CONFIG_CACHE_MAX_AUTO: a quarter of the free space (with the entries
 * already there) of dir's file system, at most 16 GiB. timeout is
 * how long a read may wait for a download that makes no progress. */
int cache_new(const char *dir, uint64_t max, int timeout, struct http *http,
	      struct cache **ret);
/* Stops the downloads under way and waits for them. NULL is fine. */
void cache_free(struct cache *c);

/* Where the server's ranges stand: what the downloads learn (a 206 or a
 * 200 to "Range: bytes=0-") and the reader learns, shared per host. */
enum cache_ranges { CACHE_RANGES_UNKNOWN, CACHE_RANGES_YES, CACHE_RANGES_NO };
void cache_note_ranges(struct cache *c, bool honoured);
enum cache_ranges cache_ranges(struct cache *c);

/* The entry of an element, shared with its other readers, its download
 * started if it is not complete. want_sha (64 lowercase hex digits, or
 * NULL) is the sha256 the platform gave for it: then no byte of the entry
 * is served before all of them hashed to it, and a mismatch fails its
 * reads with -EIO and drops it. -ENOSPC when the cache cannot hold it
 * now (read it uncached). Give it back with cache_entry_put. */
int cache_entry_get(struct cache *c, const char *guid, const struct timespec *changed,
		    uint64_t size, const char *want_sha, const char *url,
		    struct cache_entry **ret);

/* The entry of bytes checked by their MD5 instead (a Broker transfer,
 * keyed by its id, a lowercase GUID): served as they arrive, except the
 * last byte, which waits until all of them hashed to md5 (32 hex digits;
 * NULL: no check), so a reader to the end never gets a wrong file
 * without an error; a mismatch fails that read with -EIO and drops the
 * entry. Reads far ahead wait for the download rather than take a
 * Range of their own (it would go unchecked), and cache_wait never
 * answers CACHE_UNCACHED for want of ranges. -ENOSPC as above. */
int cache_entry_get_checked(struct cache *c, const char *key, uint64_t size, const char *md5,
			    const char *url, struct cache_entry **ret);

/* Removes the checked entry of key from disk, when no reader holds it
 * (a Broker transfer confirmed: its bytes are of no more use); one in
 * use stays, to go as the least recently used. NULL c is fine. */
void cache_forget_checked(struct cache *c, const char *key);

/* A contentHash as 64 lowercase hex digits: from hex (either case, an
 * optional "sha256:" before it) or from the base64 of the 32 bytes. 0, or
 * -EINVAL for anything else (another algorithm: not checked). */
int cache_sha256_hex(const char *hash, char ret[65]);
void cache_entry_put(struct cache_entry *e); /* NULL is fine */

/* Where cache_wait found the bytes: len bytes at off in the file fd
 * (valid while the entry is held), or at mem (lent from the download's
 * memory, or a copy). Give it back with cache_span_done. */
struct cache_span {
	int fd;           /* -1: at mem */
	const char *mem;
	size_t len;
	char *copy;       /* private */
	size_t copy_cap;
	struct cache_entry *pinned;
	int pin;          /* ... its buffer */
};
void cache_span_done(struct cache_span *s);

/* Waits until [off, off+len) of the element has arrived, if the download
 * has not got there yet, and says where it is in *ret: the bytes
 * available from off (short only at the element's end), in the entry's
 * file or still in the download's memory. Or CACHE_UNCACHED when the
 * entry cannot serve it (a failure on this side, such as a full disk; or
 * the read is far ahead and the server honours ranges: a ranged request
 * is quicker), or the download's -errno (-EIO, -ETIMEDOUT when it made no
 * progress, or too little, for the timeout). */
#define CACHE_UNCACHED (-10000)
ssize_t cache_wait(struct cache_entry *e, uint64_t off, size_t len, struct cache_span *ret);

/* Bytes of that element (at that lastChanged) on local disk. */
uint64_t cache_local_bytes(struct cache *c, const char *guid, const struct timespec *changed);

/* For status.json; c NULL: the cache is off. */
void cache_get_stats(struct cache *c, struct alt_cache_status *ret);

#endif
