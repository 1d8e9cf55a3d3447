/* jwt.c - RS256 JWT grants for Maskinporten, signed with libcrypto.
 *
 * A grant is three base64url parts: a header naming the algorithm and the
 * key id, the claims (built as JSON by json.c, the one file that may use
 * jansson) and an RSASSA-PKCS1-v1_5 SHA-256 signature over the first two
 * joined by a dot. Maskinporten checks all of it: aud must be its issuer
 * with the trailing slash, exp at most 120 s after iat, and a jti it has
 * never seen, so every grant gets 122 fresh random bits from the
 * operating system's generator.
 *
 * Key material stays inside OpenSSL's EVP_PKEY; the PEM text the caller
 * read is its to wipe. A passphrase is never asked for: OpenSSL's default
 * would read the terminal of a daemon. */
#include "jwt.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secretfile.h"
#include "json.h"
#include "xalloc.h"

struct jwt_key {
	EVP_PKEY *pkey;
};

/* OpenSSL's passphrase callback: none, so an encrypted key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(int *)u = 1;
	return 0;
}

int jwt_key_from_pem(const char *pem, size_t len, struct jwt_key **ret, char *why, size_t size)
{
	int asked = 0;
	EVP_PKEY *pkey;
	BIO *bio;

	if (len > INT32_MAX) {
		snprintf(why, size, "too large for a key");
		return -EINVAL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		abort(); /* only allocation failure */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	BIO_free(bio);
	ERR_clear_error(); /* the queue is per thread; leave it clean */
	if (!pkey) {
		snprintf(why, size, "%s", asked ? "is encrypted; give the key without a passphrase"
						: "holds no PEM private key");
		return -EINVAL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		snprintf(why, size, "holds a key that is not RSA (RS256 needs RSA)");
		return -EINVAL;
	}
	*ret = xcalloc(1, sizeof(**ret));
	(*ret)->pkey = pkey;
	return 0;
}

void jwt_key_free(struct jwt_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

char *jwt_b64url_encode(const void *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = xmalloc(len / 3 * 4 + 5), *o = out;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

int jwt_random_id(char *buf, size_t size)
{
	unsigned char b[16];

	if (size < 37 || RAND_bytes(b, sizeof(b)) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(buf, size,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

/* RS256 over input; the base64url signature in *ret. */
static int sign_rs256(EVP_PKEY *pkey, const char *input, char **ret)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig;
	size_t sig_len;
	int r = -EIO;

	if (!ctx)
		abort(); /* only allocation failure */
	sig_len = (size_t)EVP_PKEY_get_size(pkey);
	sig = xmalloc(sig_len);
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)) == 1) {
		*ret = jwt_b64url_encode(sig, sig_len);
		r = 0;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	free(sig);
	return r;
}

static bool nonempty(const char *s)
{
	return s && *s;
}

int jwt_grant_sign(const struct jwt_key *key, const struct jwt_grant *g, char **ret)
{
	char *header, *claims, *h64, *c64, *input, *sig;
	char jti[37];
	int r;

	if (!nonempty(g->kid) || !nonempty(g->client_id) || !nonempty(g->audience) ||
	    !nonempty(g->scope) || g->lifetime < 1 || g->lifetime > JWT_GRANT_MAX_LIFETIME)
		return -EINVAL;
	r = jwt_random_id(jti, sizeof(jti));
	if (r < 0)
		return r;
	header = json_grant_header(g->kid);
	claims = json_grant_claims(g->audience, g->client_id, g->scope, (int64_t)g->iat,
				   (int64_t)g->iat + g->lifetime, jti);
	h64 = jwt_b64url_encode(header, strlen(header));
	c64 = jwt_b64url_encode(claims, strlen(claims));
	input = xasprintf("%s.%s", h64, c64);
	free(header);
	free(claims);
	free(h64);
	free(c64);
	r = sign_rs256(key->pkey, input, &sig);
	if (r == 0) {
		*ret = xasprintf("%s.%s", input, sig);
		free(sig);
	}
	secretfile_free(input);
	return r;
}
