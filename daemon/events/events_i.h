/* events_i.h - the events module's shared types, for its files only:
 * events.c (state, hooks, webhook deliveries), evfiles.c (files and
 * retention) and evpoll.c (the pollers). Each file's functions are
 * declared in its own header (evfiles.h, evpoll.h), so who uses whom
 * reads from the includes. */
#ifndef ALTINNFS_EVENTS_I_H
#define ALTINNFS_EVENTS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "family.h"

/* ---- the module, as its folder and its face (events.c) see it */

struct config;
struct events;

struct events_deps {
	const struct config *cfg;
	struct altinn *a;
	const char *mountpoint;
	/* an event about an instance arrived (party/guid may be NULL) */
	void (*instance_changed)(void *ctx, const char *org, const char *app, const char *party,
				 const char *guid);
	void *ctx;
	/* pushed events of other families' resources (Broker's ...) go here */
	struct pushbus *push;
};

struct evstore;
struct json_event;
struct webhook;

/* Lock order: app->lock, then app->status_lock; the store's own lock is
 * innermost. Hooks (FUSE threads) take only status_lock and the store's:
 * app->lock is held while writing through the mount, so a hook that
 * waited for it could wait for itself. */
struct ev_app {
	struct events *ev;
	const char *org, *name; /* the configuration's strings */
	char *id;               /* "org/app" */
	char *mnt_dir;          /* the events folder through the mount */
	char *disk_dir;         /* the same folder in state_dir */
	int disk_fd;            /* disk_dir, open */
	char *resource;         /* urn:altinn:resource:app_{org}_{app} */
	char *source;           /* the app's URL: the subscription's sourceFilter */

	pthread_mutex_t lock; /* one delivery at a time */
	uint64_t next_seq;    /* protected by lock: the next file's number */
	int64_t watermark_us; /* protected by lock: older events are taken as seen */
	char *after;          /* protected by lock: the cursor ... */
	char *from;           /* ... or, before the first event, where to start */
	uint64_t added;       /* protected by lock: files made since the last trim */

	pthread_mutex_t status_lock;
	char status_cursor[64];       /* protected by status_lock */
	struct timespec last_poll_at; /* protected by status_lock */

	atomic_llong n_files;       /* event files in the folder */
	pthread_mutex_t prune_lock; /* one retention pass at a time */
	time_t aged_at;             /* protected by prune_lock: last age check */

	/* the poller thread's own */
	pthread_t thread;
	bool started;
	bool subscribed;
	unsigned sub_failures;
	/* shared with the webhook thread and status.json */
	atomic_llong sub_id;   /* our subscription's id, 0 before one is known */
	atomic_bool validated; /* the platform validated it: it pushes */
	long sub_retry_ms; /* monotonic: when to try subscribing again */
};

struct events {
	struct events_deps deps;
	const struct config *cfg;
	struct evstore *store;
	struct ev_app *apps;
	size_t n_apps;
	struct webhook *webhook;
	char *secret; /* webhook_url's code, when push is on */

	atomic_bool stopping; /* also cancels requests under way */
	/* the subscription of the last validation event the webhook took, for
	 * a validation that comes before the post's answer */
	atomic_llong last_validated_id;
	pthread_mutex_t sleep_lock;
	pthread_cond_t sleep_cond; /* broadcast at stop */
};

#endif
