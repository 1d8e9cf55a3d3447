/* jwt.h - the signed JWT grant a Maskinporten client sends (RFC 7523).
 *
 * OpenSSL's signing lives here (docs/design.md). It loads the client's RSA
 * private key from PEM text and signs grants with RS256: header alg and
 * kid, claims aud, iss, scope, iat, exp and a fresh random jti. The key
 * never leaves the opaque struct; assertions are returned in memory the
 * caller wipes (secretfile_free). Nothing here logs. All functions are
 * safe to call from any thread. */
#ifndef ALTINNFS_JWT_H
#define ALTINNFS_JWT_H

#include <stddef.h>
#include <time.h>

/* Maskinporten refuses grants that live longer than this (exp - iat). */
#define JWT_GRANT_MAX_LIFETIME 120

struct jwt_key;

/* An RSA private key from PEM text ("BEGIN PRIVATE KEY" or "BEGIN RSA
 * PRIVATE KEY"). Encrypted keys are refused, never prompted for. 0, or
 * -EINVAL with a reason (no key material in it) in why. */
int jwt_key_from_pem(const char *pem, size_t len, struct jwt_key **ret, char *why, size_t size);
void jwt_key_free(struct jwt_key *key); /* NULL is fine */

struct jwt_grant {
	const char *kid;       /* key id registered with the client */
	const char *client_id; /* becomes iss */
	const char *audience;  /* the issuer, with its trailing slash */
	const char *scope;     /* space-separated */
	time_t iat;            /* issued at, UTC seconds */
	int lifetime;          /* exp = iat + lifetime; 1..JWT_GRANT_MAX_LIFETIME */
};

/* The signed assertion "header.claims.signature" in *ret (free it with
 * secretfile_free, which wipes). Every call gets a new random jti.
 * -EINVAL for a grant that Maskinporten would refuse on its face. */
int jwt_grant_sign(const struct jwt_key *key, const struct jwt_grant *grant, char **ret);

/* base64url without padding (RFC 7515 section 2), malloc'd. */
char *jwt_b64url_encode(const void *data, size_t len);

/* A random version 4 UUID, lowercase, into buf (at least 37 bytes). */
int jwt_random_id(char *buf, size_t size);

#endif
