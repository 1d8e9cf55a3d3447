/* content.c - the generated files: README.txt and status.json.
 *
 * README.txt is the map a person finds first, with the mount's own apps
 * in its examples. status.json is rendered by daemon/ from what the
 * daemon already knows: reading it never makes a request. */
#include "content.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "fs.h"
#include "fs_i.h"
#include "view.h"
#include "xalloc.h"

/* README.txt, one part per place of the tree, in the tree's order: the
 * places fs/ serves itself here, then each family's own (its readme in
 * family.h). Every folder of an app has its part, with an example;
 * "{app}" in an example stands for the first mounted org/app;
 * test_02_tree checks that each folder an app shows has one. */

static const char readme_head[] =
	"altinnfs: this folder is the Altinn 3 platform, as files\n"
	"=======================================================\n"
	"\n"
	"Browsing reads the platform; writing sends to it. Every name below is part\n"
	"of a stable contract. Each place is followed by what it is and an example.\n"
	"\n";

static const struct fs_readme_part readme_parts[] = {
	{ "README.txt", "this file\n", NULL },
	{ "status.json",
	  "health: is the platform reachable, the last error, the token's source and\n"
	  "expiry (never the token), queues and event cursors\n",
	  "jq .platform status.json" },
	{ "apps/<org>/<app>/application.json",
	  "the app's metadata: data types, allowed content types, limits (maxSize in MB)\n",
	  "jq .dataTypes apps/{app}/application.json" },
	{ "apps/<org>/<app>/instances/<partyId>/<instanceGuid>/instance.json",
	  "the instance document as the platform returns it (read-only: EROFS)\n",
	  "find apps/{app}/instances -name instance.json -newermt yesterday" },
	{ "apps/<org>/<app>/instances/<partyId>/<instanceGuid>/data/<dataType>/<name>",
	  "one file per data element, with the platform's bytes. The name is the\n"
	  "element's filename, else <dataGuid>.<ext>; unsafe characters become '_';\n"
	  "two elements of one type with one name each get -<first 8 hex of guid>.\n"
	  "Write a new name to add an element, overwrite or rm one to replace or\n"
	  "delete it. Extended attributes tell what a file is on the platform:\n"
	  "user.altinn.id, .data_type, .content_type, .filename, and .state while a\n"
	  "write is pending\n",
	  "getfattr -d -e text apps/{app}/instances/*/*/data/*/*" },
};

static const char readme_tail[] =
	"Sizes and times come from the documents: mtime is lastChanged, ctime is\n"
	"created. Listings are trusted for cache_ttl seconds. The platform's documents\n"
	"are read-only: writing them fails with EROFS.\n";

/* README.txt as it is built */
struct text {
	char *p;
	size_t len, cap;
};

static void put(struct text *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct text *b, const char *s)
{
	put(b, s, strlen(s));
}

/* "    $ " and s with every "{app}" replaced by app */
static void put_example(struct text *b, const char *s, const char *app)
{
	const char *hole;

	puts_(b, "    $ ");
	while ((hole = strstr(s, "{app}"))) {
		put(b, s, (size_t)(hole - s));
		puts_(b, app);
		s = hole + strlen("{app}");
	}
	puts_(b, s);
	puts_(b, "\n");
}

static void put_indented(struct text *b, const char *lines)
{
	while (*lines) {
		const char *eol = strchr(lines, '\n');
		size_t n = eol ? (size_t)(eol - lines) + 1 : strlen(lines);

		puts_(b, "    ");
		put(b, lines, n);
		lines += n;
	}
}

static void put_part(struct text *b, const struct fs_readme_part *part, const char *app)
{
	puts_(b, part->place);
	puts_(b, "\n");
	put_indented(b, part->about);
	if (part->example)
		put_example(b, part->example, app);
	puts_(b, "\n");
}

char *content_readme(struct fs *fs, size_t *ret_len)
{
	struct text b = { 0 };
	char *app;

	if (view_n_apps(fs->view) > 0) {
		struct view_app *va = view_app_at(fs->view, 0);

		app = xasprintf("%s/%s", view_app_org(va), view_app_name(va));
	} else {
		app = xstrdup("<org>/<app>");
	}
	puts_(&b, readme_head);
	for (size_t i = 0; i < sizeof(readme_parts) / sizeof(readme_parts[0]); i++)
		put_part(&b, &readme_parts[i], app);
	for (size_t f = 0; f < fs->n_families; f++)
		for (const struct fs_readme_part *part = fs->families[f].readme;
		     part && part->place; part++)
			put_part(&b, part, app);
	puts_(&b, readme_tail);
	free(app);
	*ret_len = b.len;
	return b.p;
}

void fs_status_snapshot(struct fs *fs, struct fs_status_snapshot *ret)
{
	size_t n = view_n_apps(fs->view);

	memset(ret, 0, sizeof(*ret));
	ret->apps = xcalloc(n ? n : 1, sizeof(*ret->apps));
	ret->ids = xcalloc(n ? n : 1, sizeof(*ret->ids));
	ret->n_apps = n;
	for (size_t i = 0; i < n; i++) {
		struct view_app *va = view_app_at(fs->view, i);

		ret->ids[i] = xasprintf("%s/%s", view_app_org(va), view_app_name(va));
		view_app_status(va, &ret->apps[i]);
		ret->apps[i].id = ret->ids[i];
		for (size_t f = 0; f < fs->n_families; f++)
			if (fs->families[f].status_app)
				fs->families[f].status_app(fs->families[f].ctx, view_app_org(va),
							   view_app_name(va), &ret->apps[i]);
	}
	for (size_t f = 0; f < fs->n_families; f++)
		if (fs->families[f].status) {
			fs->families[f].status(fs->families[f].ctx, &ret->outbox);
			ret->have_outbox = true;
		}
}

void fs_status_snapshot_free(struct fs_status_snapshot *s)
{
	for (size_t i = 0; i < s->n_apps; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->apps);
	memset(s, 0, sizeof(*s));
}

char *content_status(struct fs *fs, size_t *ret_len)
{
	struct fs_status_snapshot s;
	char *doc;

	fs_status_snapshot(fs, &s);
	doc = altinn_status_render(fs->a, fs->mountpoint, s.apps, s.n_apps,
				   s.have_outbox ? &s.outbox : NULL);
	fs_status_snapshot_free(&s);
	*ret_len = strlen(doc);
	return doc;
}

char *content_scope_status(struct fs *fs, int scope, size_t *ret_len)
{
	const struct fs_scope *sc;
	const struct fs_family *f;

	if (scope <= 0 || (size_t)scope > fs->n_scopes)
		return NULL;
	sc = &fs->scopes[scope - 1];
	f = &fs->families[sc->family];
	return f->scope_status ? f->scope_status(f->ctx, sc->name, ret_len) : NULL;
}
