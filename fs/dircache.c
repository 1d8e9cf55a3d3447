/* dircache.c - fingerprints of the listings the kernel keeps (see
 * dircache.h).
 *
 * A listing's fingerprint is FNV-1a over its names and kinds in order:
 * what the kernel's copy holds (names, order, file types). Attributes are
 * not in it; the kernel keeps those per inode, for their own TTL. */
#include "dircache.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "tree.h"

#define DIRCACHE_SLOTS 16384 /* ~384 KiB; an ls -lR of 1,200 instances opens ~4,500 folders */

struct dircache_slot {
	uint64_t ino;
	uint64_t fp;   /* the listing the kernel was last handed; 0: unknown */
	unsigned open; /* handles of this folder open now */
};

static struct {
	pthread_mutex_t lock;
	struct dircache_slot slots[DIRCACHE_SLOTS]; /* protected by lock */
} dc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fingerprint(const struct entry *e, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		unsigned char kind = (unsigned char)e[i].kind;

		h = fnv(h, e[i].name, strlen(e[i].name) + 1);
		h = fnv(h, &kind, 1);
	}
	return h ? h : 1;
}

struct dircache_slot *dircache_open(uint64_t ino, const struct entry *e, size_t n,
				    struct fuse_file_info *fi)
{
	struct dircache_slot *s = &dc.slots[ino % DIRCACHE_SLOTS];
	uint64_t fp = fingerprint(e, n);

	pthread_mutex_lock(&dc.lock);
	if (s->ino != ino) {
		if (s->open) {
			/* the slot serves a folder open now: this one goes
			 * uncached, and the kernel drops any copy it has */
			pthread_mutex_unlock(&dc.lock);
			return NULL;
		}
		*s = (struct dircache_slot){ .ino = ino };
	}
	if (n == 0) {
		/* The kernel drops a kept listing by dropping its pages, and an
		 * empty listing has none: once kept, it would be answered from
		 * the kernel's copy until remount, whatever the platform says.
		 * So an empty listing is never kept, and the next one handed
		 * over starts afresh. */
		s->fp = 0;
	} else if (s->open == 0) {
		fi->cache_readdir = 1;
		fi->keep_cache = s->fp == fp;
		s->fp = fp;
	} else {
		s->fp = 0; /* another handle may be feeding the kernel's copy */
	}
	s->open++;
	pthread_mutex_unlock(&dc.lock);
	return s;
}

void dircache_close(struct dircache_slot *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&dc.lock);
	s->open--;
	pthread_mutex_unlock(&dc.lock);
}
