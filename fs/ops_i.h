/* ops_i.h - what the FUSE operations share (private to fs/).
 *
 * ops.c holds the operations that read (names, attributes, folders,
 * files) and the table handed to libfuse; ops_change.c those that change
 * something (local areas, data folders, ctl, inbox) and the extended
 * attributes; fs.c the filesystem's state and lifecycle. */
#ifndef ALTINNFS_OPS_I_H
#define ALTINNFS_OPS_I_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "dircache.h"
#include "opstat.h"
#include "dwrite.h"
#include "pending.h"
#include "tree.h"

/* every error reply is counted against its operation (opstat.c) */
#define fuse_reply_err(req, err) opstat_reply_err((req), (err))

enum handle_kind { HANDLE_BUFFER, HANDLE_DATA, HANDLE_DIR, HANDLE_FD, HANDLE_CTL };

struct handle {
	struct fs *fs;
	struct handle *prev, *next; /* in fs->handles, protected by fs->handles_lock */
	enum handle_kind kind;
	char *buf; /* HANDLE_BUFFER: a snapshot of a generated document */
	size_t len;
	struct alt_reader *reader; /* HANDLE_DATA: a data element's, or a local file
				    * read as its bytes arrive */
	struct entry *entries;     /* HANDLE_DIR */
	size_t n_entries;
	struct dircache_slot *dircache; /* HANDLE_DIR: counted open there */
	/* HANDLE_DIR read a page at a time (tree_stream_open): entries are
	 * the page from position win_off; at_end when it is the last */
	bool stream, at_end;
	uint64_t win_off;
	int fd;       /* HANDLE_FD: a file in a local area */
	/* HANDLE_FD: a flush (one per close of a descriptor: dups, children)
	 * may run while another descriptor writes; these are protected by
	 * lock */
	pthread_mutex_t lock;
	bool written; /* written to since open or the last hand-over */
	bool handed;  /* handed over at a flush: release must say so */
	int write_err; /* the first errno a write or flush failed with */
	bool self;    /* opened by one of our own threads */
	struct dw_open dw; /* HANDLE_FD in a data folder: dw.id > 0 */
};

static inline struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline double ttl(struct fs *fs)
{
	return (double)fs->cfg->cache_ttl;
}

/* How long the kernel may trust what it knows of n. Local areas change
 * only through the mount, but the owning modules also act on their own
 * clock, so their names and attributes are trusted for a second. */
static inline double ttl_for(struct fs *fs, enum node_kind kind)
{
	if (kind == NODE_STATUS || kind == NODE_CTL || kind == NODE_SCOPE_STATUS)
		return 0;
	if (kind == NODE_AREA || kind == NODE_LOCAL)
		return 1.0;
	return ttl(fs);
}

/* How long the kernel may trust a name of this kind. status.json and
 * each instance's ctl are always there while their folder is: only their
 * contents (and so their size) change, so only their attributes are
 * asked for every time, and `ls -l` costs no lookup of them. */
static inline double entry_ttl_for(struct fs *fs, enum node_kind kind)
{
	if (kind == NODE_STATUS || kind == NODE_CTL || kind == NODE_SCOPE_STATUS)
		return ttl(fs);
	return ttl_for(fs, kind);
}


static inline struct node *get_node(struct fs *fs, fuse_ino_t ino)
{
	return node_get(fs->nodes, ino);
}

/* Is the caller one of the daemon's own threads? */
bool req_is_self(fuse_req_t req);
/* A new handle, on the filesystem's list so that those the kernel never
 * released (it need not, when unmounting) are freed with the filesystem. */
struct handle *handle_new(struct fs *fs);
void handle_free(struct handle *h);
/* Before a write or truncate through h: a file handed over at a flush
 * is being written again (a dup, a child, mmap). 0 or -errno; the
 * caller holds h->lock and sets h->written once it has written. */
int handle_rewrite(struct fs *fs, struct handle *h, struct node *n);

/* ops_gate.c: ops with those that may wait on the platform passing
 * the gate (gate.h) */
const struct fuse_lowlevel_ops *gate_wrap(const struct fuse_lowlevel_ops *ops);

/* ops_change.c */
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_access(fuse_req_t req, fuse_ino_t ino, int mask);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_readlink(fuse_req_t req, fuse_ino_t ino);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags);
void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
