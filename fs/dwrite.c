/* dwrite.c - writes into instances' data folders (see dwrite.h).
 *
 * The fs side only: it turns a place in the tree into the key the
 * daemon's module journals by (org, app, party, instance, data type,
 * name, and the element shown under that name); pending.c merges what
 * the module holds into the tree's answers. Whether a write may happen, where its
 * bytes go and how they reach the platform is the module's business. */
#include "dwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altinn.h"
#include "pending.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

/* The key of name in dir, with the element shown under it and whether it
 * is locked; strings in *ret_guid to free. */
static int key_of(struct fs *fs, struct node *dir, const char *name, struct alt_dw_key *k,
		  char **ret_guid)
{
	struct alt_instance *inst;
	struct entry e;
	int r;

	dw_key_init(dir, name, k);
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
	dw_pending_stat(fs, ret_st, 0, now);
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
		dw_key_init(n->parent, n->name, &k);
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
	dw_key_init(n->parent, n->name, &k);
	return fs->dw_hooks.state(fs->dw_hooks.ctx, &k, ret);
}
