/* content.c - the generated files: README.txt and status.json.
 *
 * README.txt is the map a person finds first, with the mount's own apps
 * in its examples. status.json is rendered by daemon/ from what the
 * daemon already knows: reading it never makes a request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

static const char readme_text[] =
	"altinnfs: this folder is the Altinn 3 platform, as files\n"
	"=======================================================\n"
	"\n"
	"Browsing reads the platform; every name below is part of a stable contract.\n"
	"\n"
	"README.txt      this file\n"
	"status.json     health: is the platform reachable, the last error, the token's\n"
	"                source and expiry (never the token), queues and event cursors\n"
	"apps/<org>/<app>/\n"
	"  application.json    the app's metadata: data types, allowed content types,\n"
	"                      limits (maxSize is in MB)\n"
	"  instances/<partyId>/<instanceGuid>/\n"
	"    instance.json     the instance document as the platform returns it\n"
	"    ctl               write one command: next [action], complete, or\n"
	"                      substatus <label> [description]; read it for the result\n"
	"    data/<dataType>/<name>\n"
	"                      one file per data element, with the platform's bytes.\n"
	"                      The name is the element's filename; without one it is\n"
	"                      <dataGuid>.<ext>. Unsafe characters ('/', control\n"
	"                      characters) become '_'; when two elements of one data type\n"
	"                      share a name, each gets -<first 8 hex digits of its guid>.\n"
	"\n"
	"Sizes and times come from the documents: mtime is lastChanged, ctime is created.\n"
	"Extended attributes (getfattr -d FILE) tell what a file is on the platform:\n"
	"  user.altinn.id            <partyId>/<instanceGuid> on an instance folder,\n"
	"                            the data guid on a data file\n"
	"  user.altinn.data_type     the data type of a data file\n"
	"  user.altinn.content_type  its content type\n"
	"  user.altinn.filename      its filename on the platform, when it has one\n"
	"\n"
	"  inbox/<partyId>-<instanceGuid>\n"
	"                      a link to each completed instance not yet confirmed,\n"
	"                      oldest first; rm confirms it (durably, with retries)\n"
	"  events/<number>_<type>_<id>.json\n"
	"                      one file per platform event (the CloudEvent as sent),\n"
	"                      numbered in arrival order; it appears complete, so\n"
	"                      inotifywait -m -e moved_to events/ sees each once;\n"
	"                      rm acknowledges it for good\n"
	"\n"
	"Listings are cached for cache_ttl seconds; data files are read with range\n"
	"requests, so reading the start of a large file does not download all of it.\n"
	"The platform's documents are read-only: writing them fails with EROFS.\n"
	"\n"
	"Try:\n";

char *tree_readme(struct fs *fs, size_t *ret_len)
{
	size_t cap = sizeof(readme_text) + 512 * (view_n_apps(fs->view) + 1);
	char *out = xmalloc(cap);
	size_t n = (size_t)snprintf(out, cap, "%s", readme_text);

	for (size_t i = 0; i < view_n_apps(fs->view) && n < cap; i++) {
		struct view_app *va = view_app_at(fs->view, i);
		const char *org = view_app_org(va), *app = view_app_name(va);

		n += (size_t)snprintf(out + n, cap - n,
				      "  jq .dataTypes apps/%s/%s/application.json\n"
				      "  ls -l apps/%s/%s/instances/\n"
				      "  find apps/%s/%s/instances -type f -newermt yesterday\n",
				      org, app, org, app, org, app);
	}
	if (n < cap)
		n += (size_t)snprintf(out + n, cap - n,
				      "  getfattr -d apps/<org>/<app>/instances/<party>/<guid>/data/*/*\n");
	*ret_len = n < cap ? n : cap - 1;
	return out;
}

char *tree_status(struct fs *fs, size_t *ret_len)
{
	size_t n = view_n_apps(fs->view);
	struct alt_status_app *apps = xcalloc(n ? n : 1, sizeof(*apps));
	char **ids = xcalloc(n ? n : 1, sizeof(*ids));
	char *doc;

	for (size_t i = 0; i < n; i++) {
		struct view_app *va = view_app_at(fs->view, i);

		ids[i] = xasprintf("%s/%s", view_app_org(va), view_app_name(va));
		view_app_status(va, &apps[i]);
		apps[i].id = ids[i];
		if (fs->status_hooks.app)
			fs->status_hooks.app(fs->status_hooks.ctx, view_app_org(va),
					     view_app_name(va), &apps[i]);
	}
	if (fs->status_hooks.outbox) {
		struct alt_status_outbox ob = { 0 };

		fs->status_hooks.outbox(fs->status_hooks.ctx, &ob);
		doc = altinn_status_render(fs->a, fs->mountpoint, apps, n, &ob);
	} else {
		doc = altinn_status_render(fs->a, fs->mountpoint, apps, n, NULL);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(apps);
	*ret_len = strlen(doc);
	return doc;
}
