/* ops_gate.c - the operations, with those that may wait on the platform
 * passing the gate (gate.h).
 *
 * A layer over ops.c's table, as a cache wraps a table: an operation on
 * a platform node (an app's metadata, its instances, their documents,
 * data and ctl, the inbox) takes a slot for its whole run, and one that
 * gets none fails with EAGAIN; operations on the root, README.txt,
 * status.json and the local areas never pass it, so they answer while
 * the platform hangs. Reads and writes go by what the handle holds: a
 * snapshot or a local file is served without the platform whatever the
 * node. forget, flush, fsync and the releases are never refused (the
 * kernel cannot take no for them) and stay ungated. */
#include "fs_i.h"
#include "ops_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "caps.h"
#include "gate.h"
#include "local.h"

static const struct fuse_lowlevel_ops *raw; /* the operations wrapped */

static bool platform_kind(enum node_kind kind)
{
	switch (kind) {
	case NODE_APP_JSON:
	case NODE_INSTANCES:
	case NODE_PARTY:
	case NODE_INSTANCE:
	case NODE_INSTANCE_JSON:
	case NODE_DATA:
	case NODE_DATA_TYPE:
	case NODE_DATA_FILE:
	case NODE_CTL:
	case NODE_INBOX:
	case NODE_INBOX_LINK:
		return true;
	default:
		return false;
	}
}

/* An operation on a name in dir: an app's own names (application.json,
 * instances, inbox) come from its metadata, its areas are local. */
static bool name_bound(struct fs *fs, struct node *dir, const char *name)
{
	if (!dir)
		return false;
	if (dir->kind == NODE_APP) {
		for (size_t a = 1; a <= fs->n_areas; a++)
			if (local_area_in_apps(fs, (int)a) && strcmp(name, local_area_name(fs, (int)a)) == 0)
				return false;
		return true;
	}
	return platform_kind(dir->kind);
}

static bool node_bound(struct node *n)
{
	return n && platform_kind(n->kind);
}

/* The gate to leave after the operation (the request is gone once
 * replied to), NULL when none was needed; false when refused and
 * replied to. */
static bool pass(fuse_req_t req, bool bound, struct gate **ret)
{
	struct gate *g = req_fs(req)->gate;

	*ret = NULL;
	if (!bound)
		return true;
	if (gate_enter(g) < 0) {
		fuse_reply_err(req, EAGAIN);
		return false;
	}
	*ret = g;
	return true;
}

#define GATED(bound, call)                          \
	do {                                        \
		struct gate *held_;                 \
		if (!pass(req, (bound), &held_))    \
			return;                     \
		call;                               \
		if (held_)                          \
			gate_leave(held_);          \
	} while (0)

#define NODE(ino) get_node(req_fs(req), (ino))

static void g_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	GATED(name_bound(req_fs(req), NODE(parent), name), raw->lookup(req, parent, name));
}

static void g_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	GATED(node_bound(NODE(ino)), raw->getattr(req, ino, fi));
}

static void g_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi)
{
	GATED(node_bound(NODE(ino)), raw->setattr(req, ino, attr, to_set, fi));
}

static void g_readlink(fuse_req_t req, fuse_ino_t ino)
{
	GATED(node_bound(NODE(ino)), raw->readlink(req, ino));
}

static void g_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    dev_t rdev)
{
	GATED(node_bound(NODE(parent)), raw->mknod(req, parent, name, mode, rdev));
}

static void g_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	GATED(node_bound(NODE(parent)), raw->mkdir(req, parent, name, mode));
}

static void g_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	GATED(node_bound(NODE(parent)), raw->unlink(req, parent, name));
}

static void g_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	GATED(node_bound(NODE(parent)), raw->rmdir(req, parent, name));
}

static void g_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	GATED(node_bound(NODE(parent)), raw->symlink(req, link, parent, name));
}

static void g_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	GATED(node_bound(NODE(parent)) || node_bound(NODE(newparent)),
	      raw->rename(req, parent, name, newparent, newname, flags));
}

static void g_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	GATED(node_bound(NODE(ino)) || node_bound(NODE(newparent)),
	      raw->link(req, ino, newparent, newname));
}

static void g_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	GATED(node_bound(NODE(ino)), raw->open(req, ino, fi));
}

static bool handle_is(struct fuse_file_info *fi, enum handle_kind kind)
{
	return ((struct handle *)(uintptr_t)fi->fh)->kind == kind;
}

static void g_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	GATED(handle_is(fi, HANDLE_DATA), raw->read(req, ino, size, off, fi));
}

static void g_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	GATED(handle_is(fi, HANDLE_CTL), raw->write(req, ino, buf, size, off, fi));
}

static void g_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = NODE(ino);

	GATED(node_bound(n) || (n && n->kind == NODE_APP), raw->opendir(req, ino, fi));
}

static void g_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		       size_t size, int flags)
{
	GATED(node_bound(NODE(ino)), raw->setxattr(req, ino, name, value, size, flags));
}

static void g_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	GATED(node_bound(NODE(ino)), raw->getxattr(req, ino, name, size));
}

static void g_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	GATED(node_bound(NODE(ino)), raw->listxattr(req, ino, size));
}

static void g_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	GATED(node_bound(NODE(ino)), raw->removexattr(req, ino, name));
}

static void g_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	GATED(node_bound(NODE(ino)), raw->access(req, ino, mask));
}

static void g_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi)
{
	GATED(node_bound(NODE(parent)), raw->create(req, parent, name, mode, fi));
}

static struct fuse_lowlevel_ops gated;
static pthread_once_t gated_once = PTHREAD_ONCE_INIT;

static void build(void)
{
	gated = *raw;
	gated.lookup = g_lookup;
	gated.getattr = g_getattr;
	gated.setattr = g_setattr;
	gated.readlink = g_readlink;
	gated.mknod = g_mknod;
	gated.mkdir = g_mkdir;
	gated.unlink = g_unlink;
	gated.rmdir = g_rmdir;
	gated.symlink = g_symlink;
	gated.rename = g_rename;
	gated.link = g_link;
	gated.open = g_open;
	gated.read = g_read;
	gated.write = g_write;
	gated.opendir = g_opendir;
	gated.setxattr = g_setxattr;
	gated.getxattr = g_getxattr;
	gated.listxattr = g_listxattr;
	gated.removexattr = g_removexattr;
	gated.access = g_access;
	gated.create = g_create;
}

const struct fuse_lowlevel_ops *gate_wrap(const struct fuse_lowlevel_ops *ops)
{
	raw = ops;
	pthread_once(&gated_once, build);
	return &gated;
}
