/* test_growbuf.c - the buffer every response body is read into
 * (daemon/core/growbuf.c): a body of tens of MB in curl-sized chunks
 * costs a logarithmic number of reallocs, not one per chunk (issue 17,
 * finding 18), keeps every byte, and stops at its cap. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "growbuf.h"

#define CHUNK 16384
#define BODY (50u << 20) /* the events page that took 12 minutes */

int main(void)
{
	static char chunk[CHUNK];
	struct growbuf b = { .max = 64u << 20 };
	size_t len;
	char *data;
	int r = 0;

	for (size_t off = 0; off < BODY && r == 0; off += CHUNK) {
		memset(chunk, 'a' + (int)(off / CHUNK % 26), CHUNK);
		r = growbuf_append(&b, chunk, CHUNK);
	}
	CHECK(r == 0, "append: %d", r);
	CHECK(b.len == BODY, "len %zu", b.len);
	/* 16 KiB doubled to 64 MiB: 12 reallocs; one per chunk would be 3,200 */
	CHECK(b.grows <= 13, "%u reallocs for %u chunks", b.grows, BODY / CHUNK);
	CHECK(b.cap <= b.max + 1, "room %zu past the cap %zu", b.cap, b.max);
	CHECK(b.data[0] == 'a' && b.data[CHUNK] == 'b' && b.data[BODY - 1] == 'a' + (BODY / CHUNK - 1) % 26,
	      "bytes kept in order");
	CHECK(b.data[b.len] == '\0', "a NUL follows the bytes");

	/* past the cap: -EFBIG, and nothing of that chunk appended */
	b.max = BODY + 10;
	CHECK(growbuf_append(&b, chunk, 11) == -EFBIG, "over the cap");
	CHECK(b.len == BODY, "len %zu after a refused append", b.len);
	CHECK(growbuf_append(&b, chunk, 10) == 0, "up to the cap");

	data = growbuf_steal(&b, &len);
	CHECK(data && len == BODY + 10, "stolen %zu", len);
	CHECK(!b.data && b.len == 0 && b.cap == 0, "empty after steal");
	free(data);
	growbuf_free(&b);
	return failures != 0;
}
