/* fuzz_app.c - application metadata (Storage GET /applications/{org}/{app}). */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alt_app *app = NULL;

	if (json_parse_app((const char *)data, size, &app) == 0)
		alt_app_free(app);
	return 0;
}
