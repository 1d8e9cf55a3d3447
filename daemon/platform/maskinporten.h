/* maskinporten.h - an Altinn token from a Maskinporten client.
 *
 * One fetch is the whole flow of altinn-api.md section 1: sign a JWT
 * grant with the client's RSA key, POST it to the token endpoint, and
 * exchange the Maskinporten token at the platform's
 * /authentication/api/v1/exchange/maskinporten for an Altinn token. The
 * key file is read again when it changes (a fixed or rotated key works
 * without a restart). auth.c decides when to fetch; this module only
 * knows how. */
#ifndef ALTINNFS_MASKINPORTEN_H
#define ALTINNFS_MASKINPORTEN_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct mp;

/* Loads the key (a bad key is a start-up error, logged); cfg must
 * outlive the client. No request is made yet. */
int mp_new(const struct config *cfg, struct mp **ret);
void mp_free(struct mp *mp); /* NULL is fine */

/* Ends a fetch under way within about a second (-ECANCELED), and every
 * later one at once: for shutdown. Any thread. */
void mp_stop(struct mp *mp);

/* A fresh Altinn token in *ret_token (free it with secretfile_free) and
 * the Maskinporten token's expires_in (seconds, 0 when unknown). On
 * failure -errno, with one line saying what went wrong and what to check
 * in problem (never a secret). subscription_key, when not NULL, is sent
 * to the platform (never to Maskinporten). One fetch at a time. */
int mp_fetch(struct mp *mp, const char *subscription_key, char **ret_token,
	     int64_t *ret_expires_in, char *problem, size_t size);

#endif
