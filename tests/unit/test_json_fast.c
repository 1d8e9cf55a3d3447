/* test_json_fast.c - the page scanner (json_fast.c) against jansson.
 *
 * The index stores the instance text the scanner hands on and parses it
 * when the instance is looked at, so the scanner must never hand on a
 * document jansson would not take, nor facts other than the parse gives.
 * Checked on sample pages, on the cases it must leave to jansson, and on
 * some thousands of pages mutated byte by byte: whenever the scanner
 * answers, jansson loads the page as it is (no mending) unless an instance
 * is left to it, every document
 * not marked unsure loads alone and parses into the facts scanned, and
 * the instances kept are the page parse's, in its order. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "json.h"
#include "log.h"
#include "xalloc.h"

#include "check.h"

static const char page_text[] =
	"{\"count\":3,\"self\":\"http://h/x\",\"next\":\"http://h/x?continuationToken=A%3D\","
	"\"instances\":["
	"{\"id\":\"700001/5CA1E000-0000-4000-8000-000000000001\",\"instanceOwner\":"
	"{\"partyId\":\"700001\",\"personNumber\":\"01019012345\"},\"appId\":\"ttd/skala\","
	"\"title\":{\"nb\":\"\xc3\x85se \xe2\x82\xac \\\"q\\\" \\n\"},\"n\":[1,-2,0.5,true,false,null,{}],"
	"\"process\":{\"started\":\"2025-01-01T01:46:30.0000000Z\",\"ended\":\"2025-01-02T00:00:00Z\"},"
	"\"status\":{\"isHardDeleted\":false},\"data\":[{\"id\":\"da7a0000-0000-4000-8000-000000000001\","
	"\"dataType\":\"model\",\"size\":56}],\"created\":\"2025-01-01T01:46:30.0000000Z\","
	"\"lastChanged\":\"2025-01-01T02:00:00.5Z\"},"
	" {\"id\": \"700002/5ca1e000-0000-4000-8000-000000000002\", \"status\": {\"isHardDeleted\": true},"
	" \"lastChanged\": \"2025-01-03T00:00:00Z\", \"created\": null},\n"
	"7,"
	"{\"id\":\"x/5ca1e000-0000-4000-8000-000000000003\"},"
	"{\"id\":\"700003/5ca1e000-0000-4000-8000-000000000004\",\"instanceOwner\":{\"partyId\":700003},"
	"\"lastChanged\":\"2025-01-04T00:00:00+01:00\"}"
	"]}";

struct fact {
	char id[64];
	struct timespec created, changed;
	bool complete, deleted;
};

static bool same_ts(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool same_fact(const struct fact *a, const struct fact *b)
{
	return strcmp(a->id, b->id) == 0 && same_ts(a->created, b->created) &&
	       same_ts(a->changed, b->changed) && a->complete == b->complete &&
	       a->deleted == b->deleted;
}

static void fact_of(const struct alt_instance *inst, struct fact *f)
{
	snprintf(f->id, sizeof(f->id), "%s/%s", inst->party_id, inst->guid);
	f->created = inst->created;
	f->changed = inst->last_changed;
	f->complete = inst->is_complete;
	f->deleted = inst->hard_deleted;
}

static bool loads(const char *text, size_t len)
{
	json_error_t err;
	json_t *v = json_loadb(text, len, 0, &err);

	json_decref(v);
	return v != NULL;
}

/* Checks the invariants on one text; returns 1 when the scanner answered,
 * 0 when it left the page to jansson; *ret_unsure counts instances left. */
static int compare(const char *text, size_t len, size_t *ret_unsure)
{
	struct json_fast_page fast;
	struct json_page page;
	struct fact *kept;
	size_t n_kept = 0, unsure = 0;

	if (json_fast_page(text, len, &fast) < 0)
		return 0;
	for (size_t i = 0; i < fast.n; i++)
		unsure += fast.inst[i].unsure;
	/* an instance left to jansson may need mending (alone, as the page would) */
	CHECK(unsure || loads(text, len), "the scanner took a page jansson does not load: %.*s",
	      (int)len, text);
	unsure = 0;
	if (json_parse_page(text, len, &page) < 0) {
		CHECK(0, "the scanner took a page the page parse refuses: %.*s", (int)len, text);
		json_fast_page_clear(&fast);
		return 1;
	}
	kept = xcalloc(fast.n + 1, sizeof(*kept));
	for (size_t i = 0; i < fast.n; i++) {
		const struct json_fast_inst *fi = &fast.inst[i];
		struct alt_instance *inst;
		int r = json_parse_instance(fi->doc, fi->doc_len, &inst);

		if (fi->unsure) {
			unsure++;
			if (r == 0) {
				fact_of(inst, &kept[n_kept++]);
				alt_instance_unref(inst);
			}
			continue;
		}
		CHECK(loads(fi->doc, fi->doc_len), "a document handed on does not load: %.*s",
		      (int)fi->doc_len, fi->doc);
		CHECK(r == 0, "a document handed on does not parse: %.*s", (int)fi->doc_len, fi->doc);
		if (r < 0)
			continue;
		{
			struct fact f, g;

			fact_of(inst, &f);
			snprintf(g.id, sizeof(g.id), "%s/%s", fi->party_id, fi->guid);
			g.created = fi->created;
			g.changed = fi->last_changed;
			g.complete = fi->is_complete;
			g.deleted = fi->hard_deleted;
			CHECK(same_fact(&f, &g), "scanned facts of %s differ from the parse's (%s)", g.id,
			      f.id);
			kept[n_kept++] = f;
		}
		alt_instance_unref(inst);
	}
	CHECK(n_kept == page.n_instances, "%zu instances kept, the page parse keeps %zu", n_kept,
	      page.n_instances);
	for (size_t i = 0; i < n_kept && i < page.n_instances; i++) {
		struct fact f;

		fact_of(page.instances[i], &f);
		CHECK(same_fact(&f, &kept[i]), "instance %zu: %s, the page parse has %s", i,
		      kept[i].id, f.id);
	}
	CHECK((!fast.next && !page.next) ||
	      (fast.next && page.next && strcmp(fast.next, page.next) == 0),
	      "next \"%s\" against \"%s\"", fast.next ? fast.next : "(none)",
	      page.next ? page.next : "(none)");
	free(kept);
	json_page_clear(&page);
	json_fast_page_clear(&fast);
	if (ret_unsure)
		*ret_unsure = unsure;
	return 1;
}

static void test_sample(void)
{
	struct json_fast_page fast;
	size_t unsure = 99;

	CHECK(compare(page_text, strlen(page_text), &unsure) == 1, "the sample page is scanned");
	/* the integer partyId and the malformed id are jansson's */
	CHECK(unsure == 2, "%zu instances left to jansson, want 2", unsure);
	CHECK(json_fast_page(page_text, strlen(page_text), &fast) == 0, "scanned");
	CHECK(fast.n == 4, "%zu objects in instances, want 4", fast.n);
	if (fast.n == 4) {
		CHECK(strcmp(fast.inst[0].guid, "5ca1e000-0000-4000-8000-000000000001") == 0,
		      "guid lowercased: %s", fast.inst[0].guid);
		CHECK(fast.inst[0].is_complete && !fast.inst[0].hard_deleted, "first: complete");
		CHECK(fast.inst[1].hard_deleted && !fast.inst[1].is_complete, "second: deleted");
		CHECK(fast.inst[0].doc[0] == '{' && fast.inst[0].doc[fast.inst[0].doc_len - 1] == '}',
		      "a document is the object's text");
	}
	json_fast_page_clear(&fast);
}

/* Pages the scanner must leave to jansson, or whose instance it must. */
static void test_left_to_jansson(void)
{
	static const struct {
		const char *text;
		int page; /* 0: left whole; 1: scanned, the instance unsure */
	} cases[] = {
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\"}],\"next\":\"a\\u0041\"}", 0 },
		{ "{\"instances\":[],\"instances\":[]}", 0 },
		{ "{\"instances\":{}}", 0 },
		{ "{\"instances\":[]} x", 0 },
		{ "{\"instances\":[{\"a\":\"\xff\"}]}", 0 },
		{ "{\"instances\":[{\"a\":\"\xed\xa0\x80\"}]}", 0 },
		{ "{\"instances\":[{\"a\":\"\xc0\xaf\"}]}", 0 },
		{ "{\"instances\":[{\"a\":\"\x01\"}]}", 0 },
		{ "{\"instances\":[{\"a\":01}]}", 0 },
		{ "{\"instances\":[{\"a\":1.}]}", 0 },
		{ "{\"instances\":[{\"a\":tru}]}", 0 },
		{ "{\"instances\":[{\"a\":1,}]}", 0 },
		{ "{\"in\\u0073tances\":[]}", 0 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"a\":1e999}]}", 1 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"a\":12345678901234567890}]}", 1 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"a\":\"\\u0000\"}]}", 1 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"id\":\"2/5ca1e000-0000-4000-8000-000000000001\"}]}", 1 },
		{ "{\"instances\":[{\"i\\u0064\":\"2/5ca1e000-0000-4000-8000-000000000001\",\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\"}]}", 1 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"status\":{\"isHardDeleted\":false,\"isHardDeleted\":true}}]}", 1 },
		{ "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"process\":{\"ended\":null,\"ended\":\"2025-01-01T00:00:00Z\"}}]}", 1 },
	};
	char deep[400];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct json_fast_page fast;
		int r = json_fast_page(cases[i].text, strlen(cases[i].text), &fast);

		if (cases[i].page == 0) {
			CHECK(r == -EAGAIN, "case %zu: scanned, should be left to jansson: %s", i,
			      cases[i].text);
			continue;
		}
		CHECK(r == 0 && fast.n == 1 && fast.inst[0].unsure,
		      "case %zu: the instance should be left to jansson: %s", i, cases[i].text);
		if (r == 0)
			json_fast_page_clear(&fast);
		compare(cases[i].text, strlen(cases[i].text), NULL);
	}
	/* deeper than ALT_MAX_DOC_DEPTH allows: the parse skips it */
	n += (size_t)snprintf(deep, sizeof(deep),
			      "{\"instances\":[{\"id\":\"1/5ca1e000-0000-4000-8000-000000000001\",\"a\":");
	for (int i = 0; i < 70; i++)
		deep[n++] = '[';
	for (int i = 0; i < 70; i++)
		deep[n++] = ']';
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}]}");
	{
		struct json_fast_page fast;

		CHECK(json_fast_page(deep, n, &fast) == 0 && fast.n == 1 && fast.inst[0].unsure,
		      "a deep instance is left to jansson");
		json_fast_page_clear(&fast);
		compare(deep, n, NULL);
	}
}

/* Mutated pages: one to three bytes replaced, inserted or removed. */
static void test_mutations(void)
{
	static const char alphabet[] = "\"\\{}[],:0 9eE-+.tfnu/\x00\x1f\x7f\xc3\x85\xed\xff\xe2";
	size_t base = strlen(page_text), scanned = 0;
	char *buf = xmalloc(base + 8);
	unsigned seed = 12345;
	int runs = 30000;

	for (int run = 0; run < runs; run++) {
		size_t n = base;
		int edits = 1 + run % 3;

		memcpy(buf, page_text, base);
		for (int e = 0; e < edits; e++) {
			size_t at;
			char c;

			seed = seed * 1103515245u + 12345u;
			at = (seed >> 8) % n;
			c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			switch ((seed >> 28) % 3) {
			case 0:
				buf[at] = c;
				break;
			case 1:
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = c;
				n++;
				break;
			default:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
		}
		scanned += (size_t)compare(buf, n, NULL);
		if (failures > 20)
			break;
	}
	/* a test of nothing would pass too: most edits must still be scanned */
	CHECK(scanned > (size_t)runs / 4, "only %zu of %d mutated pages scanned", scanned, runs);
	free(buf);
}

int main(void)
{
	log_setup(LOG_LVL_ERROR, false); /* the parse's warnings are expected */
	json_object_seed(0);
	test_sample();
	test_left_to_jansson();
	test_mutations();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("all json_fast checks passed\n");
	return failures ? 1 : 0;
}
