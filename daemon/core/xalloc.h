/* xalloc.h - allocation that never returns NULL.
 *
 * Allocation failure aborts the daemon with a message, as git and redis do:
 * a half-handled out-of-memory path is worse than a clean exit, and the
 * kernel unmount plus the durable spool make a restart safe. */
#ifndef ALTINNFS_XALLOC_H
#define ALTINNFS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh allocation */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
