/* pending.c - what the instance-writes module holds, as the tree shows it.
 *
 * A pending write is a file in its data folder with the staged size and
 * time; a pending delete hides its element; a data type of the app's
 * metadata is a folder before it holds anything. The tree's resolver
 * asks here; the writes themselves (dwrite.c) sit above the resolver. */
#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "altinn.h"
#include "entry.h"
#include "fs_i.h"
#include "view.h"
#include "xalloc.h"

#define PENDING_MODE (S_IFREG | 0644)

bool dw_enabled(struct fs *fs)
{
	return fs->dw_enabled;
}

void dw_key_init(struct node *dir, const char *name, struct alt_dw_key *k)
{
	memset(k, 0, sizeof(*k));
	k->org = view_app_org(dir->key.app);
	k->app = view_app_name(dir->key.app);
	k->party = dir->key.party;
	k->guid = dir->key.guid;
	k->data_type = dir->key.data_type;
	k->name = name;
}

void dw_pending_stat(struct fs *fs, struct stat *st, uint64_t size, struct timespec mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = PENDING_MODE;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blksize = 128 * 1024;
	st->st_blocks = st->st_size / 512 + (st->st_size % 512 != 0);
	st->st_mtim = st->st_atim = st->st_ctim = mtime;
}

int dw_lookup(struct fs *fs, struct node *dir, struct entry *e)
{
	struct alt_dw_key k;
	struct timespec mtime;
	uint64_t size;
	int r;

	if (!fs->dw_enabled || dir->kind != NODE_DATA_TYPE || e->kind != NODE_DATA_FILE)
		return 0;
	dw_key_init(dir, e->name, &k);
	k.data_id = e->data_guid;
	r = fs->dw_hooks.pending(fs->dw_hooks.ctx, &k, &size, &mtime);
	if (r == -ESRCH)
		return r;
	if (r == 0) {
		e->pending = true;
		dw_pending_stat(fs, &e->st, size, mtime);
	}
	return 0;
}

struct merge {
	struct fs *fs;
	struct node *dir;
	struct entry *e;
	size_t n, cap;
};

static void merge_add(void *ctx, const char *name, uint64_t size, struct timespec mtime)
{
	struct merge *m = ctx;
	struct entry *e;

	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->e[i].name, name) == 0)
			return; /* an overwrite: already shown */
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 8;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	e->kind = NODE_DATA_FILE;
	e->app = m->dir->key.app;
	e->org = m->dir->key.org ? xstrdup(m->dir->key.org) : NULL;
	e->party = xstrdup(m->dir->key.party);
	e->guid = xstrdup(m->dir->key.guid);
	e->data_type = xstrdup(m->dir->key.data_type);
	e->pending = true;
	dw_pending_stat(m->fs, &e->st, size, mtime);
}

void dw_merge(struct fs *fs, struct node *dir, struct entry **e, size_t *n)
{
	struct merge m = { fs, dir, *e, 0, *n };
	struct alt_dw_key k;

	if (!fs->dw_enabled)
		return;
	for (size_t i = 0; i < *n; i++) {
		if (dw_lookup(fs, dir, &(*e)[i]) == -ESRCH) {
			entry_clear(&(*e)[i]);
			continue;
		}
		if (m.n != i)
			(*e)[m.n] = (*e)[i];
		m.n++;
	}
	dw_key_init(dir, NULL, &k);
	fs->dw_hooks.list(fs->dw_hooks.ctx, &k, merge_add, &m);
	*e = m.e;
	*n = m.n;
}

bool dw_type_known(struct fs *fs, struct node *data_dir, const char *name)
{
	return fs->dw_enabled &&
	       fs->dw_hooks.type_known(fs->dw_hooks.ctx, view_app_org(data_dir->key.app),
				       view_app_name(data_dir->key.app), name);
}
