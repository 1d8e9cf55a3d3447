/* test_json.c - the platform's JSON into structs, and what we render.
 *
 * Documents are embedded, modelled on the captured samples (legacy nulls,
 * totalHits, +00:00 offsets, 7 fractional digits), so the test needs no
 * files. Each check prints what it expected; the exit status is the
 * number of failures. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "cache.h"
#include "http.h"
#include "json.h"
#include "caps.h"
#include "log.h"
#include "xalloc.h"

#include "check.h"
#include "version.h"

static int parse_instance(const char *text, struct alt_instance **ret)
{
	return json_parse_instance(text, strlen(text), ret);
}

/* ---- instances */

static const char instance_with_nulls[] =
	"{\"id\":\"1337/BD9EDD59-B18C-4726-AA9E-6B150EADE814\","
	"\"instanceOwner\":{\"partyId\":\"1337\",\"personNumber\":\"01039012345\","
	"\"organisationNumber\":null,\"username\":null},"
	"\"appId\":\"ttd/bli-applikasjonseier\",\"org\":\"ttd\","
	"\"dueBefore\":null,\"visibleAfter\":null,"
	"\"process\":{\"started\":\"2020-11-18T15:56:41.5662973Z\",\"currentTask\":{"
	"\"elementId\":\"Task_1\",\"ended\":null,\"validated\":{"
	"\"timestamp\":\"2020-11-20T13:00:05.1800273+00:00\",\"canCompleteTask\":true}},"
	"\"ended\":null,\"endEvent\":null},"
	"\"status\":null,\"completeConfirmations\":null,"
	"\"data\":[{\"id\":\"8A8A01AE-9533-4AA9-B914-8AB0FAE6EA0D\","
	"\"instanceGuid\":\"bd9edd59-b18c-4726-aa9e-6b150eade814\","
	"\"dataType\":\"model\",\"filename\":null,\"contentType\":\"application/xml\","
	"\"size\":401,\"locked\":false,\"refs\":[],"
	"\"created\":\"2020-11-18T15:56:43.1089008Z\",\"createdBy\":null,"
	"\"lastChanged\":\"2020-11-18T15:56:43.1089008Z\",\"lastChangedBy\":null},"
	"{\"id\":\"692ee7df-82a9-4bba-b2f2-c8c4dac69aff\",\"dataType\":\"attachment\","
	"\"filename\":\"report.pdf\",\"contentType\":\"application/pdf\",\"size\":20001,"
	"\"locked\":true,\"lastChanged\":\"2019-03-07T15:00:23Z\"}],"
	"\"created\":\"2020-11-18T15:56:42.1972942Z\",\"createdBy\":\"1337\","
	"\"lastChanged\":\"2020-11-18T15:56:42.1972942Z\",\"lastChangedBy\":\"1337\"}";

static void test_instance(void)
{
	struct alt_instance *inst = NULL;
	struct alt_data_element *e;

	CHECK(parse_instance(instance_with_nulls, &inst) == 0, "instance with nulls parses");
	if (!inst)
		return;
	CHECK(strcmp(inst->id, "1337/BD9EDD59-B18C-4726-AA9E-6B150EADE814") == 0,
	      "id kept as sent, got \"%s\"", inst->id);
	CHECK(strcmp(inst->party_id, "1337") == 0, "party id, got \"%s\"", inst->party_id);
	CHECK(strcmp(inst->guid, "bd9edd59-b18c-4726-aa9e-6b150eade814") == 0,
	      "guid lowercased, got \"%s\"", inst->guid);
	CHECK(inst->refcount == 1, "one reference, got %d", inst->refcount);
	CHECK(!inst->is_complete, "process.ended null means not complete");
	CHECK(inst->ended.tv_sec == 0, "no end time");
	CHECK(inst->created.tv_sec == 1605715002 && inst->created.tv_nsec == 197294200,
	      "created 2020-11-18T15:56:42.1972942Z, got %lld.%09ld",
	      (long long)inst->created.tv_sec, inst->created.tv_nsec);
	CHECK(inst->n_data == 2, "two data elements, got %zu", inst->n_data);
	if (inst->n_data == 2) {
		e = &inst->data[0];
		CHECK(strcmp(e->id, "8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d") == 0,
		      "data guid lowercased, got \"%s\"", e->id);
		CHECK(strcmp(e->data_type, "model") == 0, "data type");
		CHECK(e->filename == NULL, "null filename stays NULL");
		CHECK(e->content_type && strcmp(e->content_type, "application/xml") == 0,
		      "content type");
		CHECK(e->size == 401, "size 401, got %llu", (unsigned long long)e->size);
		CHECK(!e->locked, "not locked");
		e = &inst->data[1];
		CHECK(e->filename && strcmp(e->filename, "report.pdf") == 0, "filename");
		CHECK(e->locked, "locked");
		CHECK(e->created.tv_sec == 0, "absent created is zero");
		CHECK(e->last_changed.tv_sec == 1551970823, "lastChanged 2019-03-07T15:00:23Z");
	}
	CHECK(inst->doc_len == strlen(inst->doc), "doc_len matches");
	CHECK(inst->doc[inst->doc_len - 1] == '\n', "doc ends in a newline");
	CHECK(strncmp(inst->doc, "{\n  \"id\": ", 10) == 0,
	      "doc pretty-printed with two spaces, starts \"%.20s\"", inst->doc);
	CHECK(strstr(inst->doc, "\"id\"") < strstr(inst->doc, "\"instanceOwner\"") &&
	      strstr(inst->doc, "\"lastChanged\": \"2020") > strstr(inst->doc, "\"data\""),
	      "doc keeps the platform's key order");
	CHECK(strstr(inst->doc, "\"dueBefore\": null") != NULL, "doc keeps nulls as received");
	CHECK(alt_instance_ref(inst) == inst && inst->refcount == 2, "ref");
	alt_instance_unref(inst);
	alt_instance_unref(inst);
	alt_instance_unref(NULL);
}

static void test_instance_minimal_and_complete(void)
{
	struct alt_instance *inst = NULL;
	const char *doc = "{\"id\":\"50002/b16f0000-0000-4000-8000-000000000002\","
			  "\"process\":{\"ended\":\"2024-05-01T10:00:00+02:00\"},"
			  "\"data\":null}";

	CHECK(parse_instance(doc, &inst) == 0, "minimal instance parses");
	if (!inst)
		return;
	CHECK(inst->is_complete, "process.ended present means complete");
	CHECK(inst->ended.tv_sec == 1714550400, "ended at 08:00Z, got %lld",
	      (long long)inst->ended.tv_sec);
	CHECK(inst->n_data == 0 && inst->data != NULL, "no data elements, non-NULL array");
	CHECK(inst->created.tv_sec == 0 && inst->last_changed.tv_sec == 0, "absent times zero");
	alt_instance_unref(inst);
}

static void test_malformed_ids(void)
{
	static const char *const bad[] = {
		"{\"id\":\"abc/b16f0000-0000-4000-8000-000000000002\"}",
		"{\"id\":\"1337/not-a-guid\"}",
		"{\"id\":\"1337/b16f0000-0000-4000-8000-000000000002/x\"}",
		"{\"id\":\"/b16f0000-0000-4000-8000-000000000002\"}",
		"{\"id\":\"1337\"}",
		"{\"id\":\"../b16f0000-0000-4000-8000-000000000002\"}",
		"{\"id\":42}",
		"{\"instanceOwner\":{\"partyId\":\"1337\"}}",
		"{\"id\":\"1337/b16f0000-0000-4000-8000-000000000002\","
		"\"instanceOwner\":{\"partyId\":\"1338\"}}",
		"{\"id\":\"1337/b16f0000-0000-4000-8000-00000000000g\"}",
		"[1,2]",
		"{\"id\":",
		"",
	};
	struct alt_instance *inst = (struct alt_instance *)0x1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(parse_instance(bad[i], &inst) == -EIO, "rejects %s", bad[i]);
		CHECK(inst == (struct alt_instance *)0x1, "ret untouched for %s", bad[i]);
	}
}

/* contentHash: kept as given; the cache reads a sha256 from hex or base64 */
static void test_content_hash(void)
{
	struct alt_instance *inst = NULL;
	const char *doc =
		"{\"id\":\"1/b16f0000-0000-4000-8000-000000000002\",\"data\":["
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000aa\",\"dataType\":\"x\","
		"\"contentHash\":\"sha256:ABC\"},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000bb\",\"dataType\":\"x\","
		"\"contentHash\":null}]}";
	/* sha256("abc") */
	const char *hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char out[65];

	CHECK(parse_instance(doc, &inst) == 0 && inst && inst->n_data == 2, "parses");
	if (inst && inst->n_data == 2) {
		CHECK(inst->data[0].content_hash &&
		      strcmp(inst->data[0].content_hash, "sha256:ABC") == 0, "contentHash kept");
		CHECK(!inst->data[1].content_hash, "a null contentHash is none");
	}
	alt_instance_unref(inst);
	CHECK(cache_sha256_hex(hex, out) == 0 && strcmp(out, hex) == 0, "hex");
	CHECK(cache_sha256_hex("SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
			       out) == 0 && strcmp(out, hex) == 0, "upper-case hex with a prefix");
	CHECK(cache_sha256_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", out) == 0 &&
	      strcmp(out, hex) == 0, "base64, got %s", out);
	CHECK(cache_sha256_hex("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0", out) == 0 &&
	      strcmp(out, hex) == 0, "base64url without padding, got %s", out);
	CHECK(cache_sha256_hex("900150983cd24fb0d6963f7d28e17f72", out) == -EINVAL, "md5: not ours");
	CHECK(cache_sha256_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa!=", out) == -EINVAL,
	      "not base64");
	CHECK(cache_sha256_hex("", out) == -EINVAL, "empty");
}

static void test_bad_elements(void)
{
	struct alt_instance *inst = NULL;
	const char *doc =
		"{\"id\":\"1/b16f0000-0000-4000-8000-000000000002\",\"data\":["
		"{\"id\":\"../../etc/passwd\",\"dataType\":\"x\"},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000aa\"},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000bb\",\"dataType\":\"first\","
		"\"size\":-5},"
		"7,"
		"{\"id\":\"B16F0000-0000-4000-8000-0000000000BB\",\"dataType\":\"dup\"},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000cc\",\"dataType\":\"x\","
		"\"size\":\"12\",\"filename\":17},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000dd\",\"dataType\":\"x\",\"size\":1e300},"
		"{\"id\":\"b16f0000-0000-4000-8000-0000000000ee\",\"dataType\":\"x\",\"size\":12.0}]}";

	CHECK(parse_instance(doc, &inst) == 0, "instance with bad elements parses");
	if (!inst)
		return;
	CHECK(inst->n_data == 4, "bad, typeless and duplicate elements dropped, got %zu",
	      inst->n_data);
	if (inst->n_data == 4) {
		CHECK(inst->data[2].size == 0, "out-of-range real size reads as absent");
		CHECK(inst->data[3].size == 12, "real size 12.0 reads as 12");
		CHECK(strcmp(inst->data[0].data_type, "first") == 0,
		      "first of two equal guids kept");
		CHECK(inst->data[0].size == 0, "negative size reads as 0");
		CHECK(inst->data[1].size == 0 && inst->data[1].filename == NULL,
		      "wrong-typed size and filename read as absent");
	}
	alt_instance_unref(inst);
}

static void test_element_cap(void)
{
	size_t n = ALT_MAX_DATA_ELEMENTS + 5, cap = n * 80 + 200, len;
	struct alt_instance *inst = NULL;
	char *doc = xmalloc(cap);

	len = (size_t)snprintf(doc, cap, "{\"id\":\"1/b16f0000-0000-4000-8000-000000000002\","
					 "\"data\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(doc + len, cap - len,
					"%s{\"id\":\"00000000-0000-4000-8000-%012zx\","
					"\"dataType\":\"t\"}",
					i ? "," : "", i);
	snprintf(doc + len, cap - len, "]}");
	CHECK(parse_instance(doc, &inst) == 0, "instance with many elements parses");
	if (inst)
		CHECK(inst->n_data == ALT_MAX_DATA_ELEMENTS, "capped at %u, got %zu",
		      ALT_MAX_DATA_ELEMENTS, inst->n_data);
	alt_instance_unref(inst);
	free(doc);
}

/* ---- times */

static void test_times(void)
{
	static const struct {
		const char *s;
		long long sec;
		long nsec;
	} ok[] = {
		{ "2019-03-06T15:00:23Z", 1551884423, 0 },
		{ "2019-03-06T15:00:23.123Z", 1551884423, 123000000 },
		{ "2020-11-18T15:56:41.5662973Z", 1605715001, 566297300 },
		{ "2020-11-20T13:00:05.1800273+00:00", 1605877205, 180027300 },
		{ "2024-05-01T10:00:00+02:00", 1714550400, 0 },
		{ "2024-05-01T10:00:00.5-05:30", 1714577400, 500000000 },
		{ "2024-05-01T10:00:00+0200", 1714550400, 0 },
		{ "2024-05-01T10:00:00", 1714557600, 0 },
		{ "2024-05-01t10:00:00z", 1714557600, 0 },
		{ "2024-05-01T10:00:00.123456789123Z", 1714557600, 123456789 },
		{ "1970-01-01T00:00:00Z", 0, 0 },
	};
	static const char *const bad[] = {
		"", "2024", "2024-05-01", "2024-05-01 10:00:00Z", "2024-13-01T10:00:00Z",
		"2024-05-01T25:00:00Z", "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00+2",
		"2024-05-01T10:00:00Zjunk", "2024-05-01T10:00:00+02:00x", "24-05-01T10:00:00Z",
	};
	struct timespec ts;
	char buf[32];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ts.tv_sec = -1;
		CHECK(json_parse_time(ok[i].s, &ts) == 0, "parses \"%s\"", ok[i].s);
		CHECK(ts.tv_sec == ok[i].sec && ts.tv_nsec == ok[i].nsec,
		      "\"%s\" is %lld.%09ld, got %lld.%09ld", ok[i].s, ok[i].sec, ok[i].nsec,
		      (long long)ts.tv_sec, ts.tv_nsec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ts.tv_sec = 77;
		CHECK(json_parse_time(bad[i], &ts) == -EINVAL, "rejects \"%s\"", bad[i]);
		CHECK(ts.tv_sec == 77, "ret untouched for \"%s\"", bad[i]);
	}
	ts.tv_sec = 1605715001;
	json_format_time(&ts, buf, sizeof(buf));
	CHECK(strcmp(buf, "2020-11-18T15:56:41Z") == 0, "formats, got \"%s\"", buf);
}

static void test_ids(void)
{
	CHECK(json_is_guid("8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d"), "guid");
	CHECK(json_is_guid("8A8A01AE-9533-4AA9-B914-8AB0FAE6EA0D"), "upper-case guid");
	CHECK(!json_is_guid("8a8a01ae-9533-4aa9-b914-8ab0fae6ea0"), "short guid");
	CHECK(!json_is_guid("8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d0"), "long guid");
	CHECK(!json_is_guid("8a8a01ae_9533-4aa9-b914-8ab0fae6ea0d"), "bad separator");
	CHECK(!json_is_guid(""), "empty guid");
	CHECK(json_is_party_id("50002"), "party id");
	CHECK(!json_is_party_id(""), "empty party id");
	CHECK(!json_is_party_id("12a"), "party id with a letter");
	CHECK(!json_is_party_id("12345678901234567890"), "20-digit party id");
}

/* ---- query pages */

static void test_page(void)
{
	const char *with_next =
		"{\"count\":3,\"self\":\"http://x/storage/api/v1/instances?appId=ttd%2Fa\","
		"\"next\":\"http://x/storage/api/v1/instances?appId=ttd%2Fa&continuationToken=a%3Bb\","
		"\"instances\":["
		"{\"id\":\"1000/160a1555-ae23-4b87-b337-813620fcc01f\","
		"\"instanceOwner\":{\"partyId\":\"1000\"},\"appOwner\":{},\"title\":{\"nb\":\"T\"},"
		"\"data\":[]},"
		"{\"id\":\"evil/../../x\"},"
		"{\"id\":\"1001/f56f6010-90e3-44ca-b231-5adacd5932d1\"}]}";
	const char *legacy = "{\"totalHits\":1000,\"count\":0,\"self\":null,\"next\":null,"
			     "\"instances\":[]}";
	const char *no_next = "{\"count\":1,\"instances\":[{\"id\":\"7/160a1555-ae23-4b87-b337-"
			      "813620fcc01f\"}]}";
	struct json_page page;

	CHECK(json_parse_page(with_next, strlen(with_next), &page) == 0, "page parses");
	CHECK(page.n_instances == 2, "malformed instance skipped, got %zu", page.n_instances);
	CHECK(page.count == 3, "count 3, got %lld", (long long)page.count);
	CHECK(page.next && strcmp(page.next, "http://x/storage/api/v1/instances?appId=ttd%2Fa&"
					     "continuationToken=a%3Bb") == 0,
	      "next kept verbatim");
	if (page.n_instances == 2)
		CHECK(strcmp(page.instances[1]->party_id, "1001") == 0, "order kept");
	json_page_clear(&page);

	CHECK(json_parse_page(legacy, strlen(legacy), &page) == 0, "legacy page parses");
	CHECK(page.n_instances == 0 && page.next == NULL, "null next and totalHits tolerated");
	json_page_clear(&page);

	CHECK(json_parse_page(no_next, strlen(no_next), &page) == 0, "last page parses");
	CHECK(page.n_instances == 1 && page.next == NULL && page.count == 1, "absent next");
	json_page_clear(&page);

	CHECK(json_parse_page("{\"instances\":{}}", 15, &page) == -EIO, "instances not a list");
	CHECK(json_parse_page("nonsense", 8, &page) == -EIO, "not JSON");
}

/* ---- application metadata */

static void test_app(void)
{
	const char *doc =
		"{\"id\":\"ttd/basic\",\"org\":\"ttd\",\"title\":{\"nb\":\"basic\"},\"dataTypes\":["
		"{\"id\":\"ref-data-as-pdf\",\"allowedContentTypes\":[\"application/pdf\"],"
		"\"maxCount\":0,\"minCount\":0,\"enablePdfCreation\":true},"
		"{\"id\":\"attachment\",\"allowedContentTypes\":[\"application/pdf\",\"image/png\","
		"null,\"text/plain\"],\"maxSize\":25,\"maxCount\":10,\"minCount\":0,"
		"\"taskId\":\"Task_1\"},"
		"{\"id\":\"model\",\"allowedContentTypes\":[\"application/xml\"],\"appLogic\":{"
		"\"autoCreate\":true,\"classRef\":\"Altinn.App.Models.model\"},\"taskId\":\"Task_1\","
		"\"maxCount\":1,\"minCount\":1},"
		"{\"id\":\"bare\"},{\"noid\":true},{\"id\":\"nulllogic\",\"appLogic\":null,"
		"\"maxCount\":99999999999}],"
		"\"partyTypesAllowed\":{\"person\":false},"
		"\"created\":\"2024-05-15T12:17:03.656228Z\",\"lastChanged\":\"2024-05-15T12:17:03.65623Z\"}";
	struct alt_app *app = NULL;
	struct alt_data_type *t;

	CHECK(json_parse_app(doc, strlen(doc), &app) == 0, "metadata parses");
	if (!app)
		return;
	CHECK(strcmp(app->id, "ttd/basic") == 0 && strcmp(app->org, "ttd") == 0 &&
		      strcmp(app->app, "basic") == 0,
	      "id split into org and app");
	CHECK(app->created.tv_sec == 1715775423 && app->created.tv_nsec == 656228000,
	      "created, got %lld.%09ld", (long long)app->created.tv_sec, app->created.tv_nsec);
	CHECK(app->n_types == 5, "typeless entry dropped, got %zu", app->n_types);
	if (app->n_types == 5) {
		t = &app->types[0];
		CHECK(strcmp(t->id, "ref-data-as-pdf") == 0 && t->max_count == 0 &&
			      !t->has_app_logic && t->task_id == NULL,
		      "pdf type");
		t = &app->types[1];
		CHECK(t->max_size_mb == 25 && t->max_count == 10 && t->task_id &&
			      strcmp(t->task_id, "Task_1") == 0,
		      "attachment limits");
		CHECK(t->allowed_content_types[0] && t->allowed_content_types[2] &&
			      strcmp(t->allowed_content_types[2], "text/plain") == 0 &&
			      t->allowed_content_types[3] == NULL,
		      "content types without the null, NULL-terminated");
		t = &app->types[2];
		CHECK(t->has_app_logic && t->min_count == 1, "model has app logic");
		t = &app->types[3];
		CHECK(t->allowed_content_types && t->allowed_content_types[0] == NULL &&
			      t->max_size_mb == 0 && t->max_count == 1 && t->min_count == 0,
		      "defaults: any type, no size limit, maxCount 1");
		CHECK(!app->types[4].has_app_logic, "null appLogic is no app logic");
		CHECK(app->types[4].max_count == 2147483647, "huge maxCount clamped, got %d",
		      app->types[4].max_count);
	}
	CHECK(app->doc[app->doc_len - 1] == '\n' && strstr(app->doc, "\"dataTypes\": ["),
	      "doc pretty-printed");
	alt_app_free(app);
	alt_app_free(NULL);

	app = (struct alt_app *)0x1;
	CHECK(json_parse_app("{\"id\":\"ttd\"}", 12, &app) == -EIO, "id without app");
	CHECK(json_parse_app("{\"id\":\"ttd/../x\"}", 17, &app) == -EIO, "id with a path");
	CHECK(json_parse_app("{\"id\":\"ttd/..\"}", 15, &app) == -EIO, "id \"..\"");
	CHECK(app == (struct alt_app *)0x1, "ret untouched");
}

/* ---- JWT */

static void test_jwt(void)
{
	const char *hdr = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
	struct jwt_claims c;
	char tok[512];

	snprintf(tok, sizeof(tok), "%s.%s.c2ln", hdr,
		 "eyJ1cm46YWx0aW5uOm9yZyI6InR0ZCIsImNsaWVudF9pZCI6ImFiYyIsInN1YiI6InMiLCJleHAiOjE4OTM0NTYwMDB9");
	CHECK(json_jwt_claims(tok, &c) == 0, "org token decodes");
	CHECK(strcmp(c.subject, "ttd") == 0, "urn:altinn:org wins, got \"%s\"", c.subject);
	CHECK(c.exp.tv_sec == 1893456000, "exp, got %lld", (long long)c.exp.tv_sec);

	snprintf(tok, sizeof(tok), "%s.%s.", hdr,
		 "eyJjbGllbnRfaWQiOiJjLVx1MDBlNlx1MDBmOCIsImV4cCI6MTcwMDAwMDAwMH0");
	CHECK(json_jwt_claims(tok, &c) == 0, "client token decodes");
	CHECK(strcmp(c.subject, "c-\xc3\xa6\xc3\xb8") == 0, "client_id, got \"%s\"", c.subject);

	snprintf(tok, sizeof(tok), "%s.%s.x", hdr, "eyJzdWIiOiJ1c2VyLTEifQ");
	CHECK(json_jwt_claims(tok, &c) == 0 && strcmp(c.subject, "user-1") == 0 &&
		      c.exp.tv_sec == 0,
	      "sub, no exp");
	snprintf(tok, sizeof(tok), "%s.%s.x", hdr, "eyJzY29wZSI6Ing_Pj4ifQ");
	CHECK(json_jwt_claims(tok, &c) == 0 && c.subject[0] == '\0', "url-safe alphabet");

	CHECK(json_jwt_claims("opaque-token", &c) == -EINVAL, "not a JWT");
	CHECK(json_jwt_claims("a.b*d.c", &c) == -EINVAL, "bad base64");
	CHECK(json_jwt_claims("a.bm90IGpzb24.c", &c) == -EINVAL, "payload not JSON");
}

/* ---- errno table */

static void test_errno_table(void)
{
	static const struct {
		long status;
		int err;
	} table[] = {
		{ 200, 0 },	     { 201, 0 },	  { 206, 0 },	       { 400, -EINVAL },
		{ 401, -EACCES },    { 403, -EACCES },	  { 404, -ENOENT },    { 409, -EBUSY },
		{ 413, -EFBIG },     { 429, -EIO },	  { 500, -EIO },       { 502, -EIO },
		{ 503, -EIO },	     { 504, -EIO },	  { 418, -EIO },       { 0, -EIO },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		CHECK(http_errno(CURLE_OK, table[i].status) == table[i].err, "%ld -> %d, got %d",
		      table[i].status, table[i].err, http_errno(CURLE_OK, table[i].status));
	CHECK(http_errno(CURLE_OPERATION_TIMEDOUT, 0) == -ETIMEDOUT, "timeout -> ETIMEDOUT");
	CHECK(http_errno(CURLE_COULDNT_CONNECT, 0) == -EIO, "refused -> EIO");
	CHECK(http_errno(CURLE_RECV_ERROR, 200) == -EIO, "reset -> EIO");
	CHECK(http_errno(CURLE_COULDNT_RESOLVE_HOST, 0) == -EIO, "no such host -> EIO");
}

/* ---- status.json */

static void test_status(void)
{
	struct alt_health h = {
		.checked = true,
		.reachable = false,
		.last_error = "GET /storage/api/v1/instances: 503 Service Unavailable",
		.checked_at = { 1605715001, 5 },
		.token_source = "token_file",
		.token_subject = "ttd",
		.requests = 13,
	};
	struct alt_status_app apps[] = {
		{ .id = "ttd/soknad", .metadata_loaded = true, .instances_listed = 1200,
		  .listed_at = { 1605715001, 0 }, .event_cursor = "e1", .pending_event_files = 2,
		  .push = true, .push_subscription = 42, .push_validated = true },
		{ .id = "ttd/tilskudd" },
	};
	json_t *root, *v;
	char *doc;

	doc = json_status_render(&h, "http://127.0.0.1:1", "/mnt/altinn", apps, 2, NULL);
	root = json_loads(doc, 0, NULL);
	CHECK(root != NULL, "status.json parses: %s", doc);
	CHECK(doc[strlen(doc) - 1] == '\n', "ends in a newline");
	v = json_object_get(root, "platform");
	CHECK(json_is_string(json_object_get(v, "url")) && json_is_false(json_object_get(v, "reachable")) &&
		      strcmp(json_string_value(json_object_get(v, "last_error")), h.last_error) == 0 &&
		      strcmp(json_string_value(json_object_get(v, "checked_at")), "2020-11-18T15:56:41Z") == 0,
	      "platform fields");
	v = json_object_get(root, "token");
	CHECK(strcmp(json_string_value(json_object_get(v, "source")), "token_file") == 0 &&
		      strcmp(json_string_value(json_object_get(v, "subject")), "ttd") == 0 &&
		      json_is_null(json_object_get(v, "expires_at")),
	      "token fields");
	v = json_object_get(root, "outbox");
	CHECK(json_integer_value(json_object_get(v, "pending")) == 0 &&
		      json_is_null(json_object_get(v, "oldest_pending_at")) &&
		      json_is_integer(json_object_get(v, "retries")) &&
		      json_is_integer(json_object_get(v, "failed")),
	      "outbox fields");
	v = json_object_get(json_object_get(root, "events"), "ttd/soknad");
	CHECK(json_is_string(json_object_get(v, "cursor")) &&
	      strcmp(json_string_value(json_object_get(v, "cursor")), "e1") == 0 &&
	      json_integer_value(json_object_get(v, "pending_files")) == 2,
	      "events fields of an app come from its status");
	CHECK(json_integer_value(json_object_get(json_object_get(v, "push"), "subscription")) == 42 &&
	      json_is_true(json_object_get(json_object_get(v, "push"), "validated")),
	      "push: the subscription and whether it is validated");
	CHECK(json_is_null(json_object_get(json_object_get(json_object_get(root, "events"),
							   "ttd/tilskudd"), "push")),
	      "push is null without a webhook");
	CHECK(!json_object_get(root, "instance_writes"), "no give-up ages without them");
	v = json_object_get(json_object_get(root, "events"), "ttd/tilskudd");
	CHECK(json_is_null(json_object_get(v, "cursor")) &&
		      json_is_null(json_object_get(v, "last_poll_at")) &&
		      json_integer_value(json_object_get(v, "pending_files")) == 0,
	      "events per app");
	v = json_object_get(json_object_get(root, "apps"), "ttd/soknad");
	CHECK(json_is_true(json_object_get(v, "metadata_loaded")) &&
		      json_integer_value(json_object_get(v, "instances_listed")) == 1200 &&
		      json_is_string(json_object_get(v, "listed_at")),
	      "apps fields");
	CHECK(json_is_null(json_object_get(json_object_get(json_object_get(root, "apps"),
							   "ttd/tilskudd"), "listed_at")),
	      "never listed is null");
	CHECK(strcmp(json_string_value(json_object_get(root, "mountpoint")), "/mnt/altinn") == 0 &&
		      strcmp(json_string_value(json_object_get(root, "version")), ALTINNFS_VERSION) == 0 &&
		      json_integer_value(json_object_get(root, "requests")) == 13,
	      "mountpoint, version, requests");
	json_decref(root);
	free(doc);

	/* before any request; hostile bytes still give valid JSON */
	memset(&h, 0, sizeof(h));
	snprintf(h.last_error, sizeof(h.last_error), "GET /x: 500 bad \xff\xfe reason");
	snprintf(h.token_subject, sizeof(h.token_subject), "cut \xc3");
	doc = json_status_render(&h, NULL, "/mnt/\xff", NULL, 0, NULL);
	root = json_loads(doc, 0, NULL);
	CHECK(root != NULL, "status.json with odd bytes parses: %s", doc);
	v = json_object_get(root, "platform");
	CHECK(json_is_false(json_object_get(v, "reachable")) &&
		      json_is_null(json_object_get(v, "checked_at")) &&
		      json_is_null(json_object_get(v, "url")),
	      "unchecked platform");
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(root, "token"), "source")),
		     "none") == 0,
	      "no token source reads none");
	json_decref(root);
	free(doc);
}

/* ---- error answers and process states end up in files people cat */

static void test_answers_are_one_printable_line(void)
{
	/* a plain-text body of exactly len bytes, not NUL-terminated */
	char *body = xmalloc(8);
	char out[64];

	memcpy(body, "no route", 8);
	json_problem_text(body, 8, out, sizeof(out));
	CHECK(strcmp(out, "no route") == 0, "plain body read to len, got \"%s\"", out);
	free(body);

	json_problem_text("{\"title\":\"Forbidden\",\"detail\":\"a\\u001b[31mred\\u009b2J\"}",
			  strlen("{\"title\":\"Forbidden\",\"detail\":\"a\\u001b[31mred\\u009b2J\"}"),
			  out, sizeof(out));
	CHECK(strchr(out, 0x1b) == NULL && strstr(out, "\xc2\x9b") == NULL,
	      "no ESC or CSI in a problem's text, got \"%s\"", out);
	CHECK(strncmp(out, "Forbidden: a [31mred", 20) == 0, "the rest is kept, got \"%s\"", out);

	static const char state[] = "{\"currentTask\":{\"elementId\":\"Task_1\\u001b]0;pwned\\u0007\"}}";
	json_process_summary(state, strlen(state), out, sizeof(out));
	CHECK(strchr(out, 0x1b) == NULL && strchr(out, 0x07) == NULL,
	      "no escape in a process summary, got \"%s\"", out);
	CHECK(strncmp(out, "process at Task_1", 17) == 0, "summary, got \"%s\"", out);
}

/* An instance write's receipt and dead letter: jansson writes them, so a
 * long reason is kept whole and quotes stay quoted (it used to be built by
 * hand in a 4 KiB buffer that cut it short). */
static void test_write_report(void)
{
	char *reason = malloc(10001);
	struct json_write_report r = {
		.app_id = "ttd/a", .instance_id = "500/x", .data_type = "vedlegg",
		.name = "a \"b\".pdf", .op = "post", .size = 12, .attempts = 2,
		.at = { 1700000000, 0 },
	};
	json_t *o;
	char *doc;

	doc = json_write_report(&r);
	o = json_loads(doc, 0, NULL);
	CHECK(o && strcmp(json_string_value(json_object_get(o, "name")), "a \"b\".pdf") == 0,
	      "receipt: %s", doc);
	CHECK(o && json_object_get(o, "sent_at") && !json_object_get(o, "error") &&
	      json_is_null(json_object_get(o, "data_id")), "receipt fields: %s", doc);
	json_decref(o);
	free(doc);
	memset(reason, 'x', 10000);
	reason[10000] = '\0';
	r.error = reason;
	doc = json_write_report(&r);
	o = json_loads(doc, 0, NULL);
	CHECK(o && strlen(json_string_value(json_object_get(o, "error"))) == 10000 &&
	      json_object_get(o, "failed_at"), "dead letter cut short (%zu bytes)", strlen(doc));
	json_decref(o);
	free(doc);
	free(reason);
}

int main(void)
{
	log_setup(LOG_LVL_ERROR, false); /* the warnings for bad input are expected */
	json_object_seed(0);
	test_instance();
	test_instance_minimal_and_complete();
	test_malformed_ids();
	test_bad_elements();
	test_content_hash();
	test_element_cap();
	test_times();
	test_ids();
	test_page();
	test_app();
	test_jwt();
	test_errno_table();
	test_status();
	test_answers_are_one_printable_line();
	test_write_report();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("all json checks passed\n");
	return failures ? 1 : 0;
}
