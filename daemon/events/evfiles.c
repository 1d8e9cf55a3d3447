/* evfiles.c - events become files, and old files go (see events.c).
 *
 * ev_deliver is the one way an event becomes a file, whether it came
 * from a poll or the webhook. Under the app's lock it picks the events
 * not seen before, then, a chunk at a time: writes each to state_dir
 * under a dot-name (no FUSE round trip), fsyncs them, and renames each
 * into place through the mount, in order, so a watcher sees one
 * IN_MOVED_TO per event, in arrival order, for a file that is complete
 * and durable (the mount fsyncs the folder before a rename returns).
 * While one chunk is renamed, a helper thread writes and syncs the next:
 * the disk's waits and the mount's overlap. Only then are the ids
 * recorded and the cursor moved, in one transaction. A crash in between
 * leaves files the store does not know yet, which events.c records at
 * start, and dot-names, which it removes.
 *
 * A file is named "<12-digit number>_<type>_<id>.json": the number
 * counts arrivals, so `ls` lists in arrival order and shows the type.
 *
 * Retention removes the oldest files, through the mount (watchers see
 * IN_DELETE), beyond events_keep or older than events_keep_days, and
 * trims the remembered ids to ALT_EVENTS_SEEN. */
#include "evfiles.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "evstore.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "metrics.h"
#include "mountio.h"
#include "xalloc.h"

/* Parts of a file name taken from the event: keeps names far below 255. */
#define NAME_TYPE_MAX 100
#define NAME_ID_MAX 64
/* Seconds between looks for files older than events_keep_days. */
#define AGE_CHECK_INTERVAL 60
/* Files made between trims of the remembered ids. */
#define TRIM_EVERY 1000

int64_t ev_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ev_ts_us(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000 + ts->tv_nsec / 1000;
}

/* ---- file names */

static void name_part(const char *s, size_t max, char *out)
{
	size_t n = 0;

	for (; *s && n < max; s++) {
		unsigned char c = (unsigned char)*s;
		out[n++] = (isalnum(c) || c == '.' || c == '-' || c == '_') && c < 0x80 ? (char)c : '-';
	}
	if (n == 0)
		out[n++] = '-';
	out[n] = '\0';
}

static char *event_name(uint64_t seq, const char *type, const char *id)
{
	char t[NAME_TYPE_MAX + 1], i[NAME_ID_MAX + 1];

	name_part(type, NAME_TYPE_MAX, t);
	name_part(id, NAME_ID_MAX, i);
	return xasprintf("%012" PRIu64 "_%s_%s.json", seq, t, i);
}

/* The number of an event file's name; false for any other name. */
bool ev_name_seq(const char *name, uint64_t *ret)
{
	size_t len = strlen(name);
	uint64_t seq = 0;

	if (len < 18 || name[12] != '_' || strcmp(name + len - 5, ".json") != 0)
		return false;
	for (int i = 0; i < 12; i++) {
		if (!isdigit((unsigned char)name[i]))
			return false;
		seq = seq * 10 + (uint64_t)(name[i] - '0');
	}
	*ret = seq;
	return true;
}

/* ---- delivery */

/* Files written and fsynced together before any is renamed into place:
 * the first fsync commits the journal for all of them, the others find
 * little left to do. Bounded so the open files stay few (two chunks are
 * open at a time). */
#define DELIVER_CHUNK 64

/* One event on its way to becoming a file. */
struct pending {
	const struct json_event *e;
	uint64_t seq;
	char *name; /* the file's name */
	char *tmp;  /* its dot-name while it is written, in the same folder */
	int fd;
};

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The bytes go straight to state_dir under a dot-name: nobody watches
 * for those, and no FUSE round trip is spent on them. */
static int write_tmp(struct ev_app *ea, struct pending *p)
{
	int r;

	p->tmp = xasprintf(".%s.tmp", p->name);
	p->fd = openat(ea->disk_fd, p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (p->fd < 0)
		return log_errno(-errno, "cannot create \"%s/%s\"", ea->disk_dir, p->tmp);
	r = write_all(p->fd, p->e->doc, p->e->doc_len);
	if (r == 0 && sync_file_range(p->fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0)
		r = -errno;
	if (r < 0)
		log_errno(r, "cannot write \"%s/%s\"", ea->disk_dir, p->tmp);
	return r;
}

static int sync_tmp(struct ev_app *ea, struct pending *p)
{
	int r = fsync(p->fd) < 0 ? -errno : 0;

	if (close(p->fd) < 0 && r == 0)
		r = -errno;
	p->fd = -1;
	if (r < 0)
		log_errno(r, "cannot write \"%s/%s\"", ea->disk_dir, p->tmp);
	return r;
}

/* The file appears through the mount, complete and durable (the mount
 * fsyncs the folder before the rename returns): a watcher sees one
 * IN_MOVED_TO. An instance event first drops the tree's cached view of
 * the instance, so a listing made after the file appears is fresh. */
static int place(struct ev_app *ea, struct pending *p)
{
	struct events *ev = ea->ev;
	char *path = xasprintf("%s/%s", ea->mnt_dir, p->tmp), *placed = NULL;
	int r;

	if (p->e->party && ev->deps.instance_changed)
		ev->deps.instance_changed(ev->deps.ctx, ea->org, ea->name, p->e->party, p->e->guid);
	r = mountio_move(path, ea->mnt_dir, p->name, &placed);
	free(path);
	if (r == 0) {
		free(p->name);
		p->name = placed; /* the same, unless it was taken (it never is) */
		free(p->tmp);
		p->tmp = NULL;
	}
	return r;
}

static void pending_clear(struct ev_app *ea, struct pending *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp)
		unlinkat(ea->disk_fd, p->tmp, 0);
	free(p->tmp);
	free(p->name);
}

/* by id, then by position in the batch (seq holds it meanwhile) */
static int cmp_id(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	int c = strcmp(x->e->id, y->e->id);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The events that will become files, in order: not known, not older
 * than the watermark, and each id once (the first). Under app->lock. */
static int select_new(struct ev_app *ea, const struct json_event *evs, size_t n,
		      struct pending *ret, size_t *ret_n)
{
	size_t k = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t t = ev_ts_us(&evs[i].time);
		bool known = false;
		int r;

		if (t > 0 && t < ea->watermark_us)
			continue; /* older than anything remembered: it was here before */
		r = evstore_known(ea->ev->store, ea->id, evs[i].id, &known);
		if (r < 0)
			return r;
		if (!known)
			ret[k++] = (struct pending){ .e = &evs[i], .seq = i, .fd = -1 };
	}
	qsort(ret, k, sizeof(*ret), cmp_id);
	for (size_t i = 0; i < k; i++)
		if (m == 0 || strcmp(ret[i].e->id, ret[m - 1].e->id) != 0)
			ret[m++] = ret[i];
	qsort(ret, m, sizeof(*ret), cmp_seq);
	for (size_t i = 0; i < m; i++) {
		ret[i].seq = ea->next_seq + i;
		ret[i].name = event_name(ret[i].seq, ret[i].e->type, ret[i].e->id);
	}
	*ret_n = m;
	return 0;
}

/* Writes and syncs one chunk of files under their dot-names. */
struct chunk {
	struct ev_app *ea;
	struct pending *p;
	size_t n;
	int r;
};

static void *prepare(void *arg)
{
	struct chunk *c = arg;

	c->r = 0;
	for (size_t i = 0; c->r == 0 && i < c->n; i++)
		c->r = write_tmp(c->ea, &c->p[i]);
	for (size_t i = 0; c->r == 0 && i < c->n; i++)
		c->r = sync_tmp(c->ea, &c->p[i]);
	return NULL;
}

/* Makes the m pending files appear, in order; *ret_placed counts those
 * that did. While one chunk is renamed into place, a helper thread
 * writes and syncs the next, so the disk's wait and the mount's overlap. */
static int make_files(struct ev_app *ea, struct pending *p, size_t m, size_t *ret_placed)
{
	struct chunk cur = { ea, p, m < DELIVER_CHUNK ? m : DELIVER_CHUNK, 0 }, next;
	size_t placed = 0;
	int r = 0;

	prepare(&cur);
	while (cur.n > 0) {
		size_t at = (size_t)(cur.p - p) + cur.n;
		pthread_t helper;
		bool threaded = false;

		next = (struct chunk){ ea, p + at, m - at < DELIVER_CHUNK ? m - at : DELIVER_CHUNK, 0 };
		if (cur.r == 0 && next.n > 0)
			threaded = pthread_create(&helper, NULL, prepare, &next) == 0;
		r = cur.r;
		for (size_t i = 0; r == 0 && i < cur.n; i++) {
			r = place(ea, &cur.p[i]);
			if (r == 0)
				placed++;
		}
		if (threaded)
			pthread_join(helper, NULL);
		else if (r == 0 && next.n > 0)
			prepare(&next);
		if (r < 0)
			break;
		cur = next;
	}
	*ret_placed = placed;
	return r;
}

int ev_deliver(struct ev_app *ea, const struct json_event *evs, size_t n, bool update_cursor,
	       size_t *ret_done)
{
	struct pending *p = xcalloc(n ? n : 1, sizeof(*p));
	struct evstore_event *recs;
	size_t m = 0, placed = 0, done = n;
	int r;

	pthread_mutex_lock(&ea->lock);
	r = select_new(ea, evs, n, p, &m);
	if (r < 0)
		done = 0;
	if (r == 0 && m > 0) {
		r = make_files(ea, p, m, &placed);
		if (r < 0) /* done: the events before the first that did not appear */
			done = (size_t)(p[placed].e - evs);
	}
	recs = xcalloc(placed ? placed : 1, sizeof(*recs));
	for (size_t i = 0; i < placed; i++)
		recs[i] = (struct evstore_event){ p[i].e->id, p[i].seq, p[i].name, p[i].e->type,
						  ev_ts_us(&p[i].e->time) };
	if (placed || (update_cursor && done > 0)) {
		/* the files are there: a failure to record them is repaired at start */
		int r2 = evstore_record(ea->ev->store, ea->id, recs, placed,
					update_cursor && done > 0 ? evs[done - 1].id : NULL);
		r = r < 0 ? r : r2;
	}
	if (update_cursor && done > 0 && r == 0) {
		free(ea->after);
		free(ea->from);
		ea->after = xstrdup(evs[done - 1].id);
		ea->from = NULL;
		pthread_mutex_lock(&ea->status_lock);
		snprintf(ea->status_cursor, sizeof(ea->status_cursor), "%s", ea->after);
		pthread_mutex_unlock(&ea->status_lock);
	}
	ea->next_seq += placed;
	ea->added += placed;
	atomic_fetch_add(&ea->n_files, (long long)placed);
	pthread_mutex_unlock(&ea->lock);
	metrics_event_files(placed);
	for (size_t i = 0; i < m; i++)
		pending_clear(ea, &p[i]);
	free(recs);
	free(p);
	*ret_done = done;
	return r;
}

/* ---- retention */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The event files in the folder on disk, oldest first. */
static char **list_files(struct ev_app *ea, size_t *ret_n)
{
	DIR *d = opendir(ea->disk_dir);
	size_t n = 0, cap = 0;
	struct dirent *de;
	char **names = NULL;
	uint64_t seq;

	while (d && (de = readdir(d))) {
		if (!ev_name_seq(de->d_name, &seq))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret_n = n;
	return names;
}

/* Removes, through the mount, the oldest files beyond keep and those last
 * changed before cutoff (0: none). Files are in arrival order, so the
 * first one that is young enough and within the count ends the pass. */
static void prune_files(struct ev_app *ea, uint64_t keep, time_t cutoff)
{
	size_t n, removed = 0;
	char **names = list_files(ea, &n);

	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", ea->disk_dir, names[i]);
		struct stat st;
		bool old = cutoff && stat(path, &st) == 0 && st.st_mtime < cutoff;

		free(path);
		if (n - removed <= keep && !old)
			break;
		path = xasprintf("%s/%s", ea->mnt_dir, names[i]);
		if (unlink(path) < 0 && errno != ENOENT) {
			log_errno(-errno, "cannot remove \"%s\"", path);
			free(path);
			break; /* the mount is going away, or worse: try later */
		}
		free(path);
		removed++;
	}
	if (removed)
		log_info("retention removed %zu event file(s) of \"%s\"", removed, ea->id);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void ev_retain(struct ev_app *ea, bool check_age)
{
	const struct config *cfg = ea->ev->cfg;
	uint64_t keep = cfg->events_keep > 0 ? (uint64_t)cfg->events_keep : ALT_EVENTS_SEEN;
	long long n = atomic_load(&ea->n_files);
	time_t now = time(NULL), cutoff = 0;
	int64_t watermark;

	bool periodic = false;

	if (pthread_mutex_trylock(&ea->prune_lock) != 0)
		return; /* another thread is at it */
	if (check_age && now - ea->aged_at >= AGE_CHECK_INTERVAL) {
		periodic = true;
		ea->aged_at = now;
		if (cfg->events_keep_days > 0)
			cutoff = now - (time_t)cfg->events_keep_days * 86400;
	}
	/* a little slack, so a steady stream does not list the folder for
	 * every event */
	if (cutoff || (n > 0 && (uint64_t)n > keep + keep / 64))
		prune_files(ea, keep, cutoff);
	pthread_mutex_unlock(&ea->prune_lock);

	pthread_mutex_lock(&ea->lock);
	if (ea->added >= TRIM_EVERY || periodic) {
		if (evstore_trim(ea->ev->store, ea->id, ALT_EVENTS_SEEN, &watermark) == 0)
			ea->watermark_us = watermark;
		ea->added = 0;
	}
	pthread_mutex_unlock(&ea->lock);
}
