/* dwrite.c - writes into instances' data folders (see dwrite.h).
 *
 * The fs side only: it turns a place in the tree into the key the
 * daemon's module journals by (org, app, party, instance, data type,
 * name, and the element shown under that name), and merges what the
 * module holds into listings. Whether a write may happen, where its
 * bytes go and how they reach the platform is the module's business. */
#include "dwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altinn.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

#define PENDING_MODE (S_IFREG | 0644)

bool dw_enabled(struct fs *fs)
{
	return fs->dw_enabled;
}

static void key_init(struct node *dir, const char *name, struct alt_dw_key *k)
{
	memset(k, 0, sizeof(*k));
	k->org = view_app_org(dir->key.app);
	k->app = view_app_name(dir->key.app);
	k->party = dir->key.party;
	k->guid = dir->key.guid;
	k->data_type = dir->key.data_type;
	k->name = name;
}

static void pending_stat(struct fs *fs, struct stat *st, uint64_t size, struct timespec mtime)
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
	key_init(dir, e->name, &k);
	k.data_id = e->data_guid;
	r = fs->dw_hooks.pending(fs->dw_hooks.ctx, &k, &size, &mtime);
	if (r == -ESRCH)
		return r;
	if (r == 0) {
		e->pending = true;
		pending_stat(fs, &e->st, size, mtime);
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
	pending_stat(m->fs, &e->st, size, mtime);
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
	key_init(dir, NULL, &k);
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

/* The key of name in dir, with the element shown under it and whether it
 * is locked; strings in *ret_guid to free. */
static int key_of(struct fs *fs, struct node *dir, const char *name, struct alt_dw_key *k,
		  char **ret_guid)
{
	struct alt_instance *inst;
	struct entry e;
	int r;

	key_init(dir, name, k);
	*ret_guid = NULL;
	r = tree_lookup(fs, dir, name, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*ret_guid = e.data_guid;
	e.data_guid = NULL;
	entry_clear(&e);
	k->data_id = *ret_guid;
	if (k->data_id && view_instance(dir->key.app, dir->key.party, dir->key.guid, &inst) == 0) {
		for (size_t i = 0; i < inst->n_data; i++)
			if (strcmp(inst->data[i].id, k->data_id) == 0)
				k->locked = inst->data[i].locked;
		alt_instance_unref(inst);
	}
	return 0;
}

int dw_create(struct fs *fs, struct node *dir, const char *name, struct dw_open *ret,
	      struct stat *ret_st)
{
	struct alt_dw_key k;
	struct timespec now;
	char *guid;
	int r;

	if (!fs->dw_enabled)
		return -EROFS;
	if (strchr(name, '/') || name[0] == '.')
		return -EPERM; /* dotfiles: editors' and rsync's temporary names */
	r = key_of(fs, dir, name, &k, &guid);
	if (r == 0)
		r = fs->dw_hooks.begin(fs->dw_hooks.ctx, &k, &ret->fd, &ret->id, &ret->max);
	free(guid);
	if (r < 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &now);
	pending_stat(fs, ret_st, 0, now);
	return 0;
}

int dw_open_write(struct fs *fs, struct node *n, int flags, struct dw_open *ret)
{
	struct alt_dw_key k;
	char *guid;
	int r;

	if (!fs->dw_enabled)
		return -EROFS;
	if (!(flags & O_TRUNC) || (flags & O_APPEND))
		return -EOPNOTSUPP; /* an element is replaced whole, never patched */
	r = key_of(fs, n->parent, n->name, &k, &guid);
	if (r == 0)
		r = fs->dw_hooks.begin(fs->dw_hooks.ctx, &k, &ret->fd, &ret->id, &ret->max);
	free(guid);
	return r;
}

int dw_open_read(struct fs *fs, struct node *n, int *ret_fd, char **ret_guid)
{
	struct alt_dw_key k;
	struct entry e;
	int r;

	if (!fs->dw_enabled || !n->parent || n->parent->kind != NODE_DATA_TYPE) {
		*ret_guid = n->key.data_guid ? xstrdup(n->key.data_guid) : NULL;
		return *ret_guid ? 0 : -ENOENT;
	}
	r = tree_lookup(fs, n->parent, n->name, &e);
	if (r < 0)
		return r;
	if (e.pending) {
		key_init(n->parent, n->name, &k);
		r = fs->dw_hooks.open_staged(fs->dw_hooks.ctx, &k, ret_fd);
		entry_clear(&e);
		return r < 0 ? r : 1;
	}
	*ret_guid = e.data_guid;
	e.data_guid = NULL;
	entry_clear(&e);
	return *ret_guid ? 0 : -ENOENT;
}

void dw_commit(struct fs *fs, const struct dw_open *o, int error, bool open)
{
	fs->dw_hooks.commit(fs->dw_hooks.ctx, o->id, error, open);
}

int dw_reopen(struct fs *fs, const struct dw_open *o)
{
	return fs->dw_hooks.reopen(fs->dw_hooks.ctx, o->id);
}

void dw_release(struct fs *fs, const struct dw_open *o)
{
	fs->dw_hooks.release(fs->dw_hooks.ctx, o->id);
}

int dw_remove(struct fs *fs, struct node *dir, const char *name)
{
	struct alt_dw_key k;
	char *guid;
	int r;

	if (!fs->dw_enabled)
		return -EROFS;
	r = key_of(fs, dir, name, &k, &guid);
	if (r == 0)
		r = fs->dw_hooks.remove(fs->dw_hooks.ctx, &k);
	free(guid);
	return r;
}

int dw_xattr(struct fs *fs, struct node *n, const char *name, char **ret)
{
	struct alt_dw_key k;

	if (!fs->dw_enabled || !n->parent || n->parent->kind != NODE_DATA_TYPE ||
	    strcmp(name, "user.altinn.state") != 0)
		return -ENODATA;
	key_init(n->parent, n->name, &k);
	return fs->dw_hooks.state(fs->dw_hooks.ctx, &k, ret);
}
