/* fuzz_page.c - one page of an instance query (QueryResponse), as the
 * tree's listings and the outbox's look-ups read it, and as the index's
 * scanner (json_fast.c) reads it without jansson. The scanner is checked
 * against jansson on every input: when it answers, jansson loads the page
 * (unless an instance is left to it), and each document it hands on
 * parses alone into the facts it scanned. A difference aborts, so the
 * fuzzer reports it as a crash. */
#include "fuzz.h"
#include "json.h"

#include <jansson.h>

static int same_ts(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void check_fast(const char *text, size_t size)
{
	struct json_fast_page fast;
	size_t unsure = 0;

	if (json_fast_page(text, size, &fast) < 0)
		return;
	for (size_t i = 0; i < fast.n; i++)
		unsure += fast.inst[i].unsure;
	if (!unsure) {
		json_error_t err;
		json_t *v = json_loadb(text, size, 0, &err);

		if (!v)
			abort(); /* the scanner took a page jansson refuses */
		json_decref(v);
	}
	for (size_t i = 0; i < fast.n; i++) {
		const struct json_fast_inst *fi = &fast.inst[i];
		struct alt_instance *inst;

		if (fi->unsure)
			continue;
		if (json_parse_instance(fi->doc, fi->doc_len, &inst) < 0)
			abort(); /* handed on a document the parse refuses */
		if (strcmp(inst->party_id, fi->party_id) != 0 || strcmp(inst->guid, fi->guid) != 0 ||
		    !same_ts(inst->created, fi->created) ||
		    !same_ts(inst->last_changed, fi->last_changed) ||
		    inst->is_complete != fi->is_complete || inst->hard_deleted != fi->hard_deleted)
			abort(); /* scanned facts the parse does not give */
		alt_instance_unref(inst);
	}
	json_fast_page_clear(&fast);
}

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
	check_fast((const char *)data, size);
	return 0;
}
