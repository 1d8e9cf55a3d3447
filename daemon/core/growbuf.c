/* growbuf.c - a capped byte buffer that doubles its room as it fills.
 *
 * Response bodies arrive in chunks of 16 KiB or less. Growing the buffer
 * by exactly what each chunk needs makes every realloc likely to copy
 * all that came before, quadratic in the body's size; doubling makes the
 * copies add up to less than twice the body, and the reallocs to about
 * log2(size / 16 KiB). The room never passes max + 1 (the NUL). */
#include "growbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define GROWBUF_FIRST 16384

int growbuf_append(struct growbuf *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return -EFBIG;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : GROWBUF_FIRST;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
		b->grows++;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

char *growbuf_steal(struct growbuf *b, size_t *ret_len)
{
	char *data = b->data;

	*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void growbuf_free(struct growbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
