/* auth.h - where the bearer token comes from.
 *
 * One source per daemon, chosen by the configuration: a token file (read
 * again when it changes), or a Maskinporten client (a JWT grant signed
 * with the client's key, exchanged for an Altinn token, refreshed in the
 * background ahead of its expiry). Tokens live in memory only: callers
 * get a copy, send it, and free it with secretfile_free(), which wipes
 * it. Nothing here logs a token, a key or an assertion. Every function
 * may be called from any thread; threads start with the first call, so
 * auth_new may come before main forks. */
#ifndef ALTINNFS_AUTH_H
#define ALTINNFS_AUTH_H

#include <stdint.h>
#include <time.h>

struct config;
struct auth;

/* Reads what can be read now (the Maskinporten key, the subscription
 * key); a bad one is a start-up error, logged. No request is made. */
int auth_new(const struct config *cfg, struct auth **ret);
/* Ends fetches under way and makes waiting callers give up (-ECANCELED):
 * for shutdown, before the FUSE threads are waited for. */
void auth_stop(struct auth *a);
void auth_free(struct auth *a); /* stops first; NULL is fine */

/* The token to send now: 0 with a malloc'd copy in *ret_token (NULL when
 * no source is configured: send no Authorization header) and its
 * generation in *ret_gen; -EACCES when the configured source has none.
 * For Maskinporten this may wait for a fetch (bounded by the timeouts of
 * its requests); it never hands out a token about to expire. */
int auth_token(struct auth *a, char **ret_token, uint64_t *ret_gen);

/* The platform answered 401 to the token of generation gen: get another
 * one now. 0 when a different token is available (retry once), -EACCES
 * when not (give up). Many callers with the same gen cost one fetch, and
 * a Maskinporten source refreshes for a 401 at most once every 10 s. */
int auth_refresh(struct auth *a, uint64_t gen);

/* The optional Ocp-Apim-Subscription-Key value: a malloc'd copy, or NULL
 * when none is configured or usable (also for a == NULL). Free it with
 * secretfile_free(). The file is read again when it changes. */
char *auth_subscription_key(struct auth *a);

/* For status.json: "token_file", "maskinporten" or "none"; the subject and
 * expiry read from the token's payload ("" and zero when unknown); what is
 * wrong with the source, "" when nothing is (never a secret). */
struct auth_info {
	char source[32];
	char subject[128];
	struct timespec expires_at;
	char scope[512]; /* the token's scopes, "" when unknown */
	char problem[512];
};
void auth_get_info(struct auth *a, struct auth_info *ret);

/* The refresh schedule, exposed for the unit tests: when to refresh a
 * token that lives lifetime_ms (75% of it or 60 s before its end,
 * whichever is sooner, but not before half of it), and how long to wait
 * after the failures-th failed fetch in a row when the token in hand is
 * still good for valid_ms (0: none). */
int64_t auth_refresh_after_ms(int64_t lifetime_ms);
int64_t auth_retry_after_ms(unsigned failures, int64_t valid_ms);

#endif
