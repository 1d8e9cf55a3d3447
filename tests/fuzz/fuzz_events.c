/* fuzz_events.c - CloudEvents: a polling page (an array) and a webhook
 * body (one event). */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_event *evs = NULL, ev = { 0 };
	size_t n = 0;

	if (json_parse_events((const char *)data, size, &evs, &n) == 0)
		json_events_free(evs, n);
	if (json_parse_event((const char *)data, size, &ev) == 0)
		json_event_clear(&ev);
	return 0;
}
