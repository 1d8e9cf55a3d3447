/* test_corr.c - Correspondence's pure parts: the platform's text rules as
 * checked before sending (corrtext.c), and a receipt's statuses after
 * publication (json_corrst.c): an event moves a status only upwards, a
 * read of /details sets it, Fetched shows over a plain Published. Each
 * check prints what it expected; the exit status is the number of
 * failures. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_corr.h"
#include "json_corr.h"

#include "check.h"

static void plain(const char *s, bool ok)
{
	const char *why = corr_text_fault(s, strlen(s), false);

	CHECK((why == NULL) == ok, "plain \"%s\": %s", s, why ? why : "fine");
}

static void markdown(const char *s, bool ok)
{
	const char *why = corr_text_fault(s, strlen(s), true);

	CHECK((why == NULL) == ok, "markdown \"%s\": %s", s, why ? why : "fine");
}

static void text_rules(void)
{
	/* plain text that only looks like Markdown */
	plain("Vedtak 2026/17", true);
	plain("snake_case og 3*4=12", true);
	plain("- punkt en\n- punkt to", true);
	plain("a < b og c > d", true);
	plain("#hashtag uten mellomrom", true);
	plain("se `**kode**`", false); /* backticks taken out: still strong */
	/* what Markdig would change */
	plain("## Overskrift", false);
	plain("#", false);
	plain("> sitat", false);
	plain("Vedtak **viktig**", false);
	plain("Vedtak __viktig__", false);
	plain("les *dette*", false);
	plain("les _dette_ nå", false);
	plain("~~borte~~", false);
	plain("Se [her](https://x.no)", false);
	plain("![bilde](a.png)", false);
	plain("---", false);
	plain("* * *", false);
	plain("Tittel\n===", false);
	plain("Hei <b>du</b>", false);
	plain("<!-- kommentar -->", false);
	plain("<br/>", false);
	/* the body: Markdown, no HTML outside code */
	markdown("# Overskrift\n\n**fet** og [lenke](https://x.no)\n", true);
	markdown("`<b>` i kode", true);
	markdown("```\n<p>blokk</p>\n```\n", true);
	markdown("a < b", true);
	markdown("Hei <script>x</script>", false);
	markdown("`kode` og <i>html</i>", false);
}

static const char results[] =
	"{\"313000001\":{\"correspondenceId\":\"c1\",\"status\":\"Published\"},"
	"\"17058500186\":{\"correspondenceId\":\"c2\",\"status\":\"Initialized\"},"
	"\"910000001\":{\"status\":\"Refused\",\"error\":\"422\"}}";

static const char *status_of(const char *doc, const char *id)
{
	static char out[64];
	const char *p = strstr(doc, id);

	p = p ? strstr(p, "\"status\":\"") : NULL;
	if (!p)
		return "";
	p += strlen("\"status\":\"");
	snprintf(out, sizeof(out), "%.*s", (int)strcspn(p, "\""), p);
	return out;
}

static void statuses(void)
{
	char *r, *r2, **rcp, **ids;
	uint64_t counts[CORR_N_STATUSES] = { 0 };
	char *st = NULL, *when = NULL;
	size_t n;

	CHECK(corr_event_status("no.altinn.correspondence.correspondencereceiverread") &&
		      strcmp(corr_event_status(
				     "no.altinn.correspondence.correspondencereceiverread"),
			     "Read") == 0,
	      "receiverread is Read");
	CHECK(!corr_event_status("no.altinn.correspondence.notificationcreated"),
	      "a notification moves no status");
	/* an event: upwards only */
	r = corr_result_apply(results, "c1", "Read", NULL, true);
	CHECK(r && strcmp(status_of(r, "c1"), "Read") == 0, "c1 Read: %s", r ? r : "(none)");
	r2 = r ? corr_result_apply(r, "c1", "Published", NULL, true) : NULL;
	CHECK(!r2, "a late published event does not undo Read");
	free(r2);
	/* a read: as it is */
	r2 = r ? corr_result_apply(r, "c1", "Fetched", "2026-12-04T10:00:00Z", false) : NULL;
	CHECK(r2 && strcmp(status_of(r2, "c1"), "Fetched") == 0 && strstr(r2, "statusChanged"),
	      "a read sets Fetched: %s", r2 ? r2 : "(none)");
	free(r2);
	CHECK(!corr_result_apply(results, "c9", "Read", NULL, true), "an unknown id changes nothing");
	CHECK(!corr_result_apply(results, "c1", "Published", NULL, false), "the same: nothing");
	/* which are followed */
	corr_result_following(r, false, &rcp, &ids);
	for (n = 0; rcp[n]; n++) {
		free(rcp[n]);
		free(ids[n]);
	}
	CHECK(n == 2, "Read and Initialized are followed, Refused not: %zu", n);
	free(rcp);
	free(ids);
	corr_result_unsettled(r, &rcp, &ids);
	CHECK(rcp[0] && !rcp[1] && strcmp(ids[0], "c2") == 0, "only c2 is unpublished");
	for (n = 0; rcp[n]; n++) {
		free(rcp[n]);
		free(ids[n]);
	}
	free(rcp);
	free(ids);
	corr_result_tally(r, counts);
	CHECK(counts[corr_status_index("Read")] == 1 &&
		      counts[corr_status_index("Initialized")] == 1 &&
		      counts[corr_status_index("Refused")] == 1,
	      "tally by status");
	free(r);
	/* /details: Fetched lives apart and shows over a plain Published */
	static const char details[] =
		"{\"status\":\"Published\",\"statusChanged\":\"2026-12-04T09:00:00Z\","
		"\"statusHistory\":[{\"status\":\"Published\",\"statusChanged\":\"2026-12-04T09:00:00Z\"},"
		"{\"status\":\"Fetched\",\"statusChanged\":\"2026-12-04T09:05:00Z\"}]}";
	CHECK(jsn_corr_details(details, strlen(details), &st, &when) == 0 && st &&
		      strcmp(st, "Fetched") == 0 && when &&
		      strcmp(when, "2026-12-04T09:05:00Z") == 0,
	      "details: Fetched at 09:05 (%s, %s)", st ? st : "-", when ? when : "-");
	free(st);
	free(when);
	static const char read_details[] =
		"{\"status\":\"Read\",\"statusChanged\":\"2026-12-04T09:06:00Z\","
		"\"statusHistory\":[{\"status\":\"Fetched\"},{\"status\":\"Read\"}]}";
	st = when = NULL;
	CHECK(jsn_corr_details(read_details, strlen(read_details), &st, &when) == 0 && st &&
		      strcmp(st, "Read") == 0,
	      "details: Read stays Read");
	free(st);
	free(when);
}

int main(void)
{
	text_rules();
	statuses();
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
