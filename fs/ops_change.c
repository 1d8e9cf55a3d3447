/* ops_change.c - the FUSE operations that change something.
 *
 * Only some places change: the local areas (events/, outbox/, sent/,
 * failed/, served by local.c), the files of data folders (dwrite.c),
 * each instance's ctl and the inbox. Everywhere else the platform is
 * read-only through this mount, and says so with EROFS. The extended
 * attributes live here too: they answer for both kinds of place. */
#include "ops_i.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altinn.h"
#include "config.h"
#include "dwrite.h"
#include "dircache.h"
#include "local.h"
#include "log.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

/* ----- extended attributes ----- */

/* The value of a user.altinn.* attribute of n, or -ENODATA. */
static int xattr_value(struct fs *fs, struct node *n, const char *name, char **ret)
{
	struct alt_instance *inst;
	const struct alt_data_element *el = NULL;
	char *cached = NULL;
	const char *v = NULL;
	int r;

	if (n->kind != NODE_INSTANCE && n->kind != NODE_DATA_FILE)
		return -ENODATA;
	if (n->kind == NODE_DATA_FILE) {
		/* a pending write's state; an element made by one has no key */
		if (dw_xattr(fs, n, name, ret) == 0)
			return 0;
		if (!n->key.data_guid)
			return -ENODATA;
	}
	r = view_instance(n->key.app, n->key.party, n->key.guid, &inst);
	if (r < 0)
		return r;
	if (n->kind == NODE_DATA_FILE)
		for (size_t i = 0; i < inst->n_data && !el; i++)
			if (strcmp(inst->data[i].id, n->key.data_guid) == 0)
				el = &inst->data[i];
	if (strcmp(name, "user.altinn.id") == 0)
		v = n->kind == NODE_INSTANCE ? inst->id : el ? el->id : NULL;
	else if (el && strcmp(name, "user.altinn.data_type") == 0)
		v = el->data_type;
	else if (el && strcmp(name, "user.altinn.content_type") == 0)
		v = el->content_type;
	else if (el && strcmp(name, "user.altinn.filename") == 0)
		v = el->filename;
	else if (el && strcmp(name, "user.altinn.cached") == 0)
		v = cached = xasprintf("%llu", (unsigned long long)altinn_cached_bytes(
							fs->a, el->id, &el->last_changed));
	r = v ? 0 : -ENODATA;
	if (v)
		*ret = xstrdup(v);
	free(cached);
	alt_instance_unref(inst);
	return r;
}

static void reply_xattr_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = req_fs(req);
	struct node *n;
	char *v;
	int r;

	/* Answered at once: the kernel asks for security.capability on every
	 * write. The tree has no system.*, security.* or trusted.* attributes
	 * at all; EOPNOTSUPP says so, and tools such as `ls -l` then stop
	 * asking for ACLs and labels (ENODATA costs them a round trip per name
	 * and file). Other user.* names are just not there. */
	if (strncmp(name, "user.altinn.", 12) != 0) {
		fuse_reply_err(req, strncmp(name, "user.", 5) == 0 ? ENODATA : EOPNOTSUPP);
		return;
	}
	n = get_node(fs, ino);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = local_is_local(n) ? local_xattr(fs, n, name, &v) : xattr_value(fs, n, name, &v);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	reply_xattr_value(req, v, strlen(v), size);
	free(v);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char *const names[] = { "user.altinn.id", "user.altinn.data_type",
					     "user.altinn.content_type", "user.altinn.filename",
					     "user.altinn.cached",
					     "user.altinn.state", "user.altinn.last_error" };
	struct fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	char list[256];
	size_t len = 0;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *v;

		if ((local_is_local(n) ? local_xattr(fs, n, names[i], &v)
				       : xattr_value(fs, n, names[i], &v)) < 0)
			continue;
		free(v);
		memcpy(list + len, names[i], strlen(names[i]) + 1);
		len += strlen(names[i]) + 1;
	}
	reply_xattr_value(req, list, len, size);
}

/* ----- everything that would change the tree ----- */
/* Only local areas change; everywhere else the platform is read-only
 * through this mount, and says so with EROFS. */

static struct node *local_dir(fuse_req_t req, fuse_ino_t ino, int *ret_err)
{
	struct node *n = get_node(req_fs(req), ino);

	*ret_err = !n ? ESTALE : !local_is_local(n) ? EROFS : 0;
	return *ret_err ? NULL : n;
}

static void reply_new_entry(fuse_req_t req, struct node *dir, const char *name,
			    const struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct node_key key = dir->key;
	struct node *n;
	struct fuse_entry_param e;

	key.data_guid = NULL;
	n = node_lookup_add(fs->nodes, dir, name, NODE_LOCAL, &key);
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = *st;
	e.attr.st_ino = n->ino;
	e.attr_timeout = e.entry_timeout = ttl_for(fs, NODE_LOCAL);
	if ((fi ? fuse_reply_create(req, &e, fi) : fuse_reply_entry(req, &e)) == -ENOENT)
		node_forget(fs->nodes, n->ino, 1);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct node *n = get_node(req_fs(req), ino);

	/* local areas answer writes case by case, at the write; ctl takes
	 * commands and inbox entries can be removed */
	bool writable = n && (local_is_local(n) || n->kind == NODE_CTL || n->kind == NODE_INBOX ||
			      (dw_enabled(req_fs(req)) &&
			       (n->kind == NODE_DATA_TYPE || n->kind == NODE_DATA_FILE)));

	fuse_reply_err(req, (mask & W_OK) && !writable ? EROFS : 0);
}

static int data_truncate(struct fs *fs, struct node *n, struct handle *h, off_t size)
{
	int r;

	pthread_mutex_lock(&h->lock);
	r = handle_rewrite(fs, h, n);
	if (r == 0 && ftruncate(h->fd, size) < 0)
		r = -errno;
	if (r == 0)
		h->written = true;
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* A data file: its size changes only through a handle open for writing
 * (the O_TRUNC of an overwrite); times and mode are taken and dropped,
 * so `cp -p` and `touch` work. */
static void data_setattr(fuse_req_t req, struct node *n, struct handle *h,
			 const struct stat *attr, int to_set)
{
	struct fs *fs = req_fs(req);
	struct stat st;
	int r = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!h || !h->dw.id)
			r = -EOPNOTSUPP; /* an element is replaced whole, never cut */
		else if (h->dw.max && (uint64_t)attr->st_size > h->dw.max)
			r = -EFBIG;
		else
			r = data_truncate(fs, n, h, attr->st_size);
	}
	if (r == 0)
		r = tree_getattr(fs, n, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	st.st_ino = n->ino;
	fuse_reply_attr(req, &st, 0);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct stat st;
	struct node *n;
	int err, r;

	n = get_node(fs, ino);
	if (n && n->kind == NODE_CTL && !(to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME))) {
		/* `echo next > ctl` truncates first: nothing to truncate */
		r = tree_getattr(fs, n, &st);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		st.st_ino = ino;
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (n && n->kind == NODE_DATA_FILE && dw_enabled(fs)) {
		data_setattr(req, n, h, attr, to_set);
		return;
	}
	n = local_dir(req, ino, &err);
	if (!n) {
		fuse_reply_err(req, err);
		return;
	}
	r = local_setattr(fs, n, h && h->kind == HANDLE_FD ? h->fd : -1, attr, to_set,
			  req_is_self(req), &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (h && h->kind == HANDLE_FD && (to_set & FUSE_SET_ATTR_SIZE)) {
		/* checked again by local_setattr: writing, or EBUSY */
		pthread_mutex_lock(&h->lock);
		h->written = true;
		pthread_mutex_unlock(&h->lock);
	}
	st.st_ino = ino;
	fuse_reply_attr(req, &st, ttl_for(fs, n->kind));
}

/* A new file in instances/.../data/<type>/: a data element to be */
static void data_create(fuse_req_t req, struct node *dir, const char *name,
			struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = handle_new(fs);
	struct node_key key = dir->key;
	struct fuse_entry_param e;
	struct stat st;
	struct node *n;
	int r;

	h->kind = HANDLE_FD;
	r = dw_create(fs, dir, name, &h->dw, &st);
	if (r < 0) {
		handle_free(h); /* it is on the list */
		fuse_reply_err(req, -r);
		return;
	}
	h->fd = h->dw.fd;
	h->written = true;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	key.data_guid = NULL;
	n = node_lookup_add(fs->nodes, dir, name, NODE_DATA_FILE, &key);
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = st;
	e.attr.st_ino = n->ino;
	e.entry_timeout = 1.0;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		node_forget(fs->nodes, n->ino, 1);
		close(h->fd);
		h->fd = -1;
		dw_commit(fs, &h->dw, EINTR, false);
		handle_free(h);
	}
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h;
	struct node *dir;
	struct stat st;
	int err, r;

	dir = get_node(fs, parent);
	if (dir && dir->kind == NODE_DATA_TYPE) {
		data_create(req, dir, name, fi);
		return;
	}
	dir = local_dir(req, parent, &err);
	if (!dir) {
		fuse_reply_err(req, err);
		return;
	}
	h = handle_new(fs);
	h->kind = HANDLE_FD;
	h->self = req_is_self(req);
	r = local_create(fs, dir, name, mode, fi->flags, h->self, &h->fd, &st);
	if (r < 0) {
		handle_free(h); /* it is on the list */
		fuse_reply_err(req, -r);
		return;
	}
	h->written = true; /* a new file, even an empty one, is a change */
	fi->fh = (uintptr_t)h;
	reply_new_entry(req, dir, name, &st, fi);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs *fs = req_fs(req);
	struct node *dir;
	struct stat st;
	int err, fd, r;

	dir = local_dir(req, parent, &err);
	if (!dir || !S_ISREG(mode)) {
		fuse_reply_err(req, dir ? EPERM : err);
		return;
	}
	r = local_create(fs, dir, name, mode, O_WRONLY | O_EXCL, req_is_self(req), &fd, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	close(fd);
	reply_new_entry(req, dir, name, &st, NULL);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = req_fs(req);
	struct node *dir;
	struct stat st;
	int err, r;

	dir = local_dir(req, parent, &err);
	if (!dir) {
		fuse_reply_err(req, err);
		return;
	}
	r = local_mkdir(fs, dir, name, mode, req_is_self(req), &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_new_entry(req, dir, name, &st, NULL);
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_dir)
{
	struct node *dir;
	int err;

	dir = local_dir(req, parent, &err);
	if (!dir) {
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_err(req, -local_remove(req_fs(req), dir, name, is_dir, req_is_self(req)));
}

/* rm inbox/<party>-<guid>: confirm it, durably; it never comes back */
static void inbox_remove(fuse_req_t req, struct node *dir, const char *name)
{
	struct fs *fs = req_fs(req);
	struct entry e;
	int r = tree_lookup(fs, dir, name, &e);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = fs->inbox_hooks.confirm ? fs->inbox_hooks.confirm(fs->inbox_hooks.ctx,
							      view_app_org(dir->key.app),
							      view_app_name(dir->key.app), e.party,
							      e.guid)
				    : -EROFS;
	if (r == 0)
		node_unlink(fs->nodes, dir, name);
	entry_clear(&e);
	fuse_reply_err(req, -r);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = get_node(req_fs(req), parent);

	if (dir && dir->kind == NODE_INBOX) {
		inbox_remove(req, dir, name);
		return;
	}
	if (dir && dir->kind == NODE_DATA_TYPE) {
		int r = dw_remove(req_fs(req), dir, name);

		if (r == 0)
			node_unlink(req_fs(req)->nodes, dir, name);
		fuse_reply_err(req, -r);
		return;
	}
	do_remove(req, parent, name, false);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = get_node(req_fs(req), ino);
	char *target;

	if (!n || n->kind != NODE_INBOX_LINK) {
		fuse_reply_err(req, n ? EINVAL : ESTALE);
		return;
	}
	target = xasprintf("../instances/%s/%s", n->key.party, n->key.guid);
	fuse_reply_readlink(req, target);
	free(target);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = req_fs(req);
	struct node *dir, *newdir;
	int err;

	dir = local_dir(req, parent, &err);
	newdir = dir ? local_dir(req, newparent, &err) : NULL;
	if (!dir || !newdir) {
		/* into or out of the platform's part: not a rename here */
		fuse_reply_err(req, err == EROFS && (dir || newdir) ? EXDEV : err);
		return;
	}
	fuse_reply_err(req, -local_rename(fs, dir, name, newdir, newname, flags, req_is_self(req)));
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct node *n = get_node(req_fs(req), parent);

	fuse_reply_err(req, n && local_is_local(n) ? EPERM : EROFS);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct node *n = get_node(req_fs(req), newparent);

	fuse_reply_err(req, n && local_is_local(n) ? EPERM : EROFS);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct node *n = get_node(req_fs(req), ino);

	fuse_reply_err(req, n && local_is_local(n) ? ENOTSUP : EROFS);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct node *n = get_node(req_fs(req), ino);

	fuse_reply_err(req, n && local_is_local(n) ? ENODATA : EROFS);
}

