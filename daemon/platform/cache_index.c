/* cache_index.c - the cache's index of entries, and what a start finds.
 *
 * The entries live in one list, the most recently used first: an entry
 * is made, indexed, used and put back here, and dropped (its files
 * removed) when it is evicted, damaged or replaced. Eviction takes the
 * least recently used entry that nobody holds, until the entries fit
 * cache_max and the file system keeps its reserve. At start the
 * directory's files are indexed by their mtime (cache_disk.c names and
 * checks them); everything here is called with the cache locked. */
#include "cache_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

/* ---- the index */

void cache_list_unlink(struct cache *c, struct cache_entry *e)
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

void cache_list_push_front(struct cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

void cache_entry_free(struct cache_entry *e)
{
	if (e->fd >= 0)
		close(e->fd);
	pthread_cond_destroy(&e->cond);
	pthread_cond_destroy(&e->wcond);
	free(e->base);
	free(e->guid);
	free(e->url);
	free(e);
}

/* Takes e out of the index and removes its file; freed by its last user. */
void cache_entry_drop(struct cache *c, struct cache_entry *e)
{
	char *path;

	if (!e->indexed)
		return;
	path = cache_entry_path(e, e->state == E_COMPLETE ? e->sha : NULL);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove \"%s\" from the cache: %s", path, strerror(errno));
	free(path);
	if (e->state != E_COMPLETE && e->recorded)
		cache_record_remove(e);
	cache_list_unlink(c, e);
	e->indexed = false;
	c->used -= e->size;
	if (e->state != E_COMPLETE)
		c->unwritten -= e->size - e->have;
	c->n_entries--;
	if (e->state == E_FILLING)
		e->state = E_FAILED;
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
int cache_make_room(struct cache *c, uint64_t size)
{
	struct cache_entry *e = c->tail;

	if (size > c->max)
		return -ENOSPC;
	while (c->used + size > c->max || !disk_has_room(c, size)) {
		while (e && e->refs > 0) /* complete or partial, but unused */
			e = e->prev;
		if (!e)
			return -ENOSPC;
		struct cache_entry *victim = e;
		e = e->prev;
		log_debug("cache: evicting \"%s\"", victim->base);
		cache_entry_drop(c, victim);
		cache_entry_free(victim);
	}
	return 0;
}

void cache_put_locked(struct cache_entry *e)
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
	if (e->state != E_COMPLETE && e->have == 0)
		cache_entry_drop(c, e); /* a partial entry is kept when it has bytes */
	if (!e->indexed) {
		cache_entry_free(e);
		return;
	}
	close(e->fd);
	e->fd = -1;
}

struct cache_entry *cache_entry_new(struct cache *c, const char *guid,
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
	pthread_cond_init(&e->wcond, NULL);
	return e;
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
/* The bytes a partial entry's record says its file holds: 0 when none,
 * or when the file is shorter. */
static uint64_t read_record(int dfd, const char *part, uint64_t size, const struct stat *st)
{
	char rec[NAME_MAX + 16], buf[32];
	unsigned long long have = 0;
	ssize_t n;
	int fd;

	snprintf(rec, sizeof(rec), "%.*s.filled", (int)(strlen(part) - strlen(".part")), part);
	fd = openat(dfd, rec, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu", &have) != 1 || have >= size || have > (uint64_t)st->st_size)
		return 0;
	return have;
}

/* One file of the directory: a complete entry, or a partial one with its
 * record, into *list; anything else (a partial entry without a record, a
 * stray or damaged file) removed. */
static void load_one(struct cache *c, int dfd, const char *name, struct loaded **list, size_t *n)
{
	char guid[64], sha[65] = "", part[NAME_MAX + 1];
	long long sec;
	long nsec;
	uint64_t size, have = 0;
	int used = 0, k;
	struct stat st;
	struct cache_entry *e;
	bool partial = false;

	k = sscanf(name, "%36[0-9a-f-]-%lld.%9ld-%" SCNu64 "%n-%64[0-9a-f]%n", guid, &sec, &nsec,
		   &size, &used, sha, &used);
	if (k == 4 && strcmp(name + used, ".filled") == 0) {
		/* a record: kept beside its partial entry, which is read below */
		snprintf(part, sizeof(part), "%.*s.part", used, name);
		if (fstatat(dfd, part, &st, 0) == 0)
			return;
	} else if (k == 4 && strcmp(name + used, ".part") == 0) {
		partial = true;
	}
	if ((k != 5 && !partial) || (k == 5 && (name[used] || strlen(sha) != 64)) ||
	    fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode) || size == 0 ||
	    (!partial && (uint64_t)st.st_size != size) ||
	    (partial && !(have = read_record(dfd, name, size, &st)))) {
		if (unlinkat(dfd, name, 0) == 0)
			log_info("cache: removed \"%s\" (partial or damaged)", name);
		return;
	}
	e = cache_entry_new(c, guid, &(struct timespec){ sec, nsec }, size);
	if (strncmp(e->base, name, strlen(e->base)) != 0) { /* not our spelling */
		cache_entry_free(e);
		unlinkat(dfd, name, 0);
		return;
	}
	e->indexed = true;
	if (partial) {
		e->state = E_FILLING;
		e->have = e->recorded = have;
		c->unwritten += size - have;
		log_info("cache: \"%s\" kept with %" PRIu64 " of its %" PRIu64 " bytes", e->base,
			 have, size);
	} else {
		memcpy(e->sha, sha, sizeof(sha));
		e->state = E_COMPLETE;
		e->have = size;
	}
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = (struct loaded){ e, st.st_mtim };
}

/* Indexes the entries, the least recently used (oldest mtime)
 * last, and removes everything else. */
void cache_load_dir(struct cache *c)
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
		cache_list_push_front(c, list[i].e);
		c->used += list[i].e->size;
		c->n_entries++;
	}
	free(list);
	if (cache_make_room(c, 0) < 0)
		log_warn("cache: \"%s\" holds more than cache_max", c->dir);
}

