/* fuzz_transfers.c - what Broker and Correspondence answer: a file
 * transfer's id, overview (as the sender follows it, matches it to a
 * lost initialize and sums its statuses for a receipt, and as a
 * recipient shows it in inbox/), a search's list of ids, the
 * organisation claim of a token, an event's transfer; a sidecar
 * <name>.meta.json (the user's input to a transfer); a correspondence's initialize answer,
 * its status, details and the events feed of a resource. Each parser
 * gets the bytes as the daemon hands them over, and what it returns is
 * freed, so the sanitizers see every byte it keeps. */
#include "fuzz.h"
#include "api_brecv.h"
#include "api_corr.h"
#include "json_brecv.h"
#include "json_broker.h"
#include "json_corr.h"

/* the tree's name for a platform file name; the real rules are fuzzed
 * by fuzz_names, here only its ownership matters */
static char *same_name(void *ctx, const char *file_name)
{
	(void)ctx;
	return strdup(file_name ? file_name : "");
}

static void free_all(char *a, char *b, char *c, char *d)
{
	free(a);
	free(b);
	free(c);
	free(d);
}

/* what the sending side reads: an overview (NUL-ended, as it is kept),
 * matched and summed; a sidecar */
static void broker_sent(const char *text, size_t size)
{
	struct broker_match want = { .file_name = "a.txt", .reference = "ref",
				     .checksum = "0123456789abcdef0123456789abcdef",
				     .recipient = "313000001" };
	struct broker_meta m;
	char *doc = malloc(size + 1), err[300];

	memcpy(doc, text, size);
	doc[size] = '\0';
	(void)jsn_broker_matches(text, size, &want);
	free(broker_overview_signature(doc));
	if (broker_meta_parse(text, size, &m, err, sizeof(err)) == 0)
		broker_meta_clear(&m);
	free(doc);
}

static void broker_answers(const char *text, size_t size)
{
	char *a = NULL, *b = NULL, *c = NULL, *d = NULL, **ids = NULL;
	struct brecv_overview ov = { 0 };

	if (jsn_broker_id(text, size, &a) == 0)
		free(a);
	a = NULL;
	if (jsn_broker_overview(text, size, &a, &b, &c, &d) == 0)
		free_all(a, b, c, d);
	if (jsn_broker_ids(text, size, &ids) == 0 && ids) {
		for (size_t i = 0; ids[i]; i++)
			free(ids[i]);
		free(ids);
	}
	a = NULL;
	if (jsn_broker_token_org(text, size, &a) == 0)
		free(a);
	broker_sent(text, size);
	if (jsn_brecv_overview(text, size, "991825827", same_name, NULL, &ov) == 0)
		brecv_overview_clear(&ov);
	free(jsn_brecv_event_transfer(text, size));
}

static void corr_answers(const char *text, size_t size)
{
	char *a = NULL, *b = NULL;
	struct corr_event *evs = NULL;
	size_t n = 0;

	if (jsn_corr_string_id(text, size, &a) == 0)
		free(a);
	a = NULL;
	if (jsn_corr_status_text(text, size, &a, &b) == 0)
		free_all(a, b, NULL, NULL);
	a = b = NULL;
	if (jsn_corr_initialized(text, size, &a, &b) == 0)
		free_all(a, b, NULL, NULL);
	a = NULL;
	if (jsn_corr_first_id(text, size, &a) == 0)
		free(a);
	a = NULL;
	if (jsn_corr_status(text, size, &a) == 0)
		free(a);
	a = b = NULL;
	if (jsn_corr_details(text, size, &a, &b) == 0)
		free_all(a, b, NULL, NULL);
	if (jsn_corr_events(text, size, &evs, &n) == 0)
		corr_events_free(evs, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	broker_answers((const char *)data, size);
	corr_answers((const char *)data, size);
	return 0;
}
