/* sha256.h - SHA-256 of what is uploaded, for receipts (and MD5, the
 * checksum Broker asks for).
 *
 * The platform does not ask for it; receipts carry it so that a user can
 * check what was sent. Here so that OpenSSL stays in platform/. */
#ifndef ALTINNFS_SHA256_H
#define ALTINNFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256;

struct sha256 *sha256_new(void); /* aborts when out of memory */
void sha256_update(struct sha256 *s, const void *p, size_t n);
/* The digest as 64 lowercase hex digits and a NUL; frees s. */
void sha256_finish(struct sha256 *s, char out[65]);
/* The digest of fd's bytes from offset 0 to its end: 0 or the -errno of
 * a read (out then holds the digest of what was read). */
int sha256_fd(int fd, char out[65]);

/* The MD5 of fd's bytes from offset 0 to its end, as 32 lowercase hex
 * digits and a NUL (Broker's checksum of a transfer), and their count:
 * 0 or the -errno of a read. */
int md5_fd(int fd, char out[33], uint64_t *ret_size);
/* The same as it goes (a download hashed while it is written). */
struct md5;
struct md5 *md5_new(void); /* aborts when out of memory */
void md5_update(struct md5 *m, const void *p, size_t n);
/* 32 lowercase hex digits and a NUL; frees m. */
void md5_finish(struct md5 *m, char out[33]);

#endif
