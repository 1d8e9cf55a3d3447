/* cfollow.c - a sent message's receipt kept current (corr_i.h draws the
 * states).
 *
 * Three ways feed it, all in the family's one worker thread, so a
 * receipt is never changed by two at once:
 *
 *  - the events feed: per resource, a cursor item in the journal, due
 *    every poll_interval, reads Correspondence's events after the last
 *    one taken (GET /events/api/v1/events?resource=...&after=...). Each
 *    event becomes a file in correspondence/<resourceId>/events/ (named
 *    as apps' events: <12-digit number>_<type>_<id>.json), and moves the
 *    status of the correspondence it is about upwards (published, read,
 *    confirmed, publish failed); a purge is read from /details. The
 *    files are written before the cursor moves, and a file's number is
 *    saved with the cursor, so a crash between writes the same names
 *    again: each event is one file.
 *  - pushed events (cpush.c), with push on: applied as a page's are, as
 *    they come; the same turn of the cursor item keeps the resource's
 *    subscription (cpush_keep). The poll stays the writer of events/.
 *  - the reconciling read: a sent message is looked at fast until each
 *    correspondence is published (publication is the platform's
 *    background job), then every correspondence_reconcile seconds by
 *    /details (as the sender: this adds no Fetched) until each is final
 *    or CORR_FOLLOW_FOR_MS has passed. It catches what events do not
 *    say (Fetched has no event) and what a lost event or a feed turned
 *    off would miss; a 429 ends the round until its Retry-After. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_corr.h"
#include "config.h"
#include "corr_i.h"
#include "log.h"
#include "receipt.h"
#include "xalloc.h"

/* the fast pace until published: 0.5 s doubling to 30 s */
#define FAST_MS 500
#define FAST_MAX_MS 30000
/* events per page, and pages per turn of the worker */
#define PAGE_SIZE 100
#define PAGES_PER_TURN 20

static void free_pairs(char **a, char **b)
{
	for (size_t i = 0; a && a[i]; i++) {
		free(a[i]);
		free(b[i]);
	}
	free(a);
	free(b);
}

static bool set_status(struct queue_item *it, const char *id, const char *status,
		       const char *changed, bool upward_only)
{
	char *results = corr_result_apply(it->f[CF_RESULTS], id, status, changed, upward_only);

	if (!results)
		return false;
	queue_set(&it->f[CF_RESULTS], results);
	free(results);
	return true;
}

/* Nothing unpublished left: the slow pace (or the end, when each is final). */
static void to_slow(struct corr *c, struct queue_item *it, int64_t now)
{
	char **rcp, **ids;

	corr_result_following(it->f[CF_RESULTS], false, &rcp, &ids);
	if (!rcp[0] || now - it->created_at > CORR_FOLLOW_FOR_MS) {
		it->state = CR_SENT;
		it->done_at = now;
	} else {
		queue_set(&it->f[CF_SLOW], "1");
		it->tries = 0;
		it->due_at = now + (int64_t)c->cfg->correspondence_reconcile * 1000;
	}
	free_pairs(rcp, ids);
}

/* The fast pace: the overview of each unpublished one. */
static bool follow_fast(struct corr *c, struct queue_item *it)
{
	char **rcp = NULL, **ids = NULL;
	bool changed = false;

	corr_result_unsettled(it->f[CF_RESULTS], &rcp, &ids);
	for (size_t i = 0; rcp[i] && !worker_stopping(&c->worker); i++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		char *status = NULL;

		if (corr_status(c->a, ids[i], &status, &ans) == 0 && status &&
		    strcmp(status, "Initialized") != 0)
			changed |= set_status(it, ids[i], status, NULL, false);
		app_answer_clear(&ans);
		free(status);
	}
	free_pairs(rcp, ids);
	return changed;
}

/* The slow pace: /details of each not yet final; false on a 429. */
static bool follow_slow(struct corr *c, struct queue_item *it, bool *changed,
			long *ret_retry_after_ms)
{
	char **rcp = NULL, **ids = NULL;
	bool done = true;

	corr_result_following(it->f[CF_RESULTS], false, &rcp, &ids);
	for (size_t i = 0; rcp[i] && !worker_stopping(&c->worker); i++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		char *status = NULL, *when = NULL;

		if (corr_details(c->a, ids[i], &status, &when, &ans) == 0)
			*changed |= set_status(it, ids[i], status, when, false);
		else if (ans.status == 429 || ans.status == 503) {
			*ret_retry_after_ms = ans.retry_after_ms;
			done = false;
		}
		app_answer_clear(&ans);
		free(status);
		free(when);
		if (!done)
			break;
	}
	free_pairs(rcp, ids);
	return done;
}

void cr_follow(struct corr *c, struct queue_item *it)
{
	int64_t now = queue_now_ms(c->q), wait;
	bool changed = false;
	char **rcp, **ids;
	long retry_after = -1;

	if (!it->f[CF_SLOW]) {
		changed = follow_fast(c, it);
		corr_result_unsettled(it->f[CF_RESULTS], &rcp, &ids);
		if (!rcp[0]) {
			to_slow(c, it, now);
		} else if (now - it->created_at > CORR_FOLLOW_FOR_MS) {
			it->state = CR_SENT;
			it->done_at = now;
		} else {
			wait = (int64_t)FAST_MS << (it->tries < 6 ? it->tries : 6);
			it->tries++;
			it->due_at = now + (wait < FAST_MAX_MS ? wait : FAST_MAX_MS);
		}
		free_pairs(rcp, ids);
	} else if (follow_slow(c, it, &changed, &retry_after)) {
		to_slow(c, it, queue_now_ms(c->q));
	} else {
		/* told to slow down: the rest of the round after Retry-After */
		queue_retry(c->q, it, "reconciling read: 429, later", retry_after);
	}
	if (changed)
		cr_rewrite_receipt(c, it);
	cr_save(c, it);
}

/* ---- the events feed */

/* A file cut short by a crash (".<name>.<tid>.tmp", mountio.c) goes: its
 * event comes again, the cursor not having moved past it. */
static void remove_leftovers(struct corr *c, const char *resource)
{
	char *disk = xasprintf("%s/correspondence/%s/events", c->cfg->state_dir, resource);
	DIR *d = opendir(disk);
	struct dirent *de;
	size_t n;

	while (d && (de = readdir(d))) {
		n = strlen(de->d_name);
		if (de->d_name[0] == '.' && n > 5 && strcmp(de->d_name + n - 4, ".tmp") == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
	free(disk);
}

int cr_events_init(struct corr *c)
{
	for (size_t i = 0; c->resources[i]; i++) {
		remove_leftovers(c, c->resources[i]);
		struct queue_item it = { .state = CR_CURSOR };
		char *key = xasprintf(CR_CURSOR_KEY "%s", c->resources[i]);
		int r = 0;

		if (queue_find(c->q, key, QUEUE_STATE(CR_CURSOR), &it) == 0) {
			queue_item_clear(&it);
		} else {
			it = (struct queue_item){ .state = CR_CURSOR, .key = key };
			queue_set(&it.f[CF_RESOURCE], c->resources[i]);
			queue_set(&it.f[CF_EVSEQ], "1");
			r = queue_add(c->q, &it);
			it.key = NULL;
			queue_item_clear(&it);
		}
		free(key);
		if (r < 0)
			return r;
	}
	return 0;
}

/* What the events of one page say, to be applied to the receipts. */
struct news {
	struct corr *c;
	const char *resource;
	const struct corr_event *evs;
	size_t n;
	int64_t *items; /* the journal items naming one of the page's ids */
	size_t n_items, cap;
};

static int find_items(void *ctx, struct queue_item *it)
{
	struct news *nw = ctx;

	for (size_t i = 0; i < nw->n; i++)
		if (nw->evs[i].instance && it->f[CF_RESULTS] &&
		    strstr(it->f[CF_RESULTS], nw->evs[i].instance)) {
			if (nw->n_items == nw->cap) {
				nw->cap = nw->cap ? 2 * nw->cap : 8;
				nw->items = xrealloc(nw->items, nw->cap * sizeof(*nw->items));
			}
			nw->items[nw->n_items++] = it->id;
			break;
		}
	return 0;
}

static void apply_to(struct news *nw, int64_t id)
{
	struct corr *c = nw->c;
	struct queue_item it;
	bool changed = false;
	char **rcp, **ids;

	if (queue_get(c->q, id, &it) < 0)
		return;
	for (size_t i = 0; i < nw->n; i++) {
		const struct corr_event *e = &nw->evs[i];
		const char *st = corr_event_status(e->type);
		size_t tl = strlen(e->type);

		if (!e->instance || !strstr(it.f[CF_RESULTS] ? it.f[CF_RESULTS] : "", e->instance))
			continue;
		if (st) {
			changed |= set_status(&it, e->instance, st, NULL, true);
		} else if (tl > 19 && strcmp(e->type + tl - 19, "correspondencepurged") == 0) {
			struct app_answer ans = { .retry_after_ms = -1 };
			char *status = NULL, *when = NULL;

			if (corr_details(c->a, e->instance, &status, &when, &ans) == 0)
				changed |= set_status(&it, e->instance, status, when, false);
			app_answer_clear(&ans);
			free(status);
			free(when);
		}
	}
	if (changed) {
		/* each published: slow from now on; each final: done */
		if (it.state == CR_FOLLOWING) {
			corr_result_unsettled(it.f[CF_RESULTS], &rcp, &ids);
			if (!rcp[0])
				to_slow(c, &it, queue_now_ms(c->q));
			free_pairs(rcp, ids);
		}
		if (it.state == CR_FOLLOWING || it.state == CR_SENT)
			cr_rewrite_receipt(c, &it);
		cr_save(c, &it);
	}
	queue_item_clear(&it);
}

void cr_apply_events(struct corr *c, const char *resource, const struct corr_event *evs,
		     size_t n)
{
	char *prefix = xasprintf("%s/", resource);
	struct news nw = { .c = c, .resource = resource, .evs = evs, .n = n };
	struct queue_query qq = { .key_prefix = prefix,
				  .states = CR_DONE | QUEUE_STATE(CR_SENDING) };

	queue_list(c->q, &qq, find_items, &nw);
	for (size_t i = 0; i < nw.n_items; i++)
		apply_to(&nw, nw.items[i]);
	free(nw.items);
	free(prefix);
}

static void name_part(const char *s, size_t max, char *out)
{
	size_t n = 0;

	for (; *s && n < max; s++) {
		unsigned char ch = (unsigned char)*s;

		out[n++] = (ch < 0x80 && (ch == '.' || ch == '-' || ch == '_' ||
					  (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
					  (ch >= 'A' && ch <= 'Z')))
				   ? (char)ch
				   : '-';
	}
	if (n == 0)
		out[n++] = '-';
	out[n] = '\0';
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The oldest files beyond events_keep go. */
static void retain(struct corr *c, const struct queue_item *it, const char *mdir)
{
	char *disk = xasprintf("%s/correspondence/%s/events", c->cfg->state_dir,
			       it->f[CF_RESOURCE]);
	DIR *d = opendir(disk);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	while (d && (de = readdir(d))) {
		if (strlen(de->d_name) < 18 || de->d_name[12] != '_')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (d)
		closedir(d);
	if (n > (size_t)c->cfg->events_keep) {
		qsort(names, n, sizeof(*names), cmp_name);
		for (size_t i = 0; i < n - (size_t)c->cfg->events_keep; i++) {
			char *path = xasprintf("%s/%s", mdir, names[i]);

			unlink(path);
			free(path);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(disk);
}

/* One page's files, numbered from *seq on; 0, or -errno (nothing moves). */
static int write_files(struct corr *c, const struct queue_item *it, const char *mdir,
		       const struct corr_event *evs, size_t n, uint64_t *seq)
{
	bool all = c->cfg->events_start && strcmp(c->cfg->events_start, "all") == 0;
	uint64_t s = *seq;

	for (size_t i = 0; i < n; i++) {
		int64_t ms = (int64_t)evs[i].time.tv_sec * 1000 + evs[i].time.tv_nsec / 1000000;
		char t[101], id[65], *name;
		const char *type = strrchr(evs[i].type, '.');
		int r;

		/* events from before the feed was first followed are history */
		if (!all && ms && ms < it->created_at)
			continue;
		name_part(type && type[1] ? type + 1 : evs[i].type, 100, t);
		name_part(evs[i].id, 64, id);
		name = xasprintf("%012" PRIu64 "_%s_%s.json", s, t, id);
		r = receipt_write(mdir, name, evs[i].doc, false, NULL);
		free(name);
		if (r < 0)
			return r;
		s++;
	}
	*seq = s;
	return 0;
}

void cr_events(struct corr *c, struct queue_item *it)
{
	char *mdir = xasprintf("%s/correspondence/%s/events", c->mountpoint, it->f[CF_RESOURCE]);
	uint64_t seq = it->f[CF_EVSEQ] ? strtoull(it->f[CF_EVSEQ], NULL, 10) : 1;
	int64_t now = queue_now_ms(c->q);
	bool wrote = false;
	int page;

	cpush_keep(c->push, it->f[CF_RESOURCE]);
	for (page = 0; page < PAGES_PER_TURN && !worker_stopping(&c->worker); page++) {
		struct app_answer ans = { .retry_after_ms = -1 };
		struct corr_event *evs = NULL;
		size_t n = 0;
		char num[24];
		int r = corr_events_poll(c->a, it->f[CF_RESOURCE], it->f[CF_CURSOR], PAGE_SIZE, &evs,
					 &n, &ans);

		it->attempt_at = queue_now_ms(c->q);
		if (r < 0) {
			queue_retry(c->q, it, ans.summary, ans.retry_after_ms);
			if (it->due_at < now + (int64_t)c->cfg->poll_interval * 1000 &&
			    ans.retry_after_ms < 0)
				it->due_at = now + (int64_t)c->cfg->poll_interval * 1000;
			log_warn("correspondence: the events of \"%s\": %s", it->f[CF_RESOURCE],
				 ans.summary);
			app_answer_clear(&ans);
			cr_save(c, it);
			free(mdir);
			return;
		}
		app_answer_clear(&ans);
		r = n ? write_files(c, it, mdir, evs, n, &seq) : 0;
		if (r < 0) {
			queue_retry(c->q, it, "cannot write an event file", -1);
			corr_events_free(evs, n);
			cr_save(c, it);
			free(mdir);
			return;
		}
		wrote |= n > 0;
		if (n)
			cr_apply_events(c, it->f[CF_RESOURCE], evs, n);
		if (n) {
			snprintf(num, sizeof(num), "%" PRIu64, seq);
			queue_set(&it->f[CF_CURSOR], evs[n - 1].id);
			queue_set(&it->f[CF_EVSEQ], num);
		}
		it->tries = 0;
		queue_set(&it->last_error, NULL);
		cr_save(c, it);
		corr_events_free(evs, n);
		if (n < PAGE_SIZE)
			break;
	}
	if (wrote)
		retain(c, it, mdir);
	/* a full turn: more wait, go on at once */
	it->due_at = page == PAGES_PER_TURN ? now : now + (int64_t)c->cfg->poll_interval * 1000;
	cr_save(c, it);
	free(mdir);
}
