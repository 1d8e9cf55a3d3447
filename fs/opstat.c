/* opstat.c - every FUSE operation counted, with the errno it answered.
 *
 * A wrapper per operation counts it, notes on its thread which one it
 * is serving, and calls the real one; a reply with an error made on that
 * thread (the operations reply before they return, except reads served
 * by a helper) is counted against it, any other as "other". The
 * counters are core's atomics: no lock on the hot path. */
#include "opstat.h"

#include <pthread.h>

#include "metrics.h"

enum {
	OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR,
	OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE,
	OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_STATFS,
	OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
	OP_FORGET_MULTI, OP_READDIRPLUS, OP_N
};

static const char *const op_names[OP_N] = {
	"lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir",
	"unlink", "rmdir", "symlink", "rename", "link", "open", "read", "write",
	"flush", "release", "fsync", "opendir", "readdir", "releasedir", "statfs",
	"setxattr", "getxattr", "listxattr", "removexattr", "access", "create",
	"forget_multi", "readdirplus",
};

static struct fuse_lowlevel_ops inner, outer;
static pthread_once_t wrap_once = PTHREAD_ONCE_INIT;
static const struct fuse_lowlevel_ops *wrap_src;
static __thread int serving = -1;

#define WRAP(name, idx, params, args)      \
	static void w_##name params        \
	{                                  \
		int saved = serving;       \
		metrics_fuse_op(idx);      \
		serving = idx;             \
		inner.name args;           \
		serving = saved;           \
	}

WRAP(lookup, OP_LOOKUP, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(forget, OP_FORGET, (fuse_req_t req, fuse_ino_t ino, uint64_t n), (req, ino, n))
WRAP(getattr, OP_GETATTR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(setattr, OP_SETATTR,
     (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi),
     (req, ino, attr, to_set, fi))
WRAP(readlink, OP_READLINK, (fuse_req_t req, fuse_ino_t ino), (req, ino))
WRAP(mknod, OP_MKNOD,
     (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),
     (req, parent, name, mode, rdev))
WRAP(mkdir, OP_MKDIR, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
     (req, parent, name, mode))
WRAP(unlink, OP_UNLINK, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(rmdir, OP_RMDIR, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(symlink, OP_SYMLINK,
     (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
     (req, link, parent, name))
WRAP(rename, OP_RENAME,
     (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
      const char *newname, unsigned int flags),
     (req, parent, name, newparent, newname, flags))
WRAP(link, OP_LINK,
     (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),
     (req, ino, newparent, newname))
WRAP(open, OP_OPEN, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(read, OP_READ,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))
WRAP(write, OP_WRITE,
     (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
      struct fuse_file_info *fi),
     (req, ino, buf, size, off, fi))
WRAP(flush, OP_FLUSH, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(release, OP_RELEASE, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(fsync, OP_FSYNC,
     (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
     (req, ino, datasync, fi))
WRAP(opendir, OP_OPENDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(readdir, OP_READDIR,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))
WRAP(releasedir, OP_RELEASEDIR,
     (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
WRAP(statfs, OP_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
WRAP(setxattr, OP_SETXATTR,
     (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
      int flags),
     (req, ino, name, value, size, flags))
WRAP(getxattr, OP_GETXATTR, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
     (req, ino, name, size))
WRAP(listxattr, OP_LISTXATTR, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
WRAP(removexattr, OP_REMOVEXATTR, (fuse_req_t req, fuse_ino_t ino, const char *name),
     (req, ino, name))
WRAP(access, OP_ACCESS, (fuse_req_t req, fuse_ino_t ino, int mask), (req, ino, mask))
WRAP(create, OP_CREATE,
     (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
      struct fuse_file_info *fi),
     (req, parent, name, mode, fi))
WRAP(forget_multi, OP_FORGET_MULTI,
     (fuse_req_t req, size_t count, struct fuse_forget_data *forgets), (req, count, forgets))
WRAP(readdirplus, OP_READDIRPLUS,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))

#define SET(name)                          \
	do {                               \
		if (inner.name)            \
			outer.name = w_##name; \
	} while (0)

static void build(void)
{
	inner = outer = *wrap_src;
	SET(lookup);
	SET(forget);
	SET(getattr);
	SET(setattr);
	SET(readlink);
	SET(mknod);
	SET(mkdir);
	SET(unlink);
	SET(rmdir);
	SET(symlink);
	SET(rename);
	SET(link);
	SET(open);
	SET(read);
	SET(write);
	SET(flush);
	SET(release);
	SET(fsync);
	SET(opendir);
	SET(readdir);
	SET(releasedir);
	SET(statfs);
	SET(setxattr);
	SET(getxattr);
	SET(listxattr);
	SET(removexattr);
	SET(access);
	SET(create);
	SET(forget_multi);
	SET(readdirplus);
	metrics_fuse_names(op_names, OP_N);
}

const struct fuse_lowlevel_ops *opstat_wrap(const struct fuse_lowlevel_ops *ops)
{
	wrap_src = ops;
	pthread_once(&wrap_once, build);
	return &outer;
}

int opstat_reply_err(fuse_req_t req, int err)
{
	metrics_fuse_error(serving, err);
	return fuse_reply_err(req, err);
}
