/* local.c - areas of the tree kept on local disk (see local.h).
 *
 * Every path below an area is resolved relative to the area's folder
 * with the *at() calls and O_NOFOLLOW, from names the kernel hands us
 * one component at a time, so nothing here can reach outside state_dir.
 * The owning module's hooks decide what is allowed; this file only does
 * the file system work, durably where it matters: a file written here
 * is fsynced, with its folder, before close() returns. */
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "altinn.h"
#include "config.h"
#include "entry.h"
#include "fs_i.h"
#include "log.h"
#include "node.h"
#include "view.h"
#include "xalloc.h"

/* The slot of a node's key.area (1 + its index), or NULL. */
static const struct local_area_slot *slot_of(struct fs *fs, int area)
{
	return area > 0 && (size_t)area <= fs->n_areas ? &fs->areas[area - 1] : NULL;
}

const char *local_area_name(struct fs *fs, int area)
{
	const struct local_area_slot *s = slot_of(fs, area);

	return s ? s->name : NULL;
}

void local_add_area(struct fs *fs, size_t family, int index, const struct fs_area *area,
		    bool rooted)
{
	fs->areas = xrealloc(fs->areas, (fs->n_areas + 1) * sizeof(*fs->areas));
	fs->areas[fs->n_areas++] = (struct local_area_slot){ area->name, area->hooks, index,
							     family, rooted };
}

bool local_area_of_family(struct fs *fs, int area, size_t family)
{
	const struct local_area_slot *s = slot_of(fs, area);

	return s && s->family == family;
}

bool local_area_in_apps(struct fs *fs, int area)
{
	const struct local_area_slot *s = slot_of(fs, area);

	return s && !s->rooted;
}

/* The scope of a node below a rooted family's scope folder, or NULL. */
static struct fs_scope *scope_of(struct fs *fs, const struct node *n)
{
	return n->key.scope > 0 && (size_t)n->key.scope <= fs->n_scopes
		       ? &fs->scopes[n->key.scope - 1] : NULL;
}

/* The row of area folder fds n's areas are in: its app's or its scope's. */
static int *fds_of(struct fs *fs, const struct node *n)
{
	struct fs_scope *sc = scope_of(fs, n);

	if (!fs->area_fds)
		return NULL;
	if (sc)
		return sc->fds;
	if (n->key.scope)
		return NULL;
	return &fs->area_fds[view_app_index(fs->view, n->key.app) * fs->n_areas];
}

bool local_is_local(const struct node *n)
{
	return n->kind == NODE_AREA || n->kind == NODE_LOCAL;
}

static int mkdir_p_at(int dirfd, const char *path)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (*p && mkdirat(dirfd, p, 0700) < 0 && errno != EEXIST)
			r = -errno;
		*s = c;
		if (r < 0 || c == '\0')
			break;
	}
	free(p);
	return r;
}

/* The folders of each rooted family's scopes: state_dir/<root>/<scope>/<area>. */
static int open_scope_dirs(struct fs *fs, int state)
{
	for (size_t i = 0; i < fs->n_scopes; i++) {
		struct fs_scope *sc = &fs->scopes[i];

		sc->fds = xcalloc(fs->n_areas + 1, sizeof(*sc->fds));
		for (size_t a = 0; a < fs->n_areas; a++) {
			char *path;
			int r, fd;

			sc->fds[a] = -1;
			if (fs->areas[a].family != sc->family)
				continue;
			path = xasprintf("%s/%s/%s", sc->root, sc->name, fs->areas[a].name);
			r = mkdir_p_at(state, path);
			fd = r < 0 ? -1 : openat(state, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0) {
				r = log_errno(r < 0 ? r : -errno, "cannot create \"%s/%s\"",
					      fs->cfg->state_dir, path);
				free(path);
				return r;
			}
			sc->fds[a] = fd;
			free(path);
		}
	}
	return 0;
}

int local_open_dirs(struct fs *fs)
{
	size_t n = view_n_apps(fs->view);
	int state = open(fs->cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (state < 0)
		return log_errno(-errno, "cannot open state_dir \"%s\"", fs->cfg->state_dir);
	fs->area_fds = xcalloc(n * fs->n_areas + 1, sizeof(*fs->area_fds));
	for (size_t i = 0; i < n * fs->n_areas; i++)
		fs->area_fds[i] = -1;
	for (size_t i = 0; i < n; i++) {
		struct view_app *va = view_app_at(fs->view, i);

		for (size_t a = 0; a < fs->n_areas; a++) {
			char *path;
			int fd;

			if (fs->areas[a].rooted)
				continue;
			path = xasprintf("apps/%s/%s/%s", view_app_org(va), view_app_name(va),
					 fs->areas[a].name);
			r = mkdir_p_at(state, path);
			fd = r < 0 ? -1 : openat(state, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0) {
				r = log_errno(r < 0 ? r : -errno, "cannot create \"%s/%s\"",
					      fs->cfg->state_dir, path);
				free(path);
				close(state);
				return r;
			}
			fs->area_fds[i * fs->n_areas + a] = fd;
			free(path);
		}
	}
	r = open_scope_dirs(fs, state);
	close(state);
	return r;
}

void local_close_dirs(struct fs *fs)
{
	size_t n = view_n_apps(fs->view) * fs->n_areas;

	for (size_t i = 0; fs->area_fds && i < n; i++)
		if (fs->area_fds[i] >= 0)
			close(fs->area_fds[i]);
	free(fs->area_fds);
	fs->area_fds = NULL;
	for (size_t i = 0; i < fs->n_scopes; i++) {
		for (size_t a = 0; fs->scopes[i].fds && a < fs->n_areas; a++)
			if (fs->scopes[i].fds[a] >= 0)
				close(fs->scopes[i].fds[a]);
		free(fs->scopes[i].fds);
		fs->scopes[i].fds = NULL;
	}
}

/* The area's folder fd for n, and n's path below it ("" for the area). */
static int area_of(struct fs *fs, struct node *n, int *ret_fd, char **ret_rel)
{
	int *fds = fds_of(fs, n);
	size_t area = SIZE_MAX;
	char *rel;

	if (!fds || !slot_of(fs, n->key.area))
		return -ENOENT;
	rel = node_path_below(fs->nodes, n, scope_of(fs, n) ? NODE_SCOPE : NODE_APP);
	if (!rel)
		return -ENOENT;
	/* the area is the path's first name, not n's key: our own threads
	 * move files (and folders with theirs) from one area to another */
	for (size_t a = 0; a < fs->n_areas; a++) {
		size_t len = strlen(fs->areas[a].name);

		if (fds[a] >= 0 && strncmp(rel, fs->areas[a].name, len) == 0 &&
		    (rel[len] == '/' || rel[len] == '\0'))
			area = a;
	}
	if (area == SIZE_MAX) {
		free(rel);
		return -ENOENT;
	}
	/* drop the area's own name: "outbox/org-1/a" -> "org-1/a" */
	{
		const char *slash = strchr(rel, '/');

		memmove(rel, slash ? slash + 1 : rel + strlen(rel), strlen(slash ? slash + 1 : "") + 1);
	}
	*ret_fd = fds[area];
	*ret_rel = rel;
	return 0;
}

/* "dir/name", or name when dir is "" (or ".": the area itself). */
static char *join(const char *dir, const char *name)
{
	if (!name)
		return xstrdup(*dir ? dir : ".");
	return *dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

/* The slot whose folder fd is (n's key may be older than a move). */
static const struct local_area_slot *fd_slot(struct fs *fs, struct node *n, int fd)
{
	int *fds = fds_of(fs, n);

	for (size_t a = 0; fds && a < fs->n_areas; a++)
		if (fds[a] == fd)
			return &fs->areas[a];
	return slot_of(fs, n->key.area);
}

/* Fills c for a change in n's area and returns that area's hooks. */
static const struct local_hooks *call_init(struct fs *fs, struct node *n, struct local_call *c,
					   enum local_op op, int dirfd, const char *rel,
					   bool is_dir, bool self)
{
	static const struct local_hooks none;
	const struct local_area_slot *s = fd_slot(fs, n, dirfd);
	struct fs_scope *sc = scope_of(fs, n);

	memset(c, 0, sizeof(*c));
	if (sc) {
		c->scope = sc->name;
	} else {
		c->org = view_app_org(n->key.app);
		c->app = view_app_name(n->key.app);
	}
	c->area = s ? s->index : -1;
	c->op = op;
	c->rel = rel;
	c->is_dir = is_dir;
	c->self = self;
	c->dirfd = dirfd;
	return s ? &s->hooks : &none;
}

static int hook_check(const struct local_hooks *h, const struct local_call *c)
{
	return h->check ? h->check(h->ctx, c) : -EROFS;
}

static void hook_done(const struct local_hooks *h, const struct local_call *c)
{

	if (h->done)
		h->done(h->ctx, c);
}

static void fix_stat(struct fs *fs, struct stat *st)
{
	st->st_nlink = S_ISDIR(st->st_mode) ? 1 : st->st_nlink;
	(void)fs;
}

int local_stat(struct fs *fs, struct node *dir, const char *name, struct stat *ret)
{
	char *rel, *path;
	int fd, r;

	r = area_of(fs, dir, &fd, &rel);
	if (r < 0)
		return r;
	path = join(rel, name);
	r = fstatat(fd, path, ret, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (r == 0 && !S_ISREG(ret->st_mode) && !S_ISDIR(ret->st_mode))
		r = -ENOENT; /* nothing else belongs here */
	if (r == 0)
		fix_stat(fs, ret);
	free(path);
	free(rel);
	return r;
}

int local_list(struct fs *fs, struct node *dir, struct entry **ret, size_t *ret_n)
{
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char *rel;
	DIR *d;
	int fd, dfd, r;

	r = area_of(fs, dir, &fd, &rel);
	if (r < 0)
		return r;
	dfd = openat(fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(rel);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			e = xrealloc(e, cap * sizeof(*e));
		}
		memset(&e[n], 0, sizeof(e[n]));
		e[n].name = xstrdup(de->d_name);
		e[n].kind = NODE_LOCAL;
		e[n].app = dir->key.app;
		e[n].scope = dir->key.scope;
		e[n].area = dir->key.area;
		fix_stat(fs, &st);
		e[n].st = st;
		n++;
	}
	closedir(d);
	*ret = e ? e : xcalloc(1, sizeof(*e));
	*ret_n = n;
	return 0;
}

/* fsync of the folder holding path, so a new or renamed name survives a
 * crash as surely as the bytes do */
static int sync_parent(int fd, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
	int dfd = openat(fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (dfd < 0 || fsync(dfd) < 0)
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return r;
}

int local_create(struct fs *fs, struct node *dir, const char *name, mode_t mode, int flags,
		 bool self, int *ret_fd, struct stat *ret_st)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel, *path;
	int fd, afd, r;

	r = area_of(fs, dir, &afd, &rel);
	if (r < 0)
		return r;
	path = join(rel, name);
	h = call_init(fs, dir, &c, LOCAL_CREATE, afd, path, false, self);
	r = hook_check(h, &c);
	if (r < 0)
		goto out;
	fd = openat(afd, path, (flags & ~O_NOFOLLOW) | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    mode & 0777);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, ret_st) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	fix_stat(fs, ret_st);
	*ret_fd = fd;
	hook_done(h, &c);
out:
	free(path);
	free(rel);
	return r;
}

int local_open(struct fs *fs, struct node *n, int flags, bool self, int *ret_fd,
	       struct alt_reader **ret_reader)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel;
	int fd, afd, r;

	if (ret_reader)
		*ret_reader = NULL;
	/* renamed over (a receipt rewritten) or removed since the kernel
	 * looked it up: ESTALE makes the kernel look the name up again and
	 * retry the open once (LOOKUP_REVAL), so the reader gets the file
	 * that has the name now; ENOENT would end its open() */
	if (!n->name[0])
		return -ESTALE;
	r = area_of(fs, n, &afd, &rel);
	if (r < 0)
		return r;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
		h = call_init(fs, n, &c, LOCAL_WRITE, afd, rel, false, self);
		r = hook_check(h, &c);
		if (r < 0)
			goto out;
	} else if (!self) {
		h = call_init(fs, n, &c, LOCAL_RELEASE, afd, rel, false, self);
		c.reader = ret_reader;
		r = h->fill ? h->fill(h->ctx, &c) : 0;
		if (r < 0)
			goto out;
	}
	/* the name and the open in one step against renames (not the hooks
	 * above: a fill may download): opened by name just after a rename
	 * on disk and before our nodes follow, the old node would get the
	 * new file, and a reader its bytes cut at the old size the kernel
	 * keeps */
	pthread_rwlock_rdlock(&fs->rename_lock);
	free(rel);
	rel = NULL;
	r = n->name[0] ? area_of(fs, n, &afd, &rel) : -ESTALE;
	if (r == 0) {
		fd = openat(afd, rel, (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		else
			*ret_fd = fd;
	}
	pthread_rwlock_unlock(&fs->rename_lock);
out:
	if (r < 0 && ret_reader) {
		altinn_reader_close(*ret_reader);
		*ret_reader = NULL;
	}
	free(rel);
	return r;
}

int local_mkdir(struct fs *fs, struct node *dir, const char *name, mode_t mode, bool self,
		struct stat *ret_st)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel, *path;
	int afd, r;

	r = area_of(fs, dir, &afd, &rel);
	if (r < 0)
		return r;
	path = join(rel, name);
	h = call_init(fs, dir, &c, LOCAL_MKDIR, afd, path, true, self);
	r = hook_check(h, &c);
	if (r == 0 && mkdirat(afd, path, mode & 0777) < 0)
		r = -errno;
	if (r == 0 && fstatat(afd, path, ret_st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r == 0) {
		sync_parent(afd, path);
		fix_stat(fs, ret_st);
		hook_done(h, &c);
	}
	free(path);
	free(rel);
	return r;
}

int local_remove(struct fs *fs, struct node *dir, const char *name, bool is_dir, bool self)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel, *path;
	int afd, r;

	r = area_of(fs, dir, &afd, &rel);
	if (r < 0)
		return r;
	path = join(rel, name);
	h = call_init(fs, dir, &c, LOCAL_REMOVE, afd, path, is_dir, self);
	r = hook_check(h, &c);
	if (r == 0 && unlinkat(afd, path, is_dir ? AT_REMOVEDIR : 0) < 0)
		r = -errno;
	if (r == 0) {
		sync_parent(afd, path);
		node_unlink(fs->nodes, dir, name);
		hook_done(h, &c);
	}
	free(path);
	free(rel);
	return r;
}

/* Are a and b in areas of one family? Only within one may our own
 * threads move files from area to area (outbox -> failed). */
static bool same_family(struct fs *fs, struct node *a, struct node *b)
{
	const struct local_area_slot *sa = slot_of(fs, a->key.area);
	const struct local_area_slot *sb = slot_of(fs, b->key.area);

	return sa && sb && sa->family == sb->family;
}

int local_rename(struct fs *fs, struct node *dir, const char *name, struct node *newdir,
		 const char *newname, unsigned int flags, bool self)
{
	char *rel = NULL, *newrel = NULL, *path = NULL, *newpath = NULL;
	const struct local_hooks *h;
	struct local_call c;
	struct stat st;
	int afd, nafd, r;

	if (!local_is_local(newdir) || newdir->key.app != dir->key.app ||
	    newdir->key.scope != dir->key.scope ||
	    (newdir->key.area != dir->key.area && (!self || !same_family(fs, dir, newdir))))
		return -EXDEV; /* mv falls back to copy and remove */
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	r = area_of(fs, dir, &afd, &rel);
	if (r == 0)
		r = area_of(fs, newdir, &nafd, &newrel);
	if (r < 0)
		goto out;
	path = join(rel, name);
	newpath = join(newrel, newname);
	if (fstatat(afd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		goto out;
	}
	h = call_init(fs, newdir, &c, LOCAL_RENAME, nafd, newpath, S_ISDIR(st.st_mode), self);
	c.old_rel = path;
	c.old_area = fd_slot(fs, dir, afd) ? fd_slot(fs, dir, afd)->index : -1;
	r = hook_check(h, &c);
	if (r == 0) {
		pthread_rwlock_wrlock(&fs->rename_lock);
		if (renameat2(afd, path, nafd, newpath, flags) < 0) {
			r = -errno;
		} else {
			struct node *n;

			/* keep the kernel's idea and ours the same */
			node_unlink(fs->nodes, newdir, newname);
			n = node_find(fs->nodes, dir, name);
			if (n)
				node_rename(fs->nodes, n, newdir, newname);
			if (n && newdir->key.area != dir->key.area)
				n->key.area = newdir->key.area; /* outbox -> failed */
		}
		pthread_rwlock_unlock(&fs->rename_lock);
	}
	if (r == 0) {
		sync_parent(nafd, newpath);
		if (dir != newdir)
			sync_parent(afd, path);
		hook_done(h, &c);
	}
out:
	free(path);
	free(newpath);
	free(rel);
	free(newrel);
	return r;
}

int local_setattr(struct fs *fs, struct node *n, int fd, const struct stat *attr, int to_set,
		  bool self, struct stat *ret_st)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel;
	int afd, r;

	r = area_of(fs, n, &afd, &rel);
	if (r < 0)
		return r;
	h = call_init(fs, n, &c, LOCAL_WRITE, afd, rel, false, self);
	c.attrs_only = !(to_set & FUSE_SET_ATTR_SIZE);
	r = hook_check(h, &c);
	if (r < 0)
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int tfd = fd >= 0 ? fd : openat(afd, rel, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

		if (tfd < 0 || ftruncate(tfd, attr->st_size) < 0)
			r = -errno;
		/* truncate(1) has no close to wait for: durable now, and done */
		if (fd < 0 && tfd >= 0 && r == 0 && fsync(tfd) < 0)
			r = -errno;
		if (fd < 0 && tfd >= 0)
			close(tfd);
		if (r < 0)
			goto out;
		if (fd < 0)
			hook_done(h, &c);
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		if (fchmodat(afd, *rel ? rel : ".", attr->st_mode & 07777, 0) < 0) {
			r = -errno;
			goto out;
		}
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(afd, *rel ? rel : ".", ts, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			goto out;
		}
	}
	/* owners are ours: chown is accepted and changes nothing */
	if (fstatat(afd, *rel ? rel : ".", ret_st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else
		fix_stat(fs, ret_st);
out:
	free(rel);
	return r;
}

int local_flush(struct fs *fs, struct node *n, int fd)
{
	char *rel;
	int afd, r;

	if (fsync(fd) < 0)
		return -errno;
	r = area_of(fs, n, &afd, &rel);
	if (r < 0)
		return r;
	r = sync_parent(afd, rel);
	free(rel);
	return r;
}

static void tell_closed(struct fs *fs, struct node *n, enum local_op op, bool self, int error,
			bool open)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel;
	int afd;

	if (area_of(fs, n, &afd, &rel) < 0)
		return;
	h = call_init(fs, n, &c, op, afd, rel, false, self);
	c.error = error;
	c.open = open;
	hook_done(h, &c);
	free(rel);
}

void local_closed(struct fs *fs, struct node *n, bool self, int error, bool open)
{
	tell_closed(fs, n, LOCAL_WRITE, self, error, open);
}

void local_released(struct fs *fs, struct node *n, bool self)
{
	tell_closed(fs, n, LOCAL_RELEASE, self, 0, false);
}

int local_reopen(struct fs *fs, struct node *n, bool self)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel;
	int afd, r;

	r = area_of(fs, n, &afd, &rel);
	if (r < 0)
		return r;
	h = call_init(fs, n, &c, LOCAL_WRITE, afd, rel, false, self);
	r = hook_check(h, &c);
	free(rel);
	return r;
}

int local_xattr(struct fs *fs, struct node *n, const char *name, char **ret)
{
	const struct local_hooks *h;
	struct local_call c;
	char *rel;
	int afd, r;

	if (!slot_of(fs, n->key.area))
		return -ENODATA;
	r = area_of(fs, n, &afd, &rel);
	if (r < 0)
		return r == -ENOENT ? -ENODATA : r;
	h = call_init(fs, n, &c, LOCAL_WRITE, afd, rel, n->kind == NODE_AREA, false);
	if (!h->xattr) {
		free(rel);
		return -ENODATA;
	}
	r = h->xattr(h->ctx, &c, name, ret);
	free(rel);
	return r;
}
