/* test_events.c - the events module's pure parts: CloudEvents and
 * subscriptions from JSON, event file names, and the store's rules
 * (known ids, the cursor, trimming with its watermark, acknowledgements).
 *
 * Each check prints what it expected; the exit status is the number of
 * failures. The store lives in a temporary folder that is removed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evfiles.h"
#include "evstore.h"
#include "json.h"
#include "log.h"
#include "xalloc.h"

#include "check.h"

static const char page[] =
	"[{\"specversion\":\"1.0\",\"id\":\"e1\",\"time\":\"2026-03-01T10:15:30.1234567Z\","
	"\"source\":\"https://ttd.apps.tt02.altinn.no/ttd/soknad/instances/500100/"
	"AAAAAAAA-0000-4000-8000-000000000001\",\"type\":\"app.instance.created\","
	"\"resource\":\"urn:altinn:resource:app_ttd_soknad\","
	"\"resourceinstance\":\"500100/AAAAAAAA-0000-4000-8000-000000000001\"},"
	"{\"type\":\"no id\"},"
	"{\"id\":\"e2\",\"source\":\"https://x/ttd/soknad/instances/77/"
	"bbbbbbbb-0000-4000-8000-000000000002\",\"type\":\"app.x\"},"
	"{\"id\":\"e3\",\"type\":\"no.altinn.broker.published\",\"resourceinstance\":"
	"\"cccccccc-0000-4000-8000-000000000003\",\"data\":{\"Role\":\"Sender\"}},"
	"7]";

static void test_page(void)
{
	struct json_event *evs = NULL;
	size_t n = 0;
	int r = json_parse_events(page, strlen(page), &evs, &n);

	CHECK(r == 0 && n == 3, "three events with an id, got r=%d n=%zu", r, n);
	if (r < 0 || n != 3)
		return;
	CHECK(strcmp(evs[0].id, "e1") == 0 && strcmp(evs[0].type, "app.instance.created") == 0,
	      "e1 app.instance.created");
	CHECK(evs[0].party && strcmp(evs[0].party, "500100") == 0 && evs[0].guid &&
		      strcmp(evs[0].guid, "aaaaaaaa-0000-4000-8000-000000000001") == 0,
	      "the instance from resourceinstance, guid lowercased");
	CHECK(evs[0].time.tv_sec == 1772360130 && evs[0].time.tv_nsec == 123456700,
	      "time 2026-03-01T10:15:30.1234567Z, got %lld.%09ld", (long long)evs[0].time.tv_sec,
	      evs[0].time.tv_nsec);
	CHECK(strcmp(evs[0].resource, "urn:altinn:resource:app_ttd_soknad") == 0, "resource");
	CHECK(evs[0].doc_len == strlen(evs[0].doc) && evs[0].doc[evs[0].doc_len - 1] == '\n' &&
		      strstr(evs[0].doc, "\n  \"id\": \"e1\",") != NULL,
	      "the document pretty-printed in the order received: %s", evs[0].doc);
	CHECK(evs[1].party && strcmp(evs[1].party, "77") == 0,
	      "the instance from the source when there is no resourceinstance");
	CHECK(!evs[2].party && !evs[2].guid, "a broker event names no instance");
	CHECK(strstr(evs[2].doc, "\"Role\": \"Sender\"") != NULL, "data kept: %s", evs[2].doc);
	json_events_free(evs, n);

	r = json_parse_events("{\"id\":\"x\"}", 10, &evs, &n);
	CHECK(r == -EIO, "an object is not a page, got %d", r);
	r = json_parse_events("[]", 2, &evs, &n);
	CHECK(r == 0 && n == 0, "an empty page");
	json_events_free(evs, n);
}

static void test_one_event(void)
{
	struct json_event e;
	const char *body = "{\"id\":\"v\",\"type\":\"platform.events.validatesubscription\"}";
	char *long_id = xmalloc(400);
	char *doc;

	CHECK(json_parse_event(body, strlen(body), &e) == 0 &&
		      strcmp(e.type, "platform.events.validatesubscription") == 0 && !e.party,
	      "a validation event");
	json_event_clear(&e);
	CHECK(json_parse_event("[1]", 3, &e) == -EIO, "an array is not one event");
	CHECK(json_parse_event("{\"id\":\"\"}", 9, &e) == -EIO, "an empty id");
	CHECK(json_parse_event("{\"id\":5}", 8, &e) == -EIO, "a number id");
	memset(long_id, 'x', 399);
	long_id[399] = '\0';
	doc = xasprintf("{\"id\":\"%s\"}", long_id);
	CHECK(json_parse_event(doc, strlen(doc), &e) == -EIO, "an id of 399 characters");
	free(doc);
	free(long_id);
}

static void test_subscriptions(void)
{
	const char *list =
		"{\"count\":3,\"subscriptions\":["
		"{\"id\":4,\"endPoint\":\"https://h/e?code=a\",\"sourceFilter\":\"https://o/ttd/soknad\","
		"\"typeFilter\":\"app.instance.created\"},"
		"{\"id\":5,\"endPoint\":\"https://h/e?code=a\",\"sourceFilter\":\"https://o/ttd/soknad/\","
		"\"validated\":true},"
		"{\"id\":6,\"endPoint\":\"https://h/e?code=a\",\"sourceFilter\":\"https://o/ttd/other\"}]}";
	const char *unvalidated =
		"{\"count\":1,\"subscriptions\":[{\"id\":7,\"endPoint\":\"https://h/e?code=a\","
		"\"sourceFilter\":\"https://o/ttd/soknad\",\"validated\":false}]}";
	int64_t id = -1;
	bool validated = false;
	char *req;

	CHECK(json_find_subscription(list, strlen(list), "https://h/e?code=a", "https://o/ttd/soknad",
				     &id, &validated) == 0 && id == 5 && validated,
	      "the one without a type filter, trailing slash aside; got %lld", (long long)id);
	CHECK(json_find_subscription(list, strlen(list), "https://h/e?code=b", "https://o/ttd/soknad",
				     &id, &validated) == -ENOENT,
	      "another endpoint is not ours");
	/* the platform stores Uri.AbsoluteUri: lower-case host, no default port */
	CHECK(json_find_subscription(list, strlen(list), "HTTPS://H:443/e?code=a",
				     "https://o/ttd/soknad", &id, &validated) == 0 && id == 5,
	      "the endpoint compared normalized");
	CHECK(json_find_subscription(list, strlen(list), "https://h:8443/e?code=a",
				     "https://o/ttd/soknad", &id, &validated) == -ENOENT,
	      "another port is another endpoint");
	CHECK(json_find_subscription(unvalidated, strlen(unvalidated), "https://h/e?code=a",
				     "https://o/ttd/soknad", &id, &validated) == 0 && id == 7 &&
	      !validated, "validated:false is reported");
	CHECK(json_subscription_id("{\"id\":12,\"validated\":false}", 27, &id, &validated) == 0 &&
	      id == 12 && !validated, "a created subscription's id");
	CHECK(json_subscription_id("{\"validated\":false}", 19, &id, &validated) == -EIO, "no id");
	CHECK(json_validation_subscription("https://p/events/api/v1/subscriptions/42") == 42,
	      "a validation event's subscription");
	CHECK(json_validation_subscription("https://p/x") == -1, "not a subscription");
	req = json_subscription_request("https://h/e?code=a", "https://o/ttd/soknad");
	CHECK(strcmp(req, "{\"endPoint\":\"https://h/e?code=a\",\"sourceFilter\":\"https://o/ttd/soknad\"}") == 0,
	      "the request body: %s", req);
	free(req);
}

/* Broker's and Correspondence's: a resource and a subject, no source */
static void test_resource_subscriptions(void)
{
	const struct json_sub_filter f = { .resource = "urn:altinn:resource:r1",
					   .subject = "urn:altinn:organization:identifier-no:1" };
	const char *list =
		"{\"count\":5,\"subscriptions\":["
		"{\"id\":1,\"endPoint\":\"https://h/e?code=a\",\"resourceFilter\":\"urn:altinn:resource:r1\"},"
		"{\"id\":2,\"endPoint\":\"https://h/e?code=a\",\"resourceFilter\":\"urn:altinn:resource:r1\","
		"\"subjectFilter\":\"urn:altinn:organization:identifier-no:1\",\"typeFilter\":\"x\"},"
		"{\"id\":3,\"endPoint\":\"https://h/e?code=a\",\"resourceFilter\":\"urn:altinn:resource:r2\","
		"\"subjectFilter\":\"urn:altinn:organization:identifier-no:1\"},"
		"{\"id\":4,\"endPoint\":\"https://h/e?code=a\",\"resourceFilter\":\"urn:altinn:resource:r1\","
		"\"subjectFilter\":\"urn:altinn:organization:identifier-no:1\",\"validated\":true},"
		"{\"id\":5,\"endPoint\":\"https://h/e?code=a\",\"sourceFilter\":\"https://o/ttd/a\","
		"\"resourceFilter\":\"urn:altinn:resource:r1\"}]}";
	int64_t id = -1;
	bool validated = false;
	char *req;

	CHECK(json_find_subscription_for(list, strlen(list), "https://h/e?code=a", &f, &id,
					 &validated) == 0 && id == 4 && validated,
	      "only the one with exactly the resource and the subject; got %lld", (long long)id);
	CHECK(json_find_subscription_for(list, 0, "https://h/e?code=a", &f, &id, &validated) == -EIO,
	      "no answer");
	req = json_subscription_request_for("https://h/e?code=a", &f);
	CHECK(strcmp(req, "{\"endPoint\":\"https://h/e?code=a\",\"resourceFilter\":"
			  "\"urn:altinn:resource:r1\",\"subjectFilter\":"
			  "\"urn:altinn:organization:identifier-no:1\"}") == 0,
	      "the request body: %s", req);
	free(req);
}

static void test_names(void)
{
	uint64_t seq = 0;

	CHECK(ev_name_seq("000000000042_app.instance.created_e1.json", &seq) && seq == 42,
	      "a file's number");
	CHECK(!ev_name_seq(".000000000042_app.x_e1.json.tmp", &seq), "a write under way");
	CHECK(!ev_name_seq("00000000042_app.x_e1.json", &seq), "eleven digits");
	CHECK(!ev_name_seq("000000000042-app.x_e1.json", &seq), "no underscore");
	CHECK(!ev_name_seq("000000000042_app.x_e1.txt", &seq), "not .json");
	CHECK(!ev_name_seq("00000000004a_app.x_e1.json", &seq), "not a number");
}

static void test_store(void)
{
	char dir[] = "/tmp/test_events.XXXXXX", *path;
	struct evstore_cursor c = { 0 };
	struct evstore *s = NULL;
	struct evstore_event recs[5];
	char *id = NULL, *type = NULL, *names[5];
	int64_t watermark = 0;
	uint64_t max = 0;
	bool known = true;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	path = xasprintf("%s/events.db", dir);
	CHECK(evstore_open(path, &s) == 0, "open %s", path);
	if (!s)
		goto out;
	CHECK(evstore_get_cursor(s, "ttd/a", &c) == -ENOENT, "no cursor yet");
	c.from = xstrdup("2026-01-01T00:00:00Z");
	c.watermark_us = 1000;
	CHECK(evstore_put_cursor(s, "ttd/a", &c) == 0, "put cursor");
	evstore_cursor_clear(&c);
	CHECK(evstore_get_cursor(s, "ttd/a", &c) == 0 && !c.after && c.from &&
		      strcmp(c.from, "2026-01-01T00:00:00Z") == 0 && c.watermark_us == 1000,
	      "a new cursor starts from a time");
	evstore_cursor_clear(&c);

	for (int i = 0; i < 5; i++) {
		names[i] = xasprintf("%012d_t_e%d.json", i + 1, i);
		recs[i] = (struct evstore_event){ NULL, (uint64_t)i + 1, names[i], "t",
						  (int64_t)(i + 1) * 1000000 };
		recs[i].id = names[i] + 15; /* "e0.json"... the id need only be unique */
	}
	CHECK(evstore_record(s, "ttd/a", recs, 5, "e4.json") == 0, "record five, move the cursor");
	CHECK(evstore_get_cursor(s, "ttd/a", &c) == 0 && c.after && strcmp(c.after, "e4.json") == 0 &&
		      !c.from,
	      "the cursor moved, from dropped");
	evstore_cursor_clear(&c);
	CHECK(evstore_known(s, "ttd/a", "e2.json", &known) == 0 && known, "a recorded id is known");
	CHECK(evstore_known(s, "ttd/b", "e2.json", &known) == 0 && !known, "per app");
	CHECK(evstore_record(s, "ttd/a", recs, 1, NULL) == 0, "recording twice is harmless");
	CHECK(evstore_max_seq(s, "ttd/a", &max) == 0 && max == 5, "highest number 5");
	CHECK(evstore_max_seq(s, "ttd/b", &max) == 0 && max == 0, "none: 0");
	CHECK(evstore_lookup(s, "ttd/a", 3, names[2], &id, &type) == 0 && strcmp(id, "e2.json") == 0 &&
		      strcmp(type, "t") == 0,
	      "look up by number and name");
	free(id);
	free(type);
	CHECK(evstore_lookup(s, "ttd/a", 3, names[1], &id, &type) == -ENOENT, "name must match");
	CHECK(evstore_ack(s, "ttd/a", 2) == 0, "ack");

	CHECK(evstore_trim(s, "ttd/a", 2, &watermark) == 0 && watermark == 3000001,
	      "keep two: the watermark passes the newest time dropped, got %lld",
	      (long long)watermark);
	CHECK(evstore_known(s, "ttd/a", "e2.json", &known) == 0 && !known, "e2 forgotten");
	CHECK(evstore_known(s, "ttd/a", "e4.json", &known) == 0 && known, "e4 kept");
	CHECK(evstore_trim(s, "ttd/a", 2, &watermark) == 0 && watermark == 3000001,
	      "nothing more to trim");
	for (int i = 0; i < 5; i++)
		free(names[i]);
	evstore_close(s);

	/* it all survives a reopen */
	s = NULL;
	CHECK(evstore_open(path, &s) == 0, "reopen");
	if (s) {
		CHECK(evstore_get_cursor(s, "ttd/a", &c) == 0 && c.watermark_us == 3000001,
		      "the watermark is kept");
		evstore_cursor_clear(&c);
		evstore_close(s);
	}
out:
	for (int i = 0; i < 3; i++) {
		char *f = xasprintf("%s%s", path, (const char *[]){ "", "-wal", "-shm" }[i]);

		unlink(f);
		free(f);
	}
	rmdir(dir);
	free(path);
}

int main(void)
{
	log_setup(LOG_LVL_ERROR, false); /* the warnings for bad input are expected */
	json_global_init();
	test_page();
	test_one_event();
	test_subscriptions();
	test_resource_subscriptions();
	test_names();
	test_store();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("all events checks passed\n");
	return failures ? 1 : 0;
}
