/* test_outbox.c - the outbox's pure rules and its journal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_app.h"
#include "config.h"
#include "caps.h"
#include "outbox_rules.h"
#include "spool.h"

static int failures;

#define CHECK(cond) check((cond), #cond, __LINE__)

static void check(int ok, const char *what, int line)
{
	if (!ok) {
		fprintf(stderr, "%s:%d: %s\n", __FILE__, line, what);
		failures++;
	}
}

static void test_owners(void)
{
	const char *key, *value;

	CHECK(outbox_owner_parse("org-910000004", &key, &value) &&
	      strcmp(key, "organisationNumber") == 0 && strcmp(value, "910000004") == 0);
	CHECK(outbox_owner_parse("person-01017010170", &key, &value) &&
	      strcmp(key, "personNumber") == 0);
	CHECK(outbox_owner_parse("party-50001", &key, &value) && strcmp(key, "partyId") == 0 &&
	      strcmp(value, "50001") == 0);
	CHECK(!outbox_owner_parse("org-91000000", &key, &value));
	CHECK(!outbox_owner_parse("org-9100000041", &key, &value));
	CHECK(!outbox_owner_parse("person-0101701017", &key, &value));
	CHECK(!outbox_owner_parse("party-", &key, &value));
	CHECK(!outbox_owner_parse("party-1x", &key, &value));
	CHECK(!outbox_owner_parse("ORG-910000004", &key, &value));
	CHECK(!outbox_owner_parse("firma", &key, &value));
}

static void test_temp_names(void)
{
	const char *temp[] = { ".a.pdf", ".a.pdf.XyZ123", "a.tmp", "a.TMP", "a.part", "a.filepart",
			       "a.crdownload", ".a.swp", "a.pdf~", "~$rapport.docx", NULL };
	const char *real[] = { "a.pdf", "tmp.pdf", "a.partial", "a~b.pdf", "~rapport.docx", NULL };

	for (int i = 0; temp[i]; i++)
		CHECK(outbox_temp_name(temp[i]));
	for (int i = 0; real[i]; i++)
		CHECK(!outbox_temp_name(real[i]));
}

static void test_content_types(void)
{
	CHECK(strcmp(app_content_type("a.pdf"), "application/pdf") == 0);
	CHECK(strcmp(app_content_type("A.PDF"), "application/pdf") == 0);
	CHECK(strcmp(app_content_type("bilde.jpeg"), "image/jpeg") == 0);
	CHECK(strcmp(app_content_type("x.tar.gz"), "application/x-gzip") == 0);
	CHECK(strcmp(app_content_type("data.xyz"), "application/octet-stream") == 0);
	/* not in app-lib's MimeTypeMap */
	CHECK(strcmp(app_content_type("a.log"), "application/octet-stream") == 0);
	CHECK(strcmp(app_content_type("a.md"), "application/octet-stream") == 0);
	CHECK(strcmp(app_content_type("a.msg"), "application/octet-stream") == 0);
	CHECK(app_content_type("README") == NULL);
	CHECK(app_content_type("slutt.") == NULL);
}

static void test_type_setting(void)
{
	char *t = outbox_type_setting("ttd/soknad:attachment, ttd/tilskudd:vedlegg", "ttd",
				      "tilskudd");

	CHECK(t && strcmp(t, "vedlegg") == 0);
	free(t);
	t = outbox_type_setting("ttd/soknad:attachment", "ttd", "soknad2");
	CHECK(t == NULL);
	CHECK(outbox_type_setting(NULL, "ttd", "soknad") == NULL);
}

static void test_choose(void)
{
	char *pdf_png[] = { "application/pdf", "image/png", NULL };
	char *octet[] = { "application/octet-stream", NULL };
	char *none[] = { NULL };
	struct alt_data_type types[] = {
		{ .id = "ref-data-as-pdf", .allowed_content_types = none },
		{ .id = "model", .allowed_content_types = none, .has_app_logic = true },
		{ .id = "attachment", .allowed_content_types = pdf_png, .max_size_mb = 25 },
		{ .id = "vedlegg", .allowed_content_types = octet, .max_size_mb = 300 },
	};
	struct alt_app app = { .id = "ttd/test", .types = types, .n_types = 4 };
	const struct alt_data_type *t = NULL;
	char *why = NULL;

	CHECK(outbox_choose_type(&app, NULL, "application/pdf", 10, &t, &why) == 0 &&
	      strcmp(t->id, "attachment") == 0);
	CHECK(outbox_choose_type(&app, NULL, "text/csv", 10, &t, &why) == 0 &&
	      strcmp(t->id, "vedlegg") == 0);
	/* too big for attachment: the next type that takes it */
	CHECK(outbox_choose_type(&app, NULL, "application/pdf", 26u << 20, &t, &why) == 0 &&
	      strcmp(t->id, "vedlegg") == 0);
	CHECK(outbox_choose_type(&app, NULL, "application/pdf", 301u << 20, &t, &why) == -EFBIG);
	CHECK(why && strstr(why, "maxSize"));
	free(why);
	why = NULL;
	app.n_types = 3;
	CHECK(outbox_choose_type(&app, NULL, "text/csv", 10, &t, &why) == -EINVAL);
	free(why);
	why = NULL;
	CHECK(outbox_choose_type(&app, "model", "application/xml", 10, &t, &why) == 0 &&
	      strcmp(t->id, "model") == 0);
	CHECK(outbox_choose_type(&app, "nope", "application/pdf", 10, &t, &why) == -EINVAL);
	free(why);
}

/* allowedContributors, actionRequiredToWrite and the request limit */
static void test_choose_contributors(void)
{
	char *json[] = { "application/json", NULL };
	char *owned[] = { "app:owned", NULL };
	char *ours[] = { "orgno:991825827", "ORG:TTD", NULL };
	char *theirs[] = { "org:skd", "orgno:991825827", NULL };
	struct alt_data_type types[] = {
		{ .id = "signatur", .allowed_content_types = json, .allowed_contributors = owned },
		{ .id = "betaling", .allowed_content_types = json,
		  .action_required_to_write = "pay" },
		{ .id = "skd", .allowed_content_types = json, .allowed_contributors = theirs },
		{ .id = "ours", .allowed_content_types = json, .allowed_contributors = ours },
	};
	struct alt_app app = { .id = "ttd/test", .org = "ttd", .types = types, .n_types = 4 };
	const struct alt_data_type *t = NULL;
	char *why = NULL;

	CHECK(!app_contributor(&types[0], "ttd") && app_contributor(&types[1], "ttd"));
	CHECK(!app_contributor(&types[2], "ttd") && app_contributor(&types[3], "ttd"));
	CHECK(outbox_choose_type(&app, NULL, "application/json", 10, &t, &why) == 0 &&
	      strcmp(t->id, "ours") == 0);
	app.n_types = 3;
	CHECK(outbox_choose_type(&app, NULL, "application/json", 10, &t, &why) == -EINVAL);
	CHECK(why && strstr(why, "allowedContributors"));
	free(why);
	why = NULL;
	CHECK(outbox_choose_type(&app, "signatur", "application/json", 10, &t, &why) == -EACCES);
	free(why);
	why = NULL;
	app.n_types = 4;
	CHECK(outbox_choose_type(&app, NULL, "application/json", ALT_MAX_UPLOAD + 1, &t, &why) ==
	      -EFBIG);
	CHECK(why && strstr(why, "2000 MiB"));
	free(why);
}

/* Names encoded so that Storage's double URL-decode gives them back, and
 * the replace path's plain filename= reads non-ASCII names */
static void test_content_disposition(void)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
		{ "a.pdf", "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf" },
		{ "a+b 50%.pdf", "attachment; filename=\"a%252Bb 50%2525.pdf\"; "
				 "filename*=UTF-8''a%25252Bb%2050%252525.pdf" },
		{ "a\"b.pdf", "attachment; filename=\"a%2522b.pdf\"; filename*=UTF-8''a%252522b.pdf" },
		{ "s\xc3\xb8knad.pdf", "attachment; filename=\"=?utf-8?B?c8O4a25hZC5wZGY=?=\"; "
				     "filename*=UTF-8''s%C3%B8knad.pdf" },
		{ "a\\b.pdf", "attachment; filename=\"=?utf-8?B?YVxiLnBkZg==?=\"; "
				"filename*=UTF-8''a%5Cb.pdf" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *v = app_content_disposition(cases[i].name);

		CHECK(strcmp(v, cases[i].want) == 0);
		if (strcmp(v, cases[i].want) != 0)
			fprintf(stderr, "  got %s\n", v);
		free(v);
	}
}

/* Where App API calls go without apps_url */
static void test_app_base(void)
{
	struct config cfg;
	char *err = NULL, *v;

	config_init(&cfg);
	CHECK(config_set(&cfg, "platform", "https://platform.tt02.altinn.no", &err) == 0);
	CHECK(config_set(&cfg, "apps", "ttd/soknad", &err) == 0);
	CHECK(config_set(&cfg, "token_file", "/dev/null", &err) == 0);
	v = config_app_base(&cfg, "ttd");
	CHECK(strcmp(v, "https://ttd.apps.tt02.altinn.no") == 0);
	free(v);
	free(cfg.platform);
	cfg.platform = strdup("https://tt02.altinn.no");
	CHECK(config_check(&cfg, &err) == -EINVAL && err && strstr(err, "apps_url"));
	free(err);
	free(cfg.platform);
	cfg.platform = strdup("http://127.0.0.1:8080");
	v = config_app_base(&cfg, "ttd");
	CHECK(strcmp(v, "http://127.0.0.1:8080") == 0);
	free(v);
	config_free(&cfg);
}

static int loaded;

static void on_item(void *ctx, struct spool_item *it)
{
	struct spool_item *want = ctx;

	loaded++;
	CHECK(it->id == want->id && it->state == SPOOL_CREATED);
	CHECK(strcmp(it->instance_id, "60000001/0000aaaa-0000-4000-8000-000000000001") == 0);
	CHECK(it->n_els == 1 && it->els[0].state == SPOOL_EL_SENDING && it->els[0].size == 42);
	CHECK(strcmp(it->els[0].sha256, "ab") == 0);
	spool_item_free(it);
}

static void test_spool(void)
{
	char dir[] = "/tmp/test_outbox.XXXXXX";
	struct spool_element el = { .path = "", .filename = "a.pdf", .content_type = "application/pdf",
				    .data_type = "attachment", .size = 42, .sha256 = "ab",
				    .state = SPOOL_EL_SENDING, .attempt_at = 1 };
	struct spool_item it = { .org = "ttd", .app = "soknad", .rel = "org-910000004/a.pdf",
				 .state = SPOOL_RECEIVED, .received_at = 5 };
	struct spool_item again = it;
	struct spool *sp;
	char path[256], *v = NULL;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/outbox.db", dir);
	CHECK(spool_open(path, 30, &sp) == 0);
	CHECK(spool_save(sp, &it, false) == 0 && it.id > 0);
	/* a new drop under the same name replaces a waiting one */
	CHECK(spool_save(sp, &again, false) == 0 && again.id != it.id);
	it = again;
	it.state = SPOOL_CREATED;
	it.instance_id = "60000001/0000aaaa-0000-4000-8000-000000000001";
	it.els = &el;
	it.n_els = 1;
	CHECK(spool_save(sp, &it, true) == 0);
	CHECK(spool_instance_claimed(sp, it.instance_id, 0));
	CHECK(!spool_instance_claimed(sp, it.instance_id, it.id));
	CHECK(spool_fact_set(sp, "party:org-910000004", "60000001") == 0);
	CHECK(spool_fact_get(sp, "party:org-910000004", &v) == 0 && v && strcmp(v, "60000001") == 0);
	free(v);
	spool_close(sp);
	CHECK(spool_open(path, 30, &sp) == 0);
	CHECK(spool_load(sp, on_item, &it) == 0 && loaded == 1);
	it.state = SPOOL_FAILED;
	CHECK(spool_save(sp, &it, false) == 0 && spool_count_failed(sp) == 1);
	spool_close(sp);
	unlink(path);
	snprintf(path, sizeof(path), "%s/outbox.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/outbox.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_owners();
	test_temp_names();
	test_content_types();
	test_type_setting();
	test_choose();
	test_choose_contributors();
	test_content_disposition();
	test_app_base();
	test_spool();
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
