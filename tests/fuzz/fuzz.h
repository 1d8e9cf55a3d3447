/* fuzz.h - what every libFuzzer harness of tests/fuzz/ shares.
 *
 * Each harness feeds arbitrary bytes to one parser of network or user
 * input, the way the daemon calls it (a buffer and its length, not a C
 * string), and frees what it got back, so that AddressSanitizer and
 * LeakSanitizer see every byte the parser touches and keeps. */
#ifndef ALTINNFS_FUZZ_H
#define ALTINNFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated copy, for the parsers that take C strings */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
