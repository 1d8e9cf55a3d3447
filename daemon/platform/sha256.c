/* sha256.c - SHA-256 with OpenSSL's EVP interface (see sha256.h). */
#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "xalloc.h"

struct sha256 {
	EVP_MD_CTX *ctx;
};

struct sha256 *sha256_new(void)
{
	struct sha256 *s = xmalloc(sizeof(*s));

	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx)
		abort();
	EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL);
	return s;
}

void sha256_update(struct sha256 *s, const void *p, size_t n)
{
	EVP_DigestUpdate(s->ctx, p, n);
}

void sha256_finish(struct sha256 *s, char out[65])
{
	unsigned char md[32];

	EVP_DigestFinal_ex(s->ctx, md, NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(s->ctx);
	free(s);
}

int sha256_fd(int fd, char out[65])
{
	struct sha256 *s = sha256_new();
	char *buf = xmalloc(1 << 20);
	off_t off = 0;
	ssize_t n;
	int r = 0;

	while ((n = pread(fd, buf, 1 << 20, off)) > 0) {
		sha256_update(s, buf, (size_t)n);
		off += n;
	}
	if (n < 0)
		r = -errno;
	sha256_finish(s, out);
	free(buf);
	return r;
}

struct md5 {
	EVP_MD_CTX *ctx;
};

struct md5 *md5_new(void)
{
	struct md5 *m = xmalloc(sizeof(*m));

	m->ctx = EVP_MD_CTX_new();
	if (!m->ctx)
		abort();
	EVP_DigestInit_ex(m->ctx, EVP_md5(), NULL);
	return m;
}

void md5_update(struct md5 *m, const void *p, size_t n)
{
	EVP_DigestUpdate(m->ctx, p, n);
}

void md5_finish(struct md5 *m, char out[33])
{
	unsigned char md[16];

	EVP_DigestFinal_ex(m->ctx, md, NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(m->ctx);
	free(m);
}

int md5_fd(int fd, char out[33], uint64_t *ret_size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *buf = xmalloc(1 << 20);
	unsigned char md[16];
	off_t off = 0;
	ssize_t n;
	int r = 0;

	if (!ctx)
		abort();
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	while ((n = pread(fd, buf, 1 << 20, off)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	if (n < 0)
		r = -errno;
	EVP_DigestFinal_ex(ctx, md, NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(ctx);
	free(buf);
	*ret_size = (uint64_t)off;
	return r;
}
