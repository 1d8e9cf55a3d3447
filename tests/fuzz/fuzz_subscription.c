/* fuzz_subscription.c - the Events API's subscription answers: a GET
 * list searched for ours, and a POST's answer. */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t id;
	bool validated;

	json_find_subscription((const char *)data, size, "https://hook.example.no/altinnfs/s3cret",
			       "https://ttd.apps.altinn.no/ttd/soknad", &id, &validated);
	json_subscription_id((const char *)data, size, &id, &validated);
	return 0;
}
