/* fuzz_page.c - one page of an instance query (QueryResponse), as the
 * tree's listings and the outbox's look-ups read it. */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_page page = { 0 };
	struct json_outbox_instance *list = NULL;
	size_t n = 0;
	char *next = NULL;

	if (json_parse_page((const char *)data, size, &page) == 0)
		json_page_clear(&page);
	if (json_outbox_parse_page((const char *)data, size, &list, &n, &next) == 0) {
		for (size_t i = 0; i < n; i++)
			json_outbox_instance_clear(&list[i]);
		free(list);
		free(next);
	}
	return 0;
}
