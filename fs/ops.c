/* ops.c - the FUSE low-level operations.
 *
 * Each operation resolves its inode to a node, asks tree.c what is
 * there, and replies exactly once with data or an errno. Directory
 * handles hold a snapshot of the listing taken at opendir, so a listing
 * that changes on the platform mid-readdir never repeats or skips
 * entries. The platform's part is read-only (EROFS) except ctl, inbox
 * entries and the files of data folders (dwrite.c). */
#include "fs.h"

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
#include "local_i.h"
#include "log.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

enum handle_kind { HANDLE_BUFFER, HANDLE_DATA, HANDLE_DIR, HANDLE_FD, HANDLE_CTL };

struct handle {
	enum handle_kind kind;
	char *buf; /* HANDLE_BUFFER: a snapshot of a generated document */
	size_t len;
	struct alt_reader *reader; /* HANDLE_DATA */
	struct entry *entries;     /* HANDLE_DIR */
	size_t n_entries;
	struct dircache_slot *dircache; /* HANDLE_DIR: counted open there */
	int fd;       /* HANDLE_FD: a file in a local area */
	bool written; /* HANDLE_FD: written to since open */
	int write_err; /* HANDLE_FD: the first errno a write or flush failed with */
	bool self;    /* opened by one of our own threads */
	struct dw_open dw; /* HANDLE_FD in a data folder: dw.id > 0 */
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static double ttl(struct fs *fs)
{
	return (double)fs->cfg->cache_ttl;
}

/* How long the kernel may trust what it knows of n. Local areas change
 * only through the mount, but the owning modules also act on their own
 * clock, so their names and attributes are trusted for a second. */
static double ttl_for(struct fs *fs, enum node_kind kind)
{
	if (kind == NODE_STATUS || kind == NODE_CTL)
		return 0;
	if (kind == NODE_AREA || kind == NODE_LOCAL)
		return 1.0;
	return ttl(fs);
}

/* How long the kernel may trust a name of this kind. status.json and
 * each instance's ctl are always there while their folder is: only their
 * contents (and so their size) change, so only their attributes are
 * asked for every time, and `ls -l` costs no lookup of them. */
static double entry_ttl_for(struct fs *fs, enum node_kind kind)
{
	if (kind == NODE_STATUS || kind == NODE_CTL)
		return ttl(fs);
	return ttl_for(fs, kind);
}

/* Is the caller one of the daemon's own threads? fuse_req_ctx() gives
 * the calling thread's id, so look for it among our tasks. */
static bool req_is_self(fuse_req_t req)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)fuse_req_ctx(req)->pid);
	return stat(path, &st) == 0;
}

static struct node *get_node(struct fs *fs, fuse_ino_t ino)
{
	return node_get(fs->nodes, ino);
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	free(h->buf);
	if (h->kind == HANDLE_FD && h->fd >= 0)
		close(h->fd);
	altinn_reader_close(h->reader);
	entries_free(h->entries, h->n_entries);
	dircache_close(h->dircache);
	free(h);
}

/* ----- lifecycle ----- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* a changed mtime or size seen by getattr drops stale cached pages */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	log_info("mounted (FUSE protocol %u.%u)", conn->proto_major, conn->proto_minor);
}

/* ----- names and attributes ----- */

static void reply_entry(fuse_req_t req, struct fs *fs, struct node *n, const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = *st;
	e.attr.st_ino = n->ino;
	e.attr_timeout = ttl_for(fs, n->kind);
	e.entry_timeout = entry_ttl_for(fs, n->kind);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		node_forget(fs->nodes, n->ino, 1); /* the caller was interrupted */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct node *dir = get_node(fs, parent), *n;
	struct node_key key;
	struct entry e;
	int r;

	if (!dir) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = tree_lookup(fs, dir, name, &e);
	if (r == -ENOENT && dir->kind >= NODE_INSTANCES) {
		/* a negative entry: the kernel remembers the miss for the TTL */
		struct fuse_entry_param neg = { .ino = 0, .entry_timeout = ttl_for(fs, dir->kind) };

		fuse_reply_entry(req, &neg);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	key = entry_key(&e);
	n = node_lookup_add(fs->nodes, dir, e.name, e.kind, &key);
	reply_entry(req, fs, n, &e.st);
	entry_clear(&e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(req_fs(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(req_fs(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	struct stat st;
	int r;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = tree_getattr(fs, n, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	st.st_ino = ino;
	fuse_reply_attr(req, &st, ttl_for(fs, n->kind));
}

/* ----- directories ----- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	struct handle *h;
	int r;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->kind = HANDLE_DIR;
	r = tree_list(fs, n, &h->entries, &h->n_entries);
	if (r < 0) {
		free(h);
		fuse_reply_err(req, -r);
		return;
	}
	/* the kernel may list the platform's folders again from its own
	 * copy while it matches; local areas change under users' hands */
	if (!local_is_local(n))
		h->dircache = dircache_open(n->ino, h->entries, h->n_entries, fi);
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(h);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *dir = get_node(fs, ino);
	char *buf = xmalloc(size);
	size_t used = 0;

	if (!dir) {
		free(buf);
		fuse_reply_err(req, ESTALE);
		return;
	}
	for (size_t i = (size_t)off; i < h->n_entries; i++) {
		struct entry *e = &h->entries[i];
		size_t need;

		if (plus) {
			struct node_key key = entry_key(e);
			struct node *n = node_lookup_add(fs->nodes, dir, e->name, e->kind, &key);
			struct fuse_entry_param ep;

			memset(&ep, 0, sizeof(ep));
			ep.ino = n->ino;
			ep.attr = e->st;
			ep.attr.st_ino = n->ino;
			ep.attr_timeout = ttl_for(fs, e->kind);
			ep.entry_timeout = entry_ttl_for(fs, e->kind);
			need = fuse_add_direntry_plus(req, buf + used, size - used, e->name, &ep,
						      (off_t)i + 1);
			if (need > size - used) {
				node_forget(fs->nodes, n->ino, 1); /* not handed out */
				break;
			}
		} else {
			struct stat st = e->st;

			st.st_ino = 0xffffffff; /* unknown here: the lookup assigns it */
			need = fuse_add_direntry(req, buf + used, size - used, e->name, &st,
						 (off_t)i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ----- files ----- */

/* A snapshot of a generated or document file. */
static int open_document(struct fs *fs, struct node *n, struct handle *h)
{
	struct alt_instance *inst;
	struct timespec mtime, ctime;

	switch (n->kind) {
	case NODE_README:
		h->buf = tree_readme(fs, &h->len);
		return 0;
	case NODE_STATUS:
		h->buf = tree_status(fs, &h->len);
		return 0;
	case NODE_APP_JSON:
		return view_app_doc(n->key.app, &h->buf, &h->len, &mtime, &ctime);
	case NODE_INSTANCE_JSON: {
		int r = view_instance(n->key.app, n->key.party, n->key.guid, &inst);

		if (r < 0)
			return r;
		h->buf = xmalloc(inst->doc_len + 1);
		memcpy(h->buf, inst->doc, inst->doc_len + 1);
		h->len = inst->doc_len;
		alt_instance_unref(inst);
		return 0;
	}
	default:
		return -EISDIR;
	}
}

static int open_data(struct fs *fs, struct node *n, struct handle *h, struct fuse_file_info *fi)
{
	struct stat st;
	char *guid = NULL;
	int r = tree_getattr(fs, n, &st);

	if (r == 0)
		r = dw_open_read(fs, n, &h->fd, &guid);
	if (r == 1) {
		/* a write not yet on the platform: its staged bytes */
		h->kind = HANDLE_FD;
		fi->direct_io = 1;
		return 0;
	}
	if (r < 0)
		return r;
	r = altinn_reader_open(fs->a, n->key.party, n->key.guid, guid, (uint64_t)st.st_size,
			       &h->reader);
	free(guid);
	if (r < 0)
		return r;
	/* unchanged on the platform since the kernel last cached it: keep
	 * the cached pages and make no request at all */
	fi->keep_cache = node_swap_cached_mtime(fs->nodes, n, st.st_mtim);
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct node *n = get_node(fs, ino);
	struct handle *h;
	int r;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->fd = -1;
	if (local_is_local(n)) {
		h->kind = HANDLE_FD;
		h->self = req_is_self(req);
		r = local_open(fs, n, fi->flags, h->self, &h->fd);
		h->written = r == 0 && (fi->flags & O_TRUNC);
	} else if (n->kind == NODE_CTL) {
		/* a console: writes are commands, reads the last report */
		h->kind = HANDLE_CTL;
		h->buf = altinn_instance_report(fs->a, view_app_org(n->key.app),
						view_app_name(n->key.app), n->key.party, n->key.guid);
		h->len = strlen(h->buf);
		fi->direct_io = 1;
		r = 0;
	} else if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		r = n->kind == NODE_DATA_FILE ? dw_open_write(fs, n, fi->flags, &h->dw) : -EROFS;
		if (r == 0) {
			h->kind = HANDLE_FD;
			h->fd = h->dw.fd;
			h->written = true;
			fi->direct_io = 1;
		}
	} else if (n->kind == NODE_DATA_FILE) {
		h->kind = HANDLE_DATA;
		r = open_data(fs, n, h, fi);
	} else {
		h->kind = HANDLE_BUFFER;
		r = open_document(fs, n, h);
		/* the size in a cached stat may be older than this snapshot (an
		 * event or a ctl command changed the instance): read it whole */
		fi->direct_io = 1;
	}
	if (r < 0) {
		handle_free(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct alt_bytes bytes;
	ssize_t got;
	char *buf;

	if (h->kind == HANDLE_FD) {
		buf = xmalloc(size ? size : 1);
		got = pread(h->fd, buf, size, off);
		if (got < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_buf(req, buf, (size_t)got);
		free(buf);
		return;
	}
	if (h->kind == HANDLE_BUFFER || h->kind == HANDLE_CTL) {
		size_t n = (size_t)off >= h->len ? 0 : h->len - (size_t)off;

		/* reply from a copy: a release on another thread may free the
		 * snapshot while this reply is still being written */
		n = n < size ? n : size;
		buf = xmalloc(n ? n : 1);
		memcpy(buf, h->buf + (n ? off : 0), n);
		fuse_reply_buf(req, buf, n);
		free(buf);
		return;
	}
	/* straight from the reader's memory: no copy of our own */
	got = altinn_reader_borrow(h->reader, (uint64_t)off, size, &bytes);
	if (got < 0)
		fuse_reply_err(req, (int)-got);
	else
		fuse_reply_iov(req, bytes.iov, bytes.n_iov);
	altinn_reader_release(&bytes);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	ssize_t n;

	if (h->kind == HANDLE_CTL) {
		struct fs *fs = req_fs(req);
		struct node *node = get_node(fs, ino);
		int r;

		if (!node) {
			fuse_reply_err(req, ESTALE);
			return;
		}
		r = altinn_instance_command(fs->a, view_app_org(node->key.app),
					    view_app_name(node->key.app), node->key.party,
					    node->key.guid, buf, size);
		/* the instance changed (or may have): ask again next time */
		view_app_invalidate(node->key.app);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_write(req, size);
		return;
	}
	if (h->kind != HANDLE_FD) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->dw.max && (uint64_t)off + size > h->dw.max) {
		/* over the data type's maxSize: the platform would refuse it */
		h->write_err = EFBIG;
		fuse_reply_err(req, EFBIG);
		return;
	}
	n = pwrite(h->fd, buf, size, off);
	if (n < 0) {
		if (!h->write_err)
			h->write_err = errno;
		fuse_reply_err(req, errno);
		return;
	}
	h->written = true;
	fuse_reply_write(req, (size_t)n);
}

/* close(2) waits for flush, not for release: what must be durable when
 * close returns is made durable here, and its failure (ENOSPC, EIO)
 * reaches the caller. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = get_node(fs, ino);
	int r = 0;

	if (h->kind == HANDLE_FD && h->written && h->dw.id)
		r = fsync(h->fd) < 0 ? -errno : 0; /* its folder was synced at create */
	else if (h->kind == HANDLE_FD && h->written && n)
		r = local_flush(fs, n, h->fd);
	if (r < 0 && !h->write_err)
		h->write_err = -r;
	fuse_reply_err(req, -r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r = 0;

	if (h->kind == HANDLE_FD && (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0)
		r = errno;
	fuse_reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = get_node(fs, ino);

	if (h->dw.id) {
		close(h->fd);
		h->fd = -1;
		dw_release(fs, &h->dw, h->write_err);
	} else if (h->kind == HANDLE_FD && h->written && n) {
		close(h->fd);
		h->fd = -1;
		local_closed(fs, n, h->self, h->write_err);
	}
	handle_free(h);
	fuse_reply_err(req, 0);
}

/* ----- extended attributes ----- */

/* The value of a user.altinn.* attribute of n, or -ENODATA. */
static int xattr_value(struct fs *fs, struct node *n, const char *name, char **ret)
{
	struct alt_instance *inst;
	const struct alt_data_element *el = NULL;
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
	r = v ? 0 : -ENODATA;
	if (v)
		*ret = xstrdup(v);
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

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
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

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char *const names[] = { "user.altinn.id", "user.altinn.data_type",
					     "user.altinn.content_type", "user.altinn.filename",
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

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct node *n = get_node(req_fs(req), ino);

	/* local areas answer writes case by case, at the write; ctl takes
	 * commands and inbox entries can be removed */
	bool writable = n && (local_is_local(n) || n->kind == NODE_CTL || n->kind == NODE_INBOX ||
			      (dw_enabled(req_fs(req)) &&
			       (n->kind == NODE_DATA_TYPE || n->kind == NODE_DATA_FILE)));

	fuse_reply_err(req, (mask & W_OK) && !writable ? EROFS : 0);
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
		else if (ftruncate(h->fd, attr->st_size) < 0)
			r = -errno;
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

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
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
	if (h && h->kind == HANDLE_FD && (to_set & FUSE_SET_ATTR_SIZE))
		h->written = true;
	st.st_ino = ino;
	fuse_reply_attr(req, &st, ttl_for(fs, n->kind));
}

/* A new file in instances/.../data/<type>/: a data element to be */
static void data_create(fuse_req_t req, struct node *dir, const char *name,
			struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = xcalloc(1, sizeof(*h));
	struct node_key key = dir->key;
	struct fuse_entry_param e;
	struct stat st;
	struct node *n;
	int r;

	h->kind = HANDLE_FD;
	r = dw_create(fs, dir, name, &h->dw, &st);
	if (r < 0) {
		free(h);
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
		dw_release(fs, &h->dw, EINTR);
		handle_free(h);
	}
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
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
	h = xcalloc(1, sizeof(*h));
	h->kind = HANDLE_FD;
	h->self = req_is_self(req);
	r = local_create(fs, dir, name, mode, fi->flags, h->self, &h->fd, &st);
	if (r < 0) {
		free(h);
		fuse_reply_err(req, -r);
		return;
	}
	h->written = true; /* a new file, even an empty one, is a change */
	fi->fh = (uintptr_t)h;
	reply_new_entry(req, dir, name, &st, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
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

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
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

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
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

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
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

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct node *n = get_node(req_fs(req), parent);

	fuse_reply_err(req, n && local_is_local(n) ? EPERM : EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct node *n = get_node(req_fs(req), newparent);

	fuse_reply_err(req, n && local_is_local(n) ? EPERM : EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct node *n = get_node(req_fs(req), ino);

	fuse_reply_err(req, n && local_is_local(n) ? ENOTSUP : EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct node *n = get_node(req_fs(req), ino);

	fuse_reply_err(req, n && local_is_local(n) ? ENODATA : EROFS);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	memset(&st, 0, sizeof(st));
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_files = node_count(req_fs(req)->nodes);
	st.f_namemax = 255;
	st.f_flag = ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.readlink = op_readlink,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.access = op_access,
	.create = op_create,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &ops;
}

struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));

	fs->a = a;
	fs->cfg = cfg;
	fs->view = view_new(a, cfg);
	fs->nodes = node_table_new();
	fs->mountpoint = xstrdup(mountpoint);
	clock_gettime(CLOCK_REALTIME, &fs->started);
	fs->uid = getuid();
	fs->gid = getgid();
	return fs;
}

/* The kernel reads ahead 128 KiB at a time on a FUSE mount; 1 MiB
 * windows let one sequential reader keep a read-ahead stream busy (cat
 * of a 256 MiB file: 0.20 s -> 0.165 s here; 4 MiB was slower again).
 * Best effort: only root may write the knob, and a failure costs only
 * speed. Must run off the FUSE threads, since stat(mountpoint) asks us. */
static void tune_read_ahead(struct fs *fs)
{
	char path[96];
	struct stat st;
	FILE *f;

	if (stat(fs->mountpoint, &st) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "w");
	if (!f) {
		log_debug("cannot tune read-ahead at \"%s\": %s", path, strerror(errno));
		return;
	}
	fputs("1024\n", f);
	if (fclose(f) != 0)
		log_debug("cannot tune read-ahead at \"%s\": %s", path, strerror(errno));
}

/* Asks the platform for each app's metadata once at start, off the FUSE
 * threads: status.json then tells at once whether the platform answers,
 * and the first `ls` finds the metadata cached. */
static void *warm_up(void *arg)
{
	struct fs *fs = arg;

	tune_read_ahead(fs);

	for (size_t i = 0; i < view_n_apps(fs->view); i++) {
		struct view_app *va = view_app_at(fs->view, i);
		struct timespec mtime, ctime;
		size_t len;
		char *doc;
		int r = view_app_doc(va, &doc, &len, &mtime, &ctime);

		if (r < 0) {
			log_warn("cannot read the metadata of \"%s/%s\": %s", view_app_org(va),
				 view_app_name(va), strerror(-r));
			continue;
		}
		free(doc);
	}
	return NULL;
}

void fs_set_data_writes(struct fs *fs, const struct alt_dw_hooks *hooks)
{
	fs->dw_hooks = *hooks;
	fs->dw_enabled = true;
}

void fs_set_inbox(struct fs *fs, const struct fs_inbox_hooks *hooks)
{
	fs->inbox_hooks = *hooks;
	fs->inbox_enabled = true;
}

void fs_set_status_hooks(struct fs *fs, const struct fs_status_hooks *hooks)
{
	fs->status_hooks = *hooks;
}

void fs_set_session(struct fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

/* The node at path (names from the root), or NULL if the kernel holds
 * none there: then it has nothing cached to drop either. */
static struct node *find_path(struct fs *fs, const char *const *names, size_t n)
{
	struct node *at = node_root(fs->nodes);

	for (size_t i = 0; i < n && at; i++)
		at = node_find(fs->nodes, at, names[i]);
	return at;
}

void fs_invalidate(struct fs *fs, const char *org, const char *app, const char *party,
		   const char *guid)
{
	const char *path[] = { "apps", org, app, "instances", party, guid };
	struct node *instances, *n;

	for (size_t i = 0; i < view_n_apps(fs->view); i++) {
		struct view_app *va = view_app_at(fs->view, i);

		if (strcmp(view_app_org(va), org) == 0 && strcmp(view_app_name(va), app) == 0)
			view_app_invalidate(va);
	}
	if (!fs->se)
		return;
	instances = find_path(fs, path, 4);
	if (!instances)
		return;
	/* the folder's own attributes (its listing is built fresh at every
	 * opendir, and the kernel keeps its copy only while that matches,
	 * so there is nothing else to drop) */
	fuse_lowlevel_notify_inval_inode(fs->se, instances->ino, 0, 0);
	if (!party)
		return;
	/* the party's entry, even a negative one, and everything below it:
	 * the kernel looks it all up again */
	fuse_lowlevel_notify_inval_entry(fs->se, instances->ino, party, strlen(party));
	n = find_path(fs, path, 5);
	if (n && guid)
		fuse_lowlevel_notify_inval_entry(fs->se, n->ino, guid, strlen(guid));
}

void fs_set_area(struct fs *fs, enum local_area area, const struct local_hooks *hooks)
{
	local_set_hooks(fs, area, hooks);
}

int fs_start(struct fs *fs)
{
	int r = local_open_dirs(fs);

	if (r < 0)
		return r;
	if (pthread_create(&fs->warm_thread, NULL, warm_up, fs) == 0)
		fs->warm_started = true;
	return 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	if (fs->warm_started)
		pthread_join(fs->warm_thread, NULL);
	local_close_dirs(fs);
	view_free(fs->view);
	node_table_free(fs->nodes);
	free(fs->mountpoint);
	free(fs);
}
