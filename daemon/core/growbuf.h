/* growbuf.h - a byte buffer filled from the network, with a cap.
 *
 * Appending N bytes in chunks costs O(N) copying in all: the room doubles
 * as it fills (issue 17, finding 18: growing by one chunk per realloc made
 * a 50 MB events page cost 12 minutes under ASan). The bytes are always
 * followed by a NUL, so a JSON body can be parsed in place. */
#ifndef ALTINNFS_GROWBUF_H
#define ALTINNFS_GROWBUF_H

#include <stddef.h>

struct growbuf {
	char *data;      /* NULL until the first byte */
	size_t len;
	size_t cap;
	size_t max;      /* bytes it may hold: a cap from caps.h */
	unsigned grows;  /* reallocations so far: O(log(len)) */
};

/* Appends n bytes of p. 0, or -EFBIG (nothing appended) past b->max. */
int growbuf_append(struct growbuf *b, const void *p, size_t n);
/* Hands the bytes over (NULL when none came); b is empty after. */
char *growbuf_steal(struct growbuf *b, size_t *ret_len);
void growbuf_free(struct growbuf *b);

#endif
