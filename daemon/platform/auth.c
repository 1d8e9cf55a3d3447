/* auth.c - the bearer token: from a file that may change, or from Maskinporten.
 *
 * Token file. Something else writes it (a cron job, a secrets agent
 * swapping a symlink), so it is checked with stat() at most once a second
 * and read again when its inode, size, mode or mtime changed; after a 401
 * it is read again at once. What we read is cleaned the way people and
 * tools write tokens (whitespace, quotes) and refused if it holds anything
 * a header value cannot. A missing, empty or group-readable file makes
 * requests fail with EACCES and is logged once per change, not once per
 * request.
 *
 * Maskinporten. A refresher thread (started by the first call, after
 * main has forked) fetches a token through maskinporten.c at once and
 * then ahead of its expiry: at 75% of its lifetime or 60 s before exp,
 * whichever is sooner, but never before half of it has passed, so that a
 * token of a few seconds does not make it spin. A failed fetch is retried
 * after 1, 2, 4 ... up to 30 s, and at least twice before the token in
 * hand runs out. A request never gets a token that is about to expire: it
 * waits for the fetch under way or, when none is, makes one itself (at
 * most one every 2 s while fetches fail), so no request fails because a
 * token expired. A 401 refreshes once for all the requests that saw the
 * same token and at most once every 10 s in all: a storm of 401s costs
 * one fetch, and a platform that refuses every token costs one per 10 s.
 * Fetches are single flight: one at a time, the others wait for it.
 *
 * Tokens live in this module's memory and in short-lived copies that
 * secretfile_free() wipes; no token, key or assertion is ever logged. */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "maskinporten.h"
#include "secretfile.h"
#include "xalloc.h"

#define AUTH_REFRESH_PERCENT 75      /* of the lifetime ... */
#define AUTH_REFRESH_MARGIN_MS 60000 /* ... or this long before exp, whichever is sooner */
#define AUTH_RETRY_FIRST_MS 1000     /* backoff after a failed fetch, doubling ... */
#define AUTH_RETRY_MAX_MS 30000      /* ... up to this */
#define AUTH_ON_DEMAND_MS 2000       /* a request without a token fetches at most this often */
#define AUTH_FORCED_MS 10000         /* a 401 refreshes at most this often */
#define AUTH_FALLBACK_LIFETIME 300   /* s, for a token without exp or expires_in */

enum auth_source { AUTH_NONE, AUTH_TOKEN_FILE, AUTH_MASKINPORTEN };

static const char *const source_names[] = { "none", "token_file", "maskinporten" };

/* A secret file that is read again when it changes. */
struct watched {
	char *path;              /* immutable; NULL: none */
	const char *what;        /* "token file"; immutable */
	struct stat st;          /* identity of what we last read */
	bool have_st;
	struct timespec checked; /* CLOCK_MONOTONIC of the last stat() */
};

struct auth {
	enum auth_source source; /* immutable */
	struct mp *mp;           /* AUTH_MASKINPORTEN; immutable */
	pthread_t thread;        /* the refresher, once thread_started */

	pthread_mutex_t lock;
	pthread_cond_t cond;     /* a fetch ended, or we are stopping */
	/* protected by lock: */
	struct watched file;     /* AUTH_TOKEN_FILE */
	char *token;             /* NULL when the source has none */
	uint64_t gen;            /* bumped whenever token changes */
	struct jwt_claims claims;
	char problem[512];       /* what is wrong with the source; "" when fine */
	struct watched subkey_file;
	char *subkey;            /* the subscription key, NULL when unusable */
	char subkey_problem[512];
	/* AUTH_MASKINPORTEN, monotonic milliseconds (0: never): */
	int64_t expires_ms;      /* when the token runs out */
	int64_t margin_ms;       /* ... and it is not handed out this close to that */
	int64_t next_ms;         /* when the refresher fetches next */
	int64_t attempt_ms;      /* the last fetch began */
	int64_t forced_ms;       /* the last fetch for a 401 began */
	unsigned failures;       /* fetches failed in a row */
	bool fetching;
	bool thread_started;
	bool stopping;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs a problem once, until a different one (or none) replaces it. */
static void set_problem(char *slot, size_t size, const char *msg)
{
	if (strcmp(slot, msg) == 0)
		return;
	snprintf(slot, size, "%s", msg);
	if (*msg)
		log_warn("%s", msg);
}

/* Installs a new token (or none); takes ownership. Locked. */
static bool set_token(struct auth *a, char *token)
{
	if (!token && !a->token)
		return false;
	if (token && a->token && strcmp(token, a->token) == 0) {
		secretfile_free(token);
		return false;
	}
	secretfile_free(a->token);
	a->token = token;
	a->gen++;
	memset(&a->claims, 0, sizeof(a->claims));
	if (token && json_jwt_claims(token, &a->claims) < 0)
		log_debug("token is not a JWT; subject and expiry unknown");
	return true;
}

/* ---- secret files */

/* At most once a second (or at once when forced): has the file changed
 * since we read it? Locked. */
static bool watch_due(struct watched *w, bool force)
{
	struct timespec now;
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && w->checked.tv_sec && now.tv_sec - w->checked.tv_sec < 1)
		return false;
	w->checked = now;
	if (!force && w->have_st && stat(w->path, &st) == 0 && secretfile_same(&st, &w->st))
		return false;
	return true;
}

/* Reads the file: 0 with its cleaned content, or -errno and why. Locked. */
static int watch_read(struct watched *w, char **ret, char *problem, size_t size)
{
	struct stat st;
	size_t len;
	char *buf;
	int r;

	r = secretfile_read(w->path, ALT_MAX_TOKEN, &buf, &len, &st);
	if (r < 0) {
		w->have_st = false;
		secretfile_describe(w->what, w->path, r, problem, size);
		return r;
	}
	w->st = st;
	w->have_st = true;
	if (!secretfile_clean(buf)) {
		snprintf(problem, size, "%s \"%s\" %s", w->what, w->path,
			 *buf ? "holds characters a header cannot carry" : "is empty");
		secretfile_wipe(buf, len + 1);
		return -EINVAL;
	}
	*ret = xstrdup(buf);
	secretfile_wipe(buf, len + 1);
	return 0;
}

/* The token file, read again when it changed. Locked. */
static void check_token_file(struct auth *a, bool force)
{
	char msg[sizeof(a->problem)];
	char *token;

	if (!watch_due(&a->file, force))
		return;
	if (watch_read(&a->file, &token, msg, sizeof(msg)) < 0) {
		strncat(msg, "; requests fail", sizeof(msg) - strlen(msg) - 1);
		set_problem(a->problem, sizeof(a->problem), msg);
		set_token(a, NULL);
		return;
	}
	set_problem(a->problem, sizeof(a->problem), "");
	if (set_token(a, token))
		log_info("token loaded from \"%s\"%s%s%s", a->file.path,
			 a->claims.subject[0] ? " for \"" : "", a->claims.subject,
			 a->claims.subject[0] ? "\"" : "");
}

/* The token is still sent (the platform decides), but an admin reading
 * the log should learn why requests fail with EACCES. Locked. */
static void warn_if_expired(struct auth *a)
{
	char msg[sizeof(a->problem)], when[32];

	if (!a->claims.exp.tv_sec || time(NULL) < a->claims.exp.tv_sec)
		return;
	json_format_time(&a->claims.exp, when, sizeof(when));
	snprintf(msg, sizeof(msg), "the token in \"%s\" expired at %s; replace it", a->file.path,
		 when);
	set_problem(a->problem, sizeof(a->problem), msg);
}

/* The subscription key file, read again when it changed. Locked. */
static void check_subkey(struct auth *a)
{
	char msg[sizeof(a->subkey_problem)];
	char *key;

	if (!a->subkey_file.path || !watch_due(&a->subkey_file, false))
		return;
	secretfile_free(a->subkey);
	a->subkey = NULL;
	if (watch_read(&a->subkey_file, &key, msg, sizeof(msg)) < 0) {
		strncat(msg, "; requests go without it", sizeof(msg) - strlen(msg) - 1);
		set_problem(a->subkey_problem, sizeof(a->subkey_problem), msg);
		return;
	}
	set_problem(a->subkey_problem, sizeof(a->subkey_problem), "");
	a->subkey = key;
}

/* ---- Maskinporten: when to fetch */

int64_t auth_refresh_after_ms(int64_t lifetime_ms)
{
	int64_t at = lifetime_ms * AUTH_REFRESH_PERCENT / 100;

	if (lifetime_ms - AUTH_REFRESH_MARGIN_MS < at)
		at = lifetime_ms - AUTH_REFRESH_MARGIN_MS;
	if (at < lifetime_ms / 2)
		at = lifetime_ms / 2;
	return at > 0 ? at : 0;
}

int64_t auth_retry_after_ms(unsigned failures, int64_t valid_ms)
{
	int64_t delay = AUTH_RETRY_FIRST_MS;

	for (unsigned i = 1; i < failures && delay < AUTH_RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > AUTH_RETRY_MAX_MS)
		delay = AUTH_RETRY_MAX_MS;
	if (valid_ms > 0 && delay > valid_ms / 3)
		delay = valid_ms / 3; /* two more tries before the token in hand runs out */
	return delay < AUTH_RETRY_FIRST_MS ? AUTH_RETRY_FIRST_MS : delay;
}

static bool usable(const struct auth *a, int64_t now)
{
	return a->token && now < a->expires_ms - a->margin_ms;
}

/* A fetched token: how long it lives, by its exp (the platform's clock
 * against ours at receipt), else the Maskinporten expires_in. Locked. */
static void install_mp_token(struct auth *a, char *token, int64_t mp_expires_in, int64_t now)
{
	int64_t lifetime_ms, refresh_ms;
	char when[32];

	set_token(a, token);
	lifetime_ms = ((int64_t)a->claims.exp.tv_sec - (int64_t)time(NULL)) * 1000;
	if (!a->claims.exp.tv_sec || lifetime_ms <= 0) {
		if (a->claims.exp.tv_sec)
			log_warn("the platform's token expired before it arrived: is the clock "
				 "right? trusting it for %lld s",
				 (long long)(mp_expires_in > 0 ? mp_expires_in : AUTH_FALLBACK_LIFETIME));
		lifetime_ms = (mp_expires_in > 0 ? mp_expires_in : AUTH_FALLBACK_LIFETIME) * 1000;
	}
	refresh_ms = auth_refresh_after_ms(lifetime_ms);
	a->expires_ms = now + lifetime_ms;
	a->margin_ms = lifetime_ms / 4 < 1000 ? lifetime_ms / 4 : 1000;
	a->next_ms = now + refresh_ms;
	a->failures = 0;
	set_problem(a->problem, sizeof(a->problem), "");
	json_format_time(&a->claims.exp, when, sizeof(when));
	log_info("token from maskinporten%s%s%s valid until %s; next refresh in %lld s",
		 a->claims.subject[0] ? " for \"" : "", a->claims.subject,
		 a->claims.subject[0] ? "\"" : "", a->claims.exp.tv_sec ? when : "(unknown)",
		 (long long)(refresh_ms / 1000));
}

/* One fetch; the lock is released while it runs. Locked, not fetching. */
static void fetch_locked(struct auth *a)
{
	char problem[sizeof(a->problem)] = "";
	char *subkey, *token = NULL;
	int64_t expires_in = 0, now;
	int r;

	a->fetching = true;
	a->attempt_ms = now_ms();
	check_subkey(a);
	subkey = a->subkey ? xstrdup(a->subkey) : NULL;
	pthread_mutex_unlock(&a->lock);
	r = mp_fetch(a->mp, subkey, &token, &expires_in, problem, sizeof(problem));
	secretfile_free(subkey);
	pthread_mutex_lock(&a->lock);
	a->fetching = false;
	now = now_ms();
	if (r == 0) {
		install_mp_token(a, token, expires_in, now);
	} else if (!a->stopping) {
		a->failures++;
		a->next_ms = now + auth_retry_after_ms(a->failures,
						       a->token ? a->expires_ms - now : 0);
		set_problem(a->problem, sizeof(a->problem), problem);
		log_debug("next maskinporten attempt in %lld ms",
			  (long long)(a->next_ms - now));
	}
	pthread_cond_broadcast(&a->cond);
}

static void *refresher(void *arg)
{
	struct auth *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		int64_t now = now_ms();
		struct timespec until;

		if (a->fetching) {
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		if (now >= a->next_ms) {
			fetch_locked(a);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (a->next_ms - now) / 1000;
		until.tv_nsec += (a->next_ms - now) % 1000 * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&a->cond, &a->lock, &until);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* The refresher starts with the first use: main forks after auth_new.
 * Without it, requests still fetch on demand. Locked. */
static void start_refresher(struct auth *a)
{
	int r;

	if (a->source != AUTH_MASKINPORTEN || a->thread_started || a->stopping)
		return;
	r = pthread_create(&a->thread, NULL, refresher, a);
	if (r != 0) {
		log_errno(-r, "cannot start the token refresher; tokens are fetched on demand");
		return;
	}
	a->thread_started = true;
}

/* A token for a request now, fetching or waiting as needed. Locked. */
static int mp_token(struct auth *a, char **ret_token, uint64_t *ret_gen)
{
	for (;;) {
		int64_t now = now_ms();

		if (a->stopping)
			return -ECANCELED;
		if (usable(a, now)) {
			*ret_token = xstrdup(a->token);
			*ret_gen = a->gen;
			return 0;
		}
		if (a->fetching) {
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		if (a->attempt_ms && now - a->attempt_ms < AUTH_ON_DEMAND_MS)
			return -EACCES; /* the fetch just failed; its problem is logged */
		fetch_locked(a);
	}
}

/* ---- the calls */

int auth_new(const struct config *cfg, struct auth **ret)
{
	struct auth *a = xcalloc(1, sizeof(*a));
	pthread_condattr_t attr;
	char msg[256];
	int r;

	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (cfg->token_file) {
		a->source = AUTH_TOKEN_FILE;
		a->file.path = xstrdup(cfg->token_file);
		a->file.what = "token file";
	} else if (cfg->maskinporten_client_id) {
		a->source = AUTH_MASKINPORTEN;
		r = mp_new(cfg, &a->mp);
		if (r < 0) {
			auth_free(a);
			return r;
		}
	}
	if (cfg->subscription_key_file) {
		a->subkey_file.path = xstrdup(cfg->subscription_key_file);
		a->subkey_file.what = "subscription key file";
		clock_gettime(CLOCK_MONOTONIC, &a->subkey_file.checked);
		r = watch_read(&a->subkey_file, &a->subkey, msg, sizeof(msg));
		if (r < 0) {
			log_error("%s", msg);
			auth_free(a);
			return r;
		}
	}
	*ret = a;
	return 0;
}

void auth_stop(struct auth *a)
{
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (a->mp)
		mp_stop(a->mp);
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_stop(a);
	if (a->thread_started)
		pthread_join(a->thread, NULL);
	mp_free(a->mp);
	secretfile_free(a->token);
	secretfile_free(a->subkey);
	free(a->file.path);
	free(a->subkey_file.path);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int auth_token(struct auth *a, char **ret_token, uint64_t *ret_gen)
{
	int r = 0;

	pthread_mutex_lock(&a->lock);
	switch (a->source) {
	case AUTH_NONE:
		*ret_token = NULL;
		*ret_gen = 0;
		break;
	case AUTH_MASKINPORTEN:
		start_refresher(a);
		r = mp_token(a, ret_token, ret_gen);
		break;
	case AUTH_TOKEN_FILE:
		check_token_file(a, false);
		if (!a->token) {
			r = -EACCES;
			break;
		}
		warn_if_expired(a);
		*ret_token = xstrdup(a->token);
		*ret_gen = a->gen;
		break;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* A 401 on the token of generation gen. Locked. */
static int mp_refresh(struct auth *a, uint64_t gen)
{
	while (a->fetching && !a->stopping)
		pthread_cond_wait(&a->cond, &a->lock);
	if (a->stopping)
		return -EACCES;
	if (a->gen != gen && usable(a, now_ms()))
		return 0; /* someone fetched a new one meanwhile: retry with it */
	if (a->forced_ms && now_ms() - a->forced_ms < AUTH_FORCED_MS)
		return -EACCES; /* a fresh token was refused too: not an expiry */
	a->forced_ms = now_ms();
	log_info("the platform refused the token (401); fetching a new one");
	fetch_locked(a);
	return a->gen != gen && usable(a, now_ms()) ? 0 : -EACCES;
}

int auth_refresh(struct auth *a, uint64_t gen)
{
	int r = -EACCES;

	pthread_mutex_lock(&a->lock);
	if (a->source == AUTH_TOKEN_FILE) {
		if (a->gen == gen)
			check_token_file(a, true);
		if (a->gen != gen && a->token)
			r = 0;
	} else if (a->source == AUTH_MASKINPORTEN) {
		start_refresher(a);
		r = mp_refresh(a, gen);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

char *auth_subscription_key(struct auth *a)
{
	char *key = NULL;

	if (!a) /* a client of its own (maskinporten.c) sends none */
		return NULL;
	pthread_mutex_lock(&a->lock);
	check_subkey(a);
	if (a->subkey)
		key = xstrdup(a->subkey);
	pthread_mutex_unlock(&a->lock);
	return key;
}

void auth_get_info(struct auth *a, struct auth_info *ret)
{
	struct auth_info info;

	memset(&info, 0, sizeof(info));
	pthread_mutex_lock(&a->lock);
	if (a->source == AUTH_TOKEN_FILE) /* status.json shows the token before any request */
		check_token_file(a, false);
	start_refresher(a);
	snprintf(info.source, sizeof(info.source), "%s", source_names[a->source]);
	if (a->token) {
		snprintf(info.subject, sizeof(info.subject), "%s", a->claims.subject);
		info.expires_at = a->claims.exp;
		snprintf(info.scope, sizeof(info.scope), "%s", a->claims.scope);
	}
	snprintf(info.problem, sizeof(info.problem), "%s",
		 a->problem[0] ? a->problem : a->subkey_problem);
	pthread_mutex_unlock(&a->lock);
	*ret = info;
}
