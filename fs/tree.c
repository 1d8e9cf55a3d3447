/* tree.c - names, kinds and attributes of every place in the tree.
 *
 * The fixed part (README.txt, status.json, apps/<org>/<app>/...) comes
 * from the configuration; below instances/ everything comes from the
 * cached views, so a stat never costs a request of its own. Times are
 * the documents' own: mtime = lastChanged, ctime = created. */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "config.h"
#include "content.h"
#include "layout.h"
#include "local.h"
#include "pending.h"
#include "view.h"
#include "xalloc.h"

#define DIR_MODE (S_IFDIR | 0555)
#define FILE_MODE (S_IFREG | 0444)

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void fill_stat(struct fs *fs, struct stat *st, mode_t mode, off_t size,
		      struct timespec mtime, struct timespec ctime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = 1; /* unknown subfolder count: find must not guess */
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = size;
	st->st_blksize = 128 * 1024;
	st->st_blocks = size / 512 + (size % 512 != 0); /* no overflow at OFF_MAX */
	if (mtime.tv_sec == 0 && mtime.tv_nsec == 0)
		mtime = fs->started;
	if (ctime.tv_sec == 0 && ctime.tv_nsec == 0)
		ctime = mtime;
	st->st_mtim = mtime;
	st->st_atim = mtime;
	st->st_ctim = ctime;
}

/* An entry that inherits dir's keys, with its own name and kind. */
static void entry_init(struct entry *e, struct node *dir, const char *name, enum node_kind kind)
{
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	e->kind = kind;
	e->app = dir->key.app;
	e->org = dup_or_null(dir->key.org);
	e->party = dup_or_null(dir->key.party);
	e->guid = dup_or_null(dir->key.guid);
	e->data_type = dup_or_null(dir->key.data_type);
	e->area = dir->key.area;
	e->family = dir->key.family;
	e->scope = dir->key.scope;
}

static bool is_digits(const char *s)
{
	if (!*s || strlen(s) > 20)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_guid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

/* ----- the fixed part ----- */

static int list_fixed(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	struct timespec zero = { 0, 0 };
	struct entry *e = NULL;
	size_t n = 0, cap = 4 + view_n_apps(fs->view) + fs->n_families + fs->n_scopes;
	size_t len;
	char *doc;
	int r;

	e = xcalloc(cap + fs->n_areas + 1, sizeof(*e));
	switch (dir->kind) {
	case NODE_ROOT:
		entry_init(&e[n], dir, "README.txt", NODE_README);
		doc = content_readme(fs, &len);
		free(doc);
		fill_stat(fs, &e[n++].st, FILE_MODE, (off_t)len, fs->started, fs->started);
		entry_init(&e[n], dir, "status.json", NODE_STATUS);
		doc = content_status(fs, &len);
		free(doc);
		fill_stat(fs, &e[n++].st, FILE_MODE, (off_t)len, zero, fs->started);
		entry_init(&e[n], dir, "apps", NODE_APPS);
		fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		/* each rooted family's folder */
		for (size_t i = 0; i < fs->n_families; i++) {
			if (!fs->families[i].root)
				continue;
			entry_init(&e[n], dir, fs->families[i].root, NODE_FAMILY);
			e[n].family = (int)i + 1;
			fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		}
		break;
	case NODE_FAMILY:
		for (size_t i = 0; i < fs->n_scopes; i++) {
			if (fs->scopes[i].family != (size_t)dir->key.family - 1)
				continue;
			entry_init(&e[n], dir, fs->scopes[i].name, NODE_SCOPE);
			e[n].scope = (int)i + 1;
			fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		}
		break;
	case NODE_SCOPE:
		doc = content_scope_status(fs, dir->key.scope, &len);
		if (doc) {
			entry_init(&e[n], dir, "status.json", NODE_SCOPE_STATUS);
			free(doc);
			fill_stat(fs, &e[n++].st, FILE_MODE, (off_t)len, zero, fs->started);
		}
		for (size_t a = 1; a <= fs->n_areas; a++) {
			if (!local_area_of_family(fs, (int)a, fs->scopes[dir->key.scope - 1].family))
				continue;
			r = tree_lookup(fs, dir, local_area_name(fs, (int)a), &e[n]);
			if (r == 0)
				n++;
		}
		break;
	case NODE_APPS:
		for (size_t i = 0; i < view_n_apps(fs->view); i++) {
			const char *org = view_app_org(view_app_at(fs->view, i));
			bool seen = false;

			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(e[j].name, org) == 0;
			if (seen)
				continue;
			entry_init(&e[n], dir, org, NODE_ORG);
			e[n].org = xstrdup(org);
			fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		}
		break;
	case NODE_ORG:
		for (size_t i = 0; i < view_n_apps(fs->view); i++) {
			struct view_app *va = view_app_at(fs->view, i);

			if (strcmp(view_app_org(va), dir->key.org) != 0)
				continue;
			entry_init(&e[n], dir, view_app_name(va), NODE_APP);
			e[n].app = va;
			fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		}
		break;
	case NODE_APP: {
		struct timespec mtime, ctime;

		r = view_app_doc(dir->key.app, &doc, &len, &mtime, &ctime);

		/* the folder lists even when the platform is down; only
		 * reading application.json then fails */
		entry_init(&e[n], dir, "application.json", NODE_APP_JSON);
		if (r == 0)
			free(doc);
		fill_stat(fs, &e[n++].st, FILE_MODE, r == 0 ? (off_t)len : 0,
			  r == 0 ? mtime : zero, r == 0 ? ctime : zero);
		entry_init(&e[n], dir, "instances", NODE_INSTANCES);
		fill_stat(fs, &e[n++].st, DIR_MODE, 0, fs->started, fs->started);
		if (fs->inbox_enabled) {
			/* rm of an entry confirms it: the folder is writable */
			entry_init(&e[n], dir, "inbox", NODE_INBOX);
			fill_stat(fs, &e[n++].st, S_IFDIR | 0755, 0, fs->started, fs->started);
		}
		for (size_t a = 1; a <= fs->n_areas; a++) {
			if (!local_area_in_apps(fs, (int)a))
				continue;
			r = tree_lookup(fs, dir, local_area_name(fs, (int)a), &e[n]);
			if (r == 0)
				n++;
		}
		break;
	}
	default:
		free(e);
		return -ENOTDIR;
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

/* ----- parties and instances ----- */

static void instance_entry(struct fs *fs, struct entry *e, struct node *dir,
			   const struct alt_instance *inst)
{
	entry_init(e, dir, inst->guid, NODE_INSTANCE);
	free(e->guid);
	e->guid = xstrdup(inst->guid);
	fill_stat(fs, &e->st, DIR_MODE, 0, inst->last_changed, inst->created);
}

/* The parties' entries, into e (n of them; p is freed). */
static struct entry *party_entries(struct fs *fs, struct node *dir, struct view_party *p,
				   size_t n, struct entry *e)
{
	for (size_t i = 0; i < n; i++) {
		entry_init(&e[i], dir, p[i].party_id, NODE_PARTY);
		e[i].party = xstrdup(p[i].party_id);
		fill_stat(fs, &e[i].st, DIR_MODE, 0, p[i].mtime, p[i].ctime);
	}
	view_parties_free(p, n);
	return e;
}

static int list_parties(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	struct view_party *p;
	size_t n;
	int r = view_parties(dir->key.app, &p, &n);

	if (r < 0)
		return r;
	*ret = party_entries(fs, dir, p, n, xcalloc(n ? n : 1, sizeof(struct entry)));
	*ret_n = n;
	return 0;
}

int tree_stream_open(struct fs *fs, struct node *dir)
{
	int r;

	(void)fs;
	if (dir->kind != NODE_INSTANCES)
		return 0;
	r = view_parties_open(dir->key.app);
	return r == -ENOTSUP ? 0 : r < 0 ? r : 1;
}

int tree_stream_page(struct fs *fs, struct node *dir, const char *after, uint64_t skip,
		     size_t max, struct entry *into, size_t *ret_n)
{
	struct view_party *p;
	size_t n;
	int r = view_parties_page(dir->key.app, after, skip, max, &p, &n);

	if (r < 0)
		return r;
	party_entries(fs, dir, p, n, into);
	*ret_n = n;
	return 0;
}

static int list_instances(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	struct alt_instance **list;
	struct entry *e;
	size_t n;
	int r = view_party_instances(dir->key.app, dir->key.party, &list, &n);

	if (r < 0)
		return r;
	e = xcalloc(n ? n : 1, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		instance_entry(fs, &e[i], dir, list[i]);
	view_instances_free(list, n);
	*ret = e;
	*ret_n = n;
	return 0;
}

/* ----- inside one instance ----- */

static int list_instance(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	struct alt_instance *inst;
	const struct layout *l;
	struct entry *e;
	size_t n = 0;
	int r = view_instance(dir->key.app, dir->key.party, dir->key.guid, &inst);

	if (r < 0)
		return r;
	if (dir->kind == NODE_INSTANCE) {
		e = xcalloc(3, sizeof(*e));
		entry_init(&e[n], dir, "instance.json", NODE_INSTANCE_JSON);
		fill_stat(fs, &e[n++].st, FILE_MODE, (off_t)inst->doc_len, inst->last_changed,
			  inst->created);
		entry_init(&e[n], dir, "data", NODE_DATA);
		fill_stat(fs, &e[n++].st, DIR_MODE, 0, inst->last_changed, inst->created);
		/* commands are written, their report read (when a family
		 * performs them) */
		if (fs->ctl_enabled) {
			char *report = fs->ctl_hooks.report(fs->ctl_hooks.ctx,
							    view_app_org(dir->key.app),
							    view_app_name(dir->key.app),
							    inst->party_id, inst->guid);

			entry_init(&e[n], dir, "ctl", NODE_CTL);
			fill_stat(fs, &e[n++].st, S_IFREG | 0644, (off_t)strlen(report),
				  inst->last_changed, inst->created);
			free(report);
		}
		goto out;
	}
	l = layout_cache_get(fs->layouts, inst);
	if (dir->kind == NODE_DATA) {
		e = xcalloc(l->n_types ? l->n_types : 1, sizeof(*e));
		for (size_t i = 0; i < l->n_types; i++) {
			entry_init(&e[n], dir, l->types[i].name, NODE_DATA_TYPE);
			e[n].data_type = xstrdup(l->types[i].name);
			fill_stat(fs, &e[n++].st, DIR_MODE, 0, l->types[i].mtime, l->types[i].ctime);
		}
	} else {
		const struct layout_type *t = layout_find_type(l, dir->key.data_type);

		e = xcalloc(t && t->n_files ? t->n_files : 1, sizeof(*e));
		for (size_t i = 0; t && i < t->n_files; i++) {
			const struct alt_data_element *el = t->files[i].el;

			entry_init(&e[n], dir, t->files[i].name, NODE_DATA_FILE);
			e[n].data_guid = xstrdup(el->id);
			fill_stat(fs, &e[n++].st, FILE_MODE, (off_t)el->size, el->last_changed,
				  el->created);
		}
		if (!t && !dw_type_known(fs, dir->parent, dir->key.data_type)) {
			free(e);
			layout_cache_put(fs->layouts, l);
			alt_instance_unref(inst);
			return -ENOENT;
		}
		dw_merge(fs, dir, &e, &n);
	}
	layout_cache_put(fs->layouts, l);
out:
	alt_instance_unref(inst);
	*ret = e;
	*ret_n = n;
	return 0;
}

/* inbox/<party>-<guid>, oldest completion first, without the ones
 * confirmed here and not yet gone from the platform's answer */
static int list_inbox(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	const struct fs_inbox_hooks *h = &fs->inbox_hooks;
	const char *org = view_app_org(dir->key.app), *app = view_app_name(dir->key.app);
	struct alt_instance **list;
	struct entry *e;
	size_t n, o = 0;
	int r = view_inbox(dir->key.app, &list, &n);

	if (r < 0)
		return r;
	e = xcalloc(n ? n : 1, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		char *name;

		if (h->hidden && h->hidden(h->ctx, org, app, list[i]->party_id, list[i]->guid))
			continue;
		name = xasprintf("%s-%s", list[i]->party_id, list[i]->guid);
		entry_init(&e[o], dir, name, NODE_INBOX_LINK);
		free(name);
		e[o].party = xstrdup(list[i]->party_id);
		e[o].guid = xstrdup(list[i]->guid);
		/* "../instances/" + party + "/" + guid */
		fill_stat(fs, &e[o].st, S_IFLNK | 0777,
			  (off_t)(13 + strlen(list[i]->party_id) + 1 + strlen(list[i]->guid)),
			  list[i]->ended, list[i]->ended);
		o++;
	}
	view_instances_free(list, n);
	*ret = e;
	*ret_n = o;
	return 0;
}

int tree_list(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	switch (dir->kind) {
	case NODE_INBOX:
		return list_inbox(fs, dir, ret, ret_n);
	case NODE_INSTANCES:
		return list_parties(fs, dir, ret, ret_n);
	case NODE_PARTY:
		return list_instances(fs, dir, ret, ret_n);
	case NODE_INSTANCE:
	case NODE_DATA:
	case NODE_DATA_TYPE:
		return list_instance(fs, dir, ret, ret_n);
	case NODE_AREA:
	case NODE_LOCAL:
		return local_list(fs, dir, ret, ret_n);
	default:
		return list_fixed(fs, dir, ret, ret_n);
	}
}

static int find_in_list(struct fs *fs, struct node *dir, const char *name, struct entry *ret)
{
	struct entry *e;
	size_t n;
	int r = tree_list(fs, dir, &e, &n);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0) {
			*ret = e[i];
			memset(&e[i], 0, sizeof(e[i]));
			r = 0;
			break;
		}
	entries_free(e, n);
	return r;
}

/* One data file by name, from the instance's cached layout: a stat of one
 * of 10,000 files must not list all of them. -EAGAIN when the name is not
 * on the platform (a pending new write, perhaps): the listing decides. */
static int lookup_data_file(struct fs *fs, struct node *dir, const char *name,
			    struct entry *ret)
{
	const struct layout_type *t;
	const struct layout_file *f;
	const struct layout *l;
	struct alt_instance *inst;
	int r = view_instance(dir->key.app, dir->key.party, dir->key.guid, &inst);

	if (r < 0)
		return r;
	l = layout_cache_get(fs->layouts, inst);
	t = layout_find_type(l, dir->key.data_type);
	f = t ? layout_find_file(t, name) : NULL;
	if (f) {
		entry_init(ret, dir, f->name, NODE_DATA_FILE);
		ret->data_guid = xstrdup(f->el->id);
		fill_stat(fs, &ret->st, FILE_MODE, (off_t)f->el->size, f->el->last_changed,
			  f->el->created);
		if (dw_lookup(fs, dir, ret) == -ESRCH) { /* a delete is pending */
			entry_clear(ret);
			r = -ENOENT;
		}
	} else {
		r = -EAGAIN;
	}
	layout_cache_put(fs->layouts, l);
	alt_instance_unref(inst);
	return r;
}

int tree_lookup(struct fs *fs, struct node *dir, const char *name, struct entry *ret)
{
	struct view_party p;
	struct alt_instance *inst;
	int r;

	switch (dir->kind) {
	case NODE_INSTANCES:
		/* one party: no whole listing needed */
		if (!is_digits(name))
			return -ENOENT;
		r = view_party(dir->key.app, name, &p);
		if (r < 0)
			return r;
		entry_init(ret, dir, name, NODE_PARTY);
		ret->party = xstrdup(name);
		fill_stat(fs, &ret->st, DIR_MODE, 0, p.mtime, p.ctime);
		free(p.party_id);
		return 0;
	case NODE_PARTY:
		if (!is_guid(name))
			return -ENOENT;
		r = view_instance(dir->key.app, dir->key.party, name, &inst);
		if (r < 0)
			return r;
		instance_entry(fs, ret, dir, inst);
		alt_instance_unref(inst);
		return 0;
	case NODE_AREA:
	case NODE_LOCAL: {
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			return -ENOENT;
		r = local_stat(fs, dir, name, &st);
		if (r < 0)
			return r;
		entry_init(ret, dir, name, NODE_LOCAL);
		ret->st = st;
		return 0;
	}
	case NODE_APP:
	case NODE_SCOPE:
		for (size_t a = 1; a <= fs->n_areas; a++)
			if ((dir->kind == NODE_APP
				     ? local_area_in_apps(fs, (int)a)
				     : local_area_of_family(fs, (int)a,
							    fs->scopes[dir->key.scope - 1].family)) &&
			    strcmp(name, local_area_name(fs, (int)a)) == 0) {
				struct stat st;

				entry_init(ret, dir, name, NODE_AREA);
				ret->area = (int)a;
				{
					struct node tmp = { .kind = NODE_AREA, .parent = dir,
							    .name = ret->name, .key = entry_key(ret) };

					r = local_stat(fs, &tmp, NULL, &st);
				}
				if (r < 0) {
					entry_clear(ret);
					return r;
				}
				ret->st = st;
				return 0;
			}
		return find_in_list(fs, dir, name, ret);
	case NODE_DATA:
		r = find_in_list(fs, dir, name, ret);
		if (r == -ENOENT && dw_type_known(fs, dir, name)) {
			/* a type that may be written before it holds anything */
			r = view_instance(dir->key.app, dir->key.party, dir->key.guid, &inst);
			if (r < 0)
				return r;
			entry_init(ret, dir, name, NODE_DATA_TYPE);
			ret->data_type = xstrdup(name);
			fill_stat(fs, &ret->st, DIR_MODE, 0, inst->last_changed, inst->created);
			alt_instance_unref(inst);
		}
		return r;
	case NODE_DATA_TYPE:
		r = lookup_data_file(fs, dir, name, ret);
		return r == -EAGAIN ? find_in_list(fs, dir, name, ret) : r;
	case NODE_README:
	case NODE_STATUS:
	case NODE_SCOPE_STATUS:
	case NODE_APP_JSON:
	case NODE_INSTANCE_JSON:
	case NODE_DATA_FILE:
	case NODE_CTL:
	case NODE_INBOX_LINK:
		return -ENOTDIR;
	default:
		return find_in_list(fs, dir, name, ret);
	}
}

int tree_getattr(struct fs *fs, struct node *n, struct stat *ret)
{
	struct entry e;
	int r;

	if (n->kind == NODE_ROOT) {
		fill_stat(fs, ret, DIR_MODE, 0, fs->started, fs->started);
		return 0;
	}
	if (!n->name[0])
		return -ESTALE; /* replaced by a newer file of the same name: a
				 * stat by path looks the name up again */
	r = tree_lookup(fs, n->parent, n->name, &e);
	if (r < 0)
		return r;
	if (e.kind != n->kind ||
	    (n->key.data_guid && (!e.data_guid || strcmp(e.data_guid, n->key.data_guid) != 0)))
		r = -ENOENT;
	else
		*ret = e.st;
	entry_clear(&e);
	return r;
}
