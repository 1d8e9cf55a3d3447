/* fuzz_names.c - file names from the platform into the tree: sanitizing
 * and the assignment of unique names within one data type folder. The
 * input is a list of filenames separated by NUL bytes; an empty one
 * stands for an element without a filename.
 *
 * Besides memory errors it checks the naming contract (docs/tree.md):
 * every name is one safe directory entry of at most 255 bytes, and no
 * two elements of one folder share a name. */
#include <stdio.h>

#include "fuzz.h"
#include "names.h"

#define MAX_NAMES 64

static const char *const types[] = { "application/pdf", "text/plain", NULL, "x/y;charset=\x01" };

static void check_name(const char *name)
{
	if (!names_is_safe_component(name) || strlen(name) > 255)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct names_entry e[MAX_NAMES];
	char guids[MAX_NAMES][37];
	char *copy = fuzz_cstr(data, size), *p = copy;
	size_t n = 0;

	memset(e, 0, sizeof(e));
	while (p <= copy + size && n < MAX_NAMES) {
		char *clean = names_sanitize(p, 255);

		if (*p)
			check_name(clean);
		free(clean);
		/* guids that share their first 8 digits, to reach the long form */
		snprintf(guids[n], sizeof(guids[n]), "0123abcd-0000-4000-8000-%012zx", n);
		e[n].data_guid = guids[n];
		e[n].filename = *p ? p : NULL;
		e[n].content_type = types[n % 4];
		n++;
		p += strlen(p) + 1;
	}
	names_assign(e, n);
	for (size_t i = 0; i < n; i++) {
		check_name(e[i].name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				abort();
	}
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(copy);
	return 0;
}
