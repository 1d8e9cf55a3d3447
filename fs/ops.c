/* ops.c - the FUSE low-level operations.
 *
 * Each operation resolves its inode to a node, asks tree.c what is
 * there, and replies exactly once with data or an errno. Directory
 * handles hold a snapshot of the listing taken at opendir, so a listing
 * that changes on the platform mid-readdir never repeats or skips
 * entries. The platform's part is read-only (EROFS) except ctl, inbox
 * entries and the files of data folders (dwrite.c). */
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
#include "content.h"
#include "dwrite.h"
#include "dircache.h"
#include "local.h"
#include "log.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"

/* Is the caller one of the daemon's own threads? fuse_req_ctx() gives
 * the calling thread's id, so look for it among our tasks. */
bool req_is_self(fuse_req_t req)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)fuse_req_ctx(req)->pid);
	return stat(path, &st) == 0;
}

struct handle *handle_new(struct fs *fs)
{
	struct handle *h = xcalloc(1, sizeof(*h));

	h->fs = fs;
	h->fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
	return h;
}

void handle_free(struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		h->fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&h->fs->handles_lock);
	free(h->buf);
	if (h->kind == HANDLE_FD && h->fd >= 0)
		close(h->fd);
	altinn_reader_close(h->reader);
	entries_free(h->entries, h->n_entries);
	dircache_close(h->dircache);
	pthread_mutex_destroy(&h->lock);
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
	h = handle_new(fs);
	h->kind = HANDLE_DIR;
	r = tree_stream_open(fs, n);
	if (r == 1) {
		/* read a page at a time in readdir; the kernel keeps no copy */
		h->stream = true;
		fi->fh = (uintptr_t)h;
		if (fuse_reply_open(req, fi) == -ENOENT)
			handle_free(h);
		return;
	}
	if (r == 0)
		r = tree_list(fs, n, &h->entries, &h->n_entries);
	if (r < 0) {
		handle_free(h); /* it is on the list */
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

/* entries of a streamed folder fetched at once: about five replies of
 * a 4 KiB readdir */
#define STREAM_PAGE 512

/* A streamed folder's window (h->entries from position h->win_off):
 * made to hold position off. Reading on from its end asks for the page
 * after its last name; a rewind or seek asks by position. The kernel asks
 * again from inside the window when a reader's buffer filled up. */
static int stream_window(struct fs *fs, struct handle *h, struct node *dir, uint64_t off)
{
	uint64_t end = h->win_off + h->n_entries;
	char *after = NULL;
	size_t n = 0;
	int r;

	if (h->entries && off >= h->win_off && (off < end || (off == end && h->at_end)))
		return 0;
	if (h->entries && h->n_entries > 0 && off == end)
		after = xstrdup(h->entries[h->n_entries - 1].name);
	/* one array for the handle's life: a page's worth freed and taken
	 * again made the allocator give pages back and fault them in anew */
	if (!h->entries)
		h->entries = xcalloc(STREAM_PAGE, sizeof(*h->entries));
	for (size_t i = 0; i < h->n_entries; i++)
		entry_clear(&h->entries[i]);
	h->n_entries = 0;
	r = tree_stream_page(fs, dir, after, after ? 0 : off, STREAM_PAGE, h->entries, &n);
	free(after);
	if (r < 0)
		return r;
	h->n_entries = n;
	h->win_off = off;
	h->at_end = n < STREAM_PAGE;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *dir = get_node(fs, ino);
	char *buf;
	size_t used = 0, base = 0;
	int r;

	if (!dir) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (h->stream) {
		r = stream_window(fs, h, dir, (uint64_t)off);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		base = (size_t)h->win_off;
	}
	buf = xmalloc(size);
	for (size_t i = (size_t)off - base; i < h->n_entries; i++) {
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
						      (off_t)(base + i) + 1);
			if (need > size - used) {
				node_forget(fs->nodes, n->ino, 1); /* not handed out */
				break;
			}
		} else {
			struct stat st = e->st;

			st.st_ino = 0xffffffff; /* unknown here: the lookup assigns it */
			need = fuse_add_direntry(req, buf + used, size - used, e->name, &st,
						 (off_t)(base + i) + 1);
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
		h->buf = content_readme(fs, &h->len);
		return 0;
	case NODE_STATUS:
		h->buf = content_status(fs, &h->len);
		return 0;
	case NODE_SCOPE_STATUS:
		h->buf = content_scope_status(fs, n->key.scope, &h->len);
		return h->buf ? 0 : -ENOENT;
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
	char *guid = NULL, *hash = NULL;
	struct alt_instance *inst;
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
	/* its contentHash, for the cache to check the bytes against (the
	 * instance was just looked at: no request) */
	if (view_instance(n->key.app, n->key.party, n->key.guid, &inst) == 0) {
		for (size_t i = 0; i < inst->n_data; i++)
			if (strcmp(inst->data[i].id, guid) == 0 && inst->data[i].content_hash)
				hash = xstrdup(inst->data[i].content_hash);
		alt_instance_unref(inst);
	}
	r = altinn_reader_open(fs->a, n->key.party, n->key.guid, guid, (uint64_t)st.st_size,
			       &st.st_mtim, hash, &h->reader);
	free(hash);
	free(guid);
	if (r < 0)
		return r;
	/* unchanged on the platform since the kernel last cached it: keep
	 * the cached pages and make no request at all */
	fi->keep_cache = node_swap_cached_mtime(fs->nodes, n, st.st_mtim);
	return 0;
}

/* Is the local file open at fd the one the kernel cached pages of at the
 * last open, unchanged since (same inode, size and mtime)? Then a read
 * again is served from those pages, without us. Writes through the mount
 * keep the kernel's pages right as they go; a file replaced on disk by
 * our own threads (a download renamed over its placeholder, a receipt
 * rewritten) is another inode, and one written in place has a new mtime. */
static bool local_unchanged(struct fs *fs, struct node *n, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && node_swap_cached_file(fs->nodes, n, &st);
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
	fs_tune_read_ahead_once(fs);
	h = handle_new(fs);
	h->fd = -1;
	if (local_is_local(n)) {
		h->kind = HANDLE_FD;
		h->self = req_is_self(req);
		r = local_open(fs, n, fi->flags, h->self, &h->fd, &h->reader);
		/* an open for writing told the area's family that a write
		 * begins (LOCAL_WRITE): its close tells it the write ended,
		 * even when no byte came */
		h->written = r == 0 && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC));
		if (r == 0 && !h->written)
			fi->keep_cache = local_unchanged(fs, n, h->fd);
		if (r == 0 && h->reader) {
			/* read as its bytes arrive (a Broker transfer): the
			 * file on disk gave only its attributes */
			close(h->fd);
			h->fd = -1;
			h->kind = HANDLE_DATA;
		}
	} else if (n->kind == NODE_CTL) {
		/* a console: writes are commands, reads the last report */
		h->kind = HANDLE_CTL;
		h->buf = fs->ctl_hooks.report(fs->ctl_hooks.ctx, view_app_org(n->key.app),
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

/* Replies from a file (of the data cache, or a local one) are read into one of READ_BUFS
 * buffers kept for reuse: a fresh buffer per read (as fuse_reply_data
 * makes for an fd) costs a page fault per page and ran at a fifth of the
 * speed. Not one per FUSE thread: each of the 64 would keep a read's
 * size, and 32 readers at once held 32 MiB that way. A read that finds
 * them all in use waits for one: each is held only for a pread and the
 * reply's write. */
#define READ_BUFS 4

struct read_buf {
	char *p;
	size_t cap;
};

static pthread_mutex_t read_bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t read_bufs_back = PTHREAD_COND_INITIALIZER;
static struct read_buf read_bufs[READ_BUFS]; /* protected by read_bufs_lock */
static int n_read_bufs = READ_BUFS;          /* free ones: read_bufs[0..n) */

static struct read_buf read_buf_take(void)
{
	struct read_buf b;

	pthread_mutex_lock(&read_bufs_lock);
	while (n_read_bufs == 0)
		pthread_cond_wait(&read_bufs_back, &read_bufs_lock);
	b = read_bufs[--n_read_bufs];
	pthread_mutex_unlock(&read_bufs_lock);
	return b;
}

static void read_buf_give(struct read_buf b)
{
	pthread_mutex_lock(&read_bufs_lock);
	read_bufs[n_read_bufs++] = b;
	pthread_cond_signal(&read_bufs_back);
	pthread_mutex_unlock(&read_bufs_lock);
}

/* Replies with len bytes of fd at off. exact: they are all there (a
 * cache entry's), and fewer are EIO; else fewer end at the end of the
 * file (a local file's, which may be shorter than the kernel thinks). */
static void reply_from_fd(fuse_req_t req, int fd, uint64_t off, size_t len, bool exact)
{
	struct read_buf b = read_buf_take();
	size_t done = 0;

	if (b.cap < len) {
		free(b.p);
		b.p = xmalloc(len ? len : 1);
		b.cap = len ? len : 1;
	}
	while (done < len) {
		ssize_t k = pread(fd, b.p + done, len - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 || (k == 0 && exact)) {
			fuse_reply_err(req, k < 0 && !exact ? errno : EIO);
			read_buf_give(b);
			return;
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	fuse_reply_buf(req, b.p, done);
	read_buf_give(b);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct alt_bytes bytes;
	ssize_t got;
	char *buf;

	if (h->kind == HANDLE_FD) {
		/* local files too: a fresh buffer per read spent 70 % of the
		 * daemon's time in page faults (perf, cat of a 256 MiB inbox
		 * file) */
		reply_from_fd(req, h->fd, (uint64_t)off, size, false);
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
	if (got < 0) {
		fuse_reply_err(req, (int)-got);
	} else if (bytes.is_fd) {
		reply_from_fd(req, bytes.fd, bytes.fd_off, bytes.len, true);
	} else {
		fuse_reply_iov(req, bytes.iov, bytes.n_iov);
	}
	altinn_reader_release(&bytes);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	ssize_t n;
	int r;

	if (h->kind == HANDLE_CTL) {
		struct fs *fs = req_fs(req);
		struct node *node = get_node(fs, ino);

		if (!node) {
			fuse_reply_err(req, ESTALE);
			return;
		}
		r = fs->ctl_hooks.command(fs->ctl_hooks.ctx, view_app_org(node->key.app),
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
	pthread_mutex_lock(&h->lock);
	if (h->dw.max && (uint64_t)off + size > h->dw.max) {
		/* over the data type's maxSize: the platform would refuse it */
		h->write_err = EFBIG;
		r = -EFBIG;
	} else {
		r = handle_rewrite(req_fs(req), h, get_node(req_fs(req), ino));
	}
	n = r < 0 ? r : pwrite(h->fd, buf, size, off);
	if (n < 0 && r == 0) {
		r = -errno;
		if (!h->write_err)
			h->write_err = errno;
	}
	if (r == 0)
		h->written = true;
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, (size_t)n);
}

/* fsync of what h wrote (and of a local file's folder); a failure is
 * kept as the handle's error. Caller holds h->lock. */
static int make_durable(struct fs *fs, struct handle *h, struct node *n)
{
	int r = 0;

	if (h->dw.id)
		r = fsync(h->fd) < 0 ? -errno : 0; /* its folder was synced at create */
	else if (n)
		r = local_flush(fs, n, h->fd);
	if (r < 0 && !h->write_err)
		h->write_err = -r;
	return r;
}

/* The file's fate is decided: the module that owns it hears that it was
 * closed after writing (with the first error, if any), and from now on
 * a write through h starts it over (handle_rewrite). open: a flush, so
 * the kernel may still hold the file and a release follows. Caller
 * holds h->lock. */
static void hand_over(struct fs *fs, struct handle *h, struct node *n, bool open)
{
	if (h->dw.id)
		dw_commit(fs, &h->dw, h->write_err, open);
	else if (n)
		local_closed(fs, n, h->self, h->write_err, open);
	h->written = false;
	h->handed = h->handed || open;
}

int handle_rewrite(struct fs *fs, struct handle *h, struct node *n)
{
	if (!h->handed || h->written)
		return 0;
	if (h->write_err)
		return -h->write_err; /* handed over as failed: held or dropped */
	if (h->dw.id)
		return dw_reopen(fs, &h->dw);
	return n ? local_reopen(fs, n, h->self) : -ESTALE;
}

/* close(2) waits for flush, not for release (the kernel sends that later,
 * in the background): so what close returns, and what a user sees once
 * it has, is decided here. The bytes are made durable, a failure (ENOSPC,
 * EIO) reaches the caller, and the file is handed over. A flush comes
 * for every close of a descriptor (a dup, a child's); only one after a
 * write hands over again. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = get_node(fs, ino);
	int r = 0;

	if (h->kind != HANDLE_FD) {
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (h->written) {
		r = make_durable(fs, h, n);
		hand_over(fs, h, n, true);
	}
	pthread_mutex_unlock(&h->lock);
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

/* The last close. Normally the flush has handed the file over already;
 * bytes written since (pages of a shared mapping written back after
 * close) are made durable and handed over now. */
static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = get_node(fs, ino);

	if (h->kind == HANDLE_FD && h->written && (h->dw.id || n)) {
		make_durable(fs, h, n);
		close(h->fd);
		h->fd = -1;
		hand_over(fs, h, n, false);
	}
	if (h->handed && h->dw.id)
		dw_release(fs, &h->dw);
	else if (h->handed && n)
		local_released(fs, n, h->self);
	handle_free(h);
	fuse_reply_err(req, 0);
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
	/* counted for the metrics, a refusal by the gate too */
	return opstat_wrap(gate_wrap(&ops));
}
