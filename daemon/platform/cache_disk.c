/* cache_disk.c - the cache's files: their names, records and hashes
 * (docs/cache.md); cache_index.c indexes them at start.
 *
 * A complete entry is "<guid>-<sec>.<nsec>-<size>-<sha256>", a partial one
 * "<guid>-<sec>.<nsec>-<size>.part" with, once its download stopped or
 * idled, "<...>.filled": the count of its first bytes that are on disk
 * (the file is synced before the record is written and renamed into
 * place). At start, complete entries of the size their name says, and
 * partial ones with a record their file can hold, are indexed, least
 * recently used (oldest mtime) last; everything else is removed. A
 * complete entry's bytes are hashed at its first use (cache.c) and
 * compared with its name; a partial one is hashed whole once complete. */
#include "cache_i.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "log.h"
#include "sha256.h"
#include "xalloc.h"

char *cache_entry_path(const struct cache_entry *e, const char *sha)
{
	return sha ? xasprintf("%s/%s-%s", e->c->dir, e->base, sha)
		   : xasprintf("%s/%s.part", e->c->dir, e->base);
}

static char *record_path(const struct cache_entry *e, const char *tail)
{
	return xasprintf("%s/%s.filled%s", e->c->dir, e->base, tail);
}

int cache_record_filled(struct cache_entry *e, uint64_t have)
{
	char *path = record_path(e, ""), *tmp = record_path(e, ".tmp");
	int fd = -1, dfd = -1, r = 0;

	if (fdatasync(e->fd) < 0) {
		r = -errno;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%" PRIu64 "\n", have) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		goto out;
	}
	dfd = open(e->c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd); /* the rename too */
out:
	if (r < 0)
		log_warn("cannot record the bytes of cache entry \"%s\": %s", e->base, strerror(-r));
	else
		log_debug("cache: \"%s\" holds %" PRIu64 " bytes for a restart", e->base, have);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(path);
	free(tmp);
	return r;
}

void cache_record_remove(const struct cache_entry *e)
{
	char *path = record_path(e, "");

	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove \"%s\": %s", path, strerror(errno));
	free(path);
}

/* The sha256 of the first size bytes of fd, in hex: 0, or -EIO when the
 * file is shorter. */
int cache_file_sha256(int fd, uint64_t size, char hex[65])
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


/* Is a complete entry found on disk what its name says? Read in full
 * once, at its first use since the start. */
bool cache_entry_check(struct cache_entry *e)
{
	char hex[65];

	return cache_file_sha256(e->fd, e->size, hex) == 0 && strcmp(hex, e->sha) == 0;
}

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

/* cache_max unset: a quarter of what the cache could have at start (the
 * free space and its own entries), at most CACHE_AUTO_CAP. */
uint64_t cache_auto_max(const char *dir)
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
