/* dircache.h - may the kernel keep its copy of a folder's listing?
 *
 * The kernel can keep a folder's listing (FOPEN_CACHE_DIR) and list it
 * again without a READDIR round trip, but it cannot know when the
 * platform's listing changed. Each opendir builds the listing anyway, so
 * dircache compares a fingerprint of it with the one the kernel was last
 * handed for that folder, and lets the kernel keep its copy only when
 * they match: a cached listing is never older than a fresh opendir's.
 *
 * Only one open handle of a folder may feed the kernel's copy: a folder
 * opened while another handle of it is open gets no caching and voids
 * the fingerprint, so listings of two moments never mix in the kernel.
 * An empty listing is never kept: the kernel forgets a kept listing by
 * dropping its pages, and an empty one has no page to drop.
 * Fingerprints live in a bounded table keyed by inode number (numbers
 * are never reused); one lost to a collision costs one fresh listing.
 * Thread-safe. */
#ifndef ALTINNFS_DIRCACHE_H
#define ALTINNFS_DIRCACHE_H

#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>

struct entry;
struct dircache_slot;

/* A folder with the listing e[0..n) is being opened: sets
 * fi->cache_readdir and fi->keep_cache, and returns the slot to hand to
 * dircache_close when the handle goes (NULL: nothing to hand back). */
struct dircache_slot *dircache_open(uint64_t ino, const struct entry *e, size_t n,
				    struct fuse_file_info *fi);
void dircache_close(struct dircache_slot *slot); /* NULL is fine */

#endif
