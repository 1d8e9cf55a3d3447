/* auth.h - where the bearer token comes from.
 *
 * One source per daemon: a token file (re-read when it changes) today; the
 * Maskinporten grant is a later source behind the same calls. Tokens live
 * in memory only: callers get a copy, send it, and free it with
 * auth_token_free(), which wipes it. Nothing here logs a token.
 * Every function may be called from any thread. */
#ifndef ALTINNFS_AUTH_H
#define ALTINNFS_AUTH_H

#include <stdint.h>
#include <time.h>

struct config;
struct auth;

int auth_new(const struct config *cfg, struct auth **ret);
void auth_free(struct auth *a); /* NULL is fine */

/* The token to send now: 0 with a malloc'd copy in *ret_token (NULL when
 * no source is configured: send no Authorization header) and its
 * generation in *ret_gen; -EACCES when the configured source has none. */
int auth_token(struct auth *a, char **ret_token, uint64_t *ret_gen);
void auth_token_free(char *token); /* wipes, then frees; NULL is fine */

/* The platform answered 401 to the token of generation gen: fetch it again
 * now. 0 when a different token is available (retry once), -EACCES when
 * not (give up). */
int auth_refresh(struct auth *a, uint64_t gen);

/* The optional Ocp-Apim-Subscription-Key value: a malloc'd copy, or NULL
 * when none is configured. Free with auth_token_free(). */
char *auth_subscription_key(struct auth *a);

/* For status.json: "token_file", "maskinporten" or "none"; the subject and
 * expiry read from the token's payload ("" and zero when unknown). */
struct auth_info {
	char source[32];
	char subject[128];
	struct timespec expires_at;
};
void auth_get_info(struct auth *a, struct auth_info *ret);

#endif
