/* fuzz_instance.c - an instance document (Storage GET /instances/{p}/{g})
 * and the same bytes as the App API's InstanceResponse the outbox reads. */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alt_instance *inst = NULL;
	struct json_outbox_instance oi = { 0 };

	if (json_parse_instance((const char *)data, size, &inst) == 0)
		alt_instance_unref(inst);
	if (json_outbox_parse_instance((const char *)data, size, &oi) == 0)
		json_outbox_instance_clear(&oi);
	return 0;
}
