/* events.c - platform events become files in apps/<org>/<app>/events/.
 *
 * The module: its state on disk, its hooks on the events/ folders, the
 * webhook's deliveries, and the threads' lives. The parts:
 *
 *   evpoll.c   a poller per app, following the persisted cursor (the
 *              truth: the webhook only brings events sooner);
 *   webhook.c  the push endpoint; on_push below takes its deliveries,
 *              and hands those of other families' resources (Broker,
 *              Correspondence) to the push bus (core/pushbus.h);
 *   evfiles.c  ev_deliver, the one way an event becomes exactly one
 *              file, and retention;
 *   evstore.c  the cursor, the ids seen and the acknowledgements.
 *
 * At start each app's folder is checked against the store: a file the
 * store does not know (a crash came between the file and its record) is
 * recorded from its contents, and a write cut short (a dot-name) is
 * removed. Only then can a redelivered event be recognised.
 *
 * Users may only remove files here: that acknowledges the event for
 * good. Everything else (create, write, rename, mkdir) is refused with
 * EACCES unless the daemon's own threads do it. */
#include "events.h"

#include "evfiles.h"
#include "evpoll.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "pushbus.h"
#include "webhook.h"
#include "xalloc.h"

#define VALIDATION_TYPE "platform.events.validatesubscription"

/* ---- hooks: what may happen in events/ */

static struct ev_app *find_app(struct events *ev, const char *org, const char *app)
{
	for (size_t i = 0; i < ev->n_apps; i++)
		if (strcmp(ev->apps[i].org, org) == 0 && strcmp(ev->apps[i].name, app) == 0)
			return &ev->apps[i];
	return NULL;
}

static int hook_check(void *ctx, const struct local_call *c)
{
	if (c->self)
		return 0;
	if (c->op == LOCAL_REMOVE && !c->is_dir)
		return 0; /* rm acknowledges */
	return -EACCES;
}

static void hook_done(void *ctx, const struct local_call *c)
{
	struct events *ev = ctx;
	struct ev_app *ea;
	uint64_t seq;

	if (c->op != LOCAL_REMOVE || c->is_dir || !ev_name_seq(c->rel, &seq))
		return;
	ea = find_app(ev, c->org, c->app);
	if (!ea)
		return;
	atomic_fetch_sub(&ea->n_files, 1);
	if (c->self)
		return; /* retention */
	if (evstore_ack(ev->store, ea->id, seq) == 0)
		log_info("event file \"%s\" of \"%s\" removed: acknowledged", c->rel, ea->id);
}

static int hook_xattr(void *ctx, const struct local_call *c, const char *name, char **ret)
{
	struct events *ev = ctx;
	struct ev_app *ea = find_app(ev, c->org, c->app);
	bool want_id = strcmp(name, "user.altinn.id") == 0;
	char *id = NULL, *type = NULL;
	uint64_t seq;

	if (!ea || !ev_name_seq(c->rel, &seq) || (!want_id && strcmp(name, "user.altinn.type") != 0))
		return -ENODATA;
	if (evstore_lookup(ev->store, ea->id, seq, c->rel, &id, &type) < 0)
		return -ENODATA;
	if (want_id || (type && *type)) {
		*ret = want_id ? id : type;
		free(want_id ? type : id);
		return 0;
	}
	free(id);
	free(type);
	return -ENODATA;
}

/* ---- the webhook */

/* The mounted app an event is about: its resource, else its source's
 * path ("{base}/{org}/{app}/instances/..."). */
static struct ev_app *app_of_event(struct events *ev, const struct json_event *e)
{
	for (size_t i = 0; i < ev->n_apps; i++) {
		struct ev_app *ea = &ev->apps[i];
		char *path = xasprintf("/%s/%s", ea->org, ea->name);
		const char *p = strstr(e->source, path);
		size_t n = strlen(path);

		free(path);
		if (strcmp(e->resource, ea->resource) == 0 || (p && (p[n] == '/' || p[n] == '\0')))
			return ea;
	}
	return NULL;
}

static int on_push(void *ctx, const char *body, size_t len)
{
	struct events *ev = ctx;
	struct json_event e;
	struct ev_app *ea;
	size_t done;
	int r;

	if (json_parse_event(body, len, &e) < 0)
		return -EINVAL;
	if (strcmp(e.type, VALIDATION_TYPE) == 0) {
		int64_t id = json_validation_subscription(e.source);

		log_info("webhook: subscription validated (\"%s\")", e.source);
		if (id > 0) {
			pushbus_validated(ev->deps.push, id);
			atomic_store(&ev->last_validated_id, id);
			for (size_t i = 0; i < ev->n_apps; i++)
				if (atomic_load(&ev->apps[i].sub_id) == id)
					atomic_store(&ev->apps[i].validated, true);
		}
		json_event_clear(&e);
		return 0;
	}
	ea = app_of_event(ev, &e);
	if (!ea) {
		/* another family's resource (Broker, Correspondence)? */
		r = pushbus_deliver(ev->deps.push, e.resource, e.type, body, len);
		if (r == -ENOENT)
			log_warn("webhook: event \"%s\" from \"%s\" is about nothing mounted; "
				 "ignored", e.id, e.source);
		json_event_clear(&e);
		return r == -ENOENT ? 0 : r;
	}
	r = ev_deliver(ea, &e, 1, false, &done);
	json_event_clear(&e);
	if (r < 0)
		return -EIO; /* the platform retries; the poller catches up anyway */
	ev_retain(ea, false);
	return 0;
}

/* ---- start-up: the state on disk */

/* The whole of an event file: an event from polling may be as large as
 * the page that brought it (ALT_MAX_JSON_BODY), far above a webhook's. */
static int read_event_file(int dfd, const char *name, char **ret, size_t *ret_len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	size_t len = 0;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > ALT_MAX_JSON_BODY) {
		close(fd);
		return -EFBIG;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* A file whose record a crash lost: record it from its contents. */
static void recover_file(struct ev_app *ea, int dfd, const char *name, uint64_t seq)
{
	struct json_event e;
	char *buf = NULL;
	size_t n = 0;

	if (read_event_file(dfd, name, &buf, &n) < 0) {
		log_warn("event file \"%s\" of \"%s\" cannot be read back after a crash", name,
			 ea->id);
		return;
	}
	if (json_parse_event(buf, n, &e) == 0) {
		struct evstore_event rec = { e.id, seq, name, e.type, ev_ts_us(&e.time) };

		if (evstore_record(ea->ev->store, ea->id, &rec, 1, NULL) == 0)
			log_info("recorded event file \"%s\" of \"%s\" after a crash", name, ea->id);
		json_event_clear(&e);
	}
	free(buf);
}

/* Counts the files, repairs what a crash left, finds the next number:
 * every file must be known to the store (a crash may have come between
 * a file and its record), and dot-names are writes cut short. */
static int recover(struct ev_app *ea)
{
	uint64_t max_db = 0, max_disk = 0, seq;
	long long n = 0;
	struct dirent *de;
	DIR *d;
	int r;

	r = evstore_max_seq(ea->ev->store, ea->id, &max_db);
	if (r < 0)
		return r;
	d = opendir(ea->disk_dir);
	if (!d)
		return log_errno(-errno, "cannot open \"%s\"", ea->disk_dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *id = NULL, *type = NULL;

		if (de->d_name[0] == '.' && len > 5 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!ev_name_seq(de->d_name, &seq))
			continue;
		n++;
		max_disk = seq > max_disk ? seq : max_disk;
		r = evstore_lookup(ea->ev->store, ea->id, seq, de->d_name, &id, &type);
		free(id);
		free(type);
		if (r == -ENOENT)
			recover_file(ea, dirfd(d), de->d_name, seq);
	}
	closedir(d);
	ea->next_seq = (max_db > max_disk ? max_db : max_disk) + 1;
	atomic_store(&ea->n_files, n);
	return 0;
}

/* Where a new state starts (events_start): nothing (all: from the
 * oldest event the platform keeps), or a time; events before it are
 * taken as seen. */
static int start_point(const char *start, char **ret_from, int64_t *ret_watermark)
{
	struct timespec ts;
	char buf[32];

	if (strcmp(start, "all") == 0) {
		*ret_from = NULL;
		*ret_watermark = 0;
		return 0;
	}
	if (strcmp(start, "now") == 0)
		clock_gettime(CLOCK_REALTIME, &ts);
	else if (json_parse_time(start, &ts) < 0)
		return log_errno(-EINVAL, "events_start \"%s\": want now, all or an ISO-8601 time",
				 start);
	ts.tv_nsec = 0;
	json_format_time(&ts, buf, sizeof(buf));
	*ret_from = xstrdup(buf);
	*ret_watermark = ev_ts_us(&ts);
	return 0;
}

static int mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			r = -errno;
		*s = c;
		if (r < 0 || c == '\0')
			break;
	}
	free(p);
	return r;
}

static int app_init(struct events *ev, struct ev_app *ea, const struct config_app *ca)
{
	struct evstore_cursor c = { 0 };
	char *base;
	int r;

	ea->ev = ev;
	ea->org = ca->org;
	ea->name = ca->app;
	ea->disk_fd = -1;
	ea->id = xasprintf("%s/%s", ca->org, ca->app);
	ea->mnt_dir = xasprintf("%s/apps/%s/%s/events", ev->deps.mountpoint, ca->org, ca->app);
	ea->disk_dir = xasprintf("%s/apps/%s/%s/events", ev->cfg->state_dir, ca->org, ca->app);
	ea->resource = xasprintf("urn:altinn:resource:app_%s_%s", ca->org, ca->app);
	base = config_app_base(ev->cfg, ca->org);
	ea->source = xasprintf("%s/%s/%s", base, ca->org, ca->app);
	free(base);
	pthread_mutex_init(&ea->lock, NULL);
	pthread_mutex_init(&ea->status_lock, NULL);
	pthread_mutex_init(&ea->prune_lock, NULL);
	atomic_init(&ea->n_files, 0);

	r = mkdir_p(ea->disk_dir);
	if (r < 0)
		return log_errno(r, "cannot create \"%s\"", ea->disk_dir);
	ea->disk_fd = open(ea->disk_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ea->disk_fd < 0)
		return log_errno(-errno, "cannot open \"%s\"", ea->disk_dir);
	r = evstore_get_cursor(ev->store, ea->id, &c);
	if (r == -ENOENT) {
		r = start_point(ev->cfg->events_start, &c.from, &c.watermark_us);
		if (r == 0)
			r = evstore_put_cursor(ev->store, ea->id, &c);
	}
	if (r < 0) {
		evstore_cursor_clear(&c);
		return r;
	}
	ea->after = c.after;
	ea->from = c.from;
	ea->watermark_us = c.watermark_us;
	snprintf(ea->status_cursor, sizeof(ea->status_cursor), "%s", c.after ? c.after : "");
	return recover(ea);
}

static void app_clear(struct ev_app *ea)
{
	if (!ea->ev)
		return;
	if (ea->disk_fd >= 0)
		close(ea->disk_fd);
	free(ea->id);
	free(ea->mnt_dir);
	free(ea->disk_dir);
	free(ea->resource);
	free(ea->source);
	free(ea->after);
	free(ea->from);
	pthread_mutex_destroy(&ea->lock);
	pthread_mutex_destroy(&ea->status_lock);
	pthread_mutex_destroy(&ea->prune_lock);
}

/* The secret in webhook_url: its `code` query parameter, in characters
 * that need no escaping, so the comparison never depends on decoding. */
static int webhook_secret(const char *url, char **ret)
{
	const char *p = strchr(url, '?');

	while (p && *p) {
		size_t n;

		p++;
		n = strcspn(p, "&#");
		if (strncmp(p, "code=", 5) == 0 && n > 5) {
			char *code = xstrndup(p + 5, n - 5);

			if (strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789-._~") != n - 5) {
				free(code);
				break;
			}
			if (n - 5 < 16)
				log_warn("webhook_url: the code is short; 32 random characters are better");
			*ret = code;
			return 0;
		}
		p += n;
		if (*p != '&')
			break;
	}
	log_error("webhook_url needs a secret: end it with ?code=<random letters and digits>");
	return -EINVAL;
}

/* ---- the module */

static void events_free(struct events *ev);

/* Opens the state (cursors, seen ids) under cfg->state_dir; starts no
 * thread. */
static int events_new(const struct events_deps *deps, struct events **ret)
{
	const struct config *cfg = deps->cfg;
	pthread_condattr_t attr;
	struct events *ev;
	char *path;
	int r;

	if (!cfg->webhook_listen != !cfg->webhook_url) {
		log_error("push needs both webhook_listen and webhook_url");
		return -EINVAL;
	}
	ev = xcalloc(1, sizeof(*ev));
	ev->deps = *deps;
	ev->cfg = cfg;
	atomic_init(&ev->stopping, false);
	pthread_mutex_init(&ev->sleep_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->sleep_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (cfg->webhook_url) {
		r = webhook_secret(cfg->webhook_url, &ev->secret);
		if (r < 0)
			goto out_free;
	}
	path = xasprintf("%s/events.db", cfg->state_dir);
	r = evstore_open(path, &ev->store);
	free(path);
	if (r < 0)
		goto out_free;
	ev->apps = xcalloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(*ev->apps));
	for (size_t i = 0; i < cfg->n_apps; i++) {
		ev->n_apps++;
		r = app_init(ev, &ev->apps[i], &cfg->apps[i]);
		if (r < 0)
			goto out_free;
	}
	*ret = ev;
	return 0;
out_free:
	events_free(ev);
	return r;
}

static bool events_hooks(struct events *ev, struct local_hooks *ret)
{
	ret->ctx = ev;
	ret->check = hook_check;
	ret->done = hook_done;
	ret->xattr = hook_xattr;
	return true;
}

static int events_start(struct events *ev)
{
	int r;

	if (ev->secret) {
		r = webhook_start(ev->cfg->webhook_listen, ev->secret, on_push, ev, &ev->webhook);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ev->n_apps; i++) {
		struct ev_app *ea = &ev->apps[i];

		r = -pthread_create(&ea->thread, NULL, ev_poller, ea);
		if (r < 0)
			return log_errno(r, "cannot start the events poller of \"%s\"", ea->id);
		ea->started = true;
	}
	return 0;
}

static void events_status(struct events *ev, const char *org, const char *app, struct alt_status_app *st)
{
	struct ev_app *ea = ev ? find_app(ev, org, app) : NULL;
	long long n;

	if (!ea)
		return;
	pthread_mutex_lock(&ea->status_lock);
	snprintf(st->event_cursor, sizeof(st->event_cursor), "%s", ea->status_cursor);
	st->last_poll_at = ea->last_poll_at;
	pthread_mutex_unlock(&ea->status_lock);
	n = atomic_load(&ea->n_files);
	st->pending_event_files = n > 0 ? (uint64_t)n : 0;
	st->push = ev->secret != NULL;
	st->push_subscription = atomic_load(&ea->sub_id);
	st->push_validated = atomic_load(&ea->validated);
}

static void events_stop(struct events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->sleep_lock);
	atomic_store(&ev->stopping, true);
	pthread_cond_broadcast(&ev->sleep_cond);
	pthread_mutex_unlock(&ev->sleep_lock);
	webhook_stop(ev->webhook);
}

static void events_free(struct events *ev)
{
	if (!ev)
		return;
	events_stop(ev);
	for (size_t i = 0; i < ev->n_apps; i++)
		if (ev->apps[i].started)
			pthread_join(ev->apps[i].thread, NULL);
	webhook_free(ev->webhook);
	for (size_t i = 0; i < ev->n_apps; i++)
		app_clear(&ev->apps[i]);
	free(ev->apps);
	evstore_close(ev->store);
	free(ev->secret);
	pthread_cond_destroy(&ev->sleep_cond);
	pthread_mutex_destroy(&ev->sleep_lock);
	free(ev);
}

/* ---- the family, as fs/ and main.c see it (family.h) */

static int family_start(void *ctx)
{
	return events_start(ctx);
}

static void family_status_app(void *ctx, const char *org, const char *app,
			      struct alt_status_app *st)
{
	events_status(ctx, org, app, st);
}

static void family_stop(void *ctx)
{
	events_stop(ctx);
}

static void family_free(void *ctx)
{
	events_free(ctx);
}

static const struct fs_readme_part readme[] = {
	{ "apps/<org>/<app>/events/<number>_<type>_<id>.json",
	  "one file per platform event (the CloudEvent as sent), numbered in arrival\n"
	  "order; each appears complete, once; rm acknowledges it for good\n",
	  "inotifywait -m -e moved_to apps/{app}/events/" },
	{ NULL, NULL, NULL },
};

int events_family(const struct family_deps *deps, struct fs_family *ret)
{
	const struct events_deps ed = { deps->cfg, deps->a, deps->mountpoint, deps->invalidate,
					 deps->invalidate_ctx, deps->push };
	struct events *ev;
	int r = events_new(&ed, &ev);

	if (r < 0)
		return log_errno(r, "cannot open the events state in \"%s\"", deps->cfg->state_dir);
	*ret = (struct fs_family){ .name = "events", .ctx = ev, .status_app = family_status_app,
				   .readme = readme,
				   .start = family_start, .stop = family_stop,
				   .free = family_free };
	ret->areas[0].name = "events";
	events_hooks(ev, &ret->areas[0].hooks);
	return 0;
}
