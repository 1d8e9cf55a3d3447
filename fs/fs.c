/* fs.c - the filesystem's state: built, given its families, started and
 * freed, plus what the families may ask of it from their own threads
 * (dropping cached listings, here and in the kernel). */
#include "fs.h"
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
#include "caps.h"
#include "config.h"
#include "dwrite.h"
#include "dircache.h"
#include "gate.h"
#include "local.h"
#include "layout.h"
#include "log.h"
#include "tree.h"
#include "view.h"
#include "xalloc.h"


struct fs *fs_new(struct altinn *a, const struct config *cfg, const char *mountpoint)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));

	fs->a = a;
	fs->cfg = cfg;
	fs->view = view_new(a, cfg);
	fs->layouts = layout_cache_new();
	fs->nodes = node_table_new();
	pthread_mutex_init(&fs->handles_lock, NULL);
	{
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->rename_lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	fs->gate = gate_new(ALT_PLATFORM_OPS, ALT_PLATFORM_WAITERS, cfg->timeout);
	fs->mountpoint = xstrdup(mountpoint);
	clock_gettime(CLOCK_REALTIME, &fs->started);
	fs->uid = getuid();
	fs->gid = getgid();
	return fs;
}

/* Asks the platform for each app's metadata once at start, off the FUSE
 * threads: status.json then tells at once whether the platform answers,
 * and the first `ls` finds the metadata cached. */
static void *warm_up(void *arg)
{
	struct fs *fs = arg;

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

void fs_add_family(struct fs *fs, const struct fs_family *f)
{
	if (!f->ctx)
		return;
	fs->families = xrealloc(fs->families, (fs->n_families + 1) * sizeof(*fs->families));
	fs->families[fs->n_families++] = *f;
	for (int a = 0; a < FS_FAMILY_MAX_AREAS && f->areas[a].name; a++)
		if (f->areas[a].hooks.check || f->areas[a].hooks.done)
			local_add_area(fs, fs->n_families - 1, a, &f->areas[a], f->root != NULL);
	for (size_t i = 0; f->root && f->scopes && f->scopes[i]; i++) {
		fs->scopes = xrealloc(fs->scopes, (fs->n_scopes + 1) * sizeof(*fs->scopes));
		fs->scopes[fs->n_scopes++] = (struct fs_scope){ f->root, f->scopes[i],
								fs->n_families - 1, NULL };
	}
	if (f->inbox.confirm) {
		fs->inbox_hooks = f->inbox;
		fs->inbox_enabled = true;
	}
	if (f->ctl.command) {
		fs->ctl_hooks = f->ctl;
		fs->ctl_enabled = true;
	}
	if (f->data_writes.begin) {
		fs->dw_hooks = f->data_writes;
		fs->dw_enabled = true;
	}
}

int fs_families_start(struct fs *fs)
{
	for (size_t i = 0; i < fs->n_families; i++) {
		struct fs_family *f = &fs->families[i];
		int r = f->start ? f->start(f->ctx) : 0;

		if (r < 0)
			return r;
	}
	return 0;
}

void fs_families_stop(struct fs *fs)
{
	for (size_t i = 0; i < fs->n_families; i++)
		if (fs->families[i].stop)
			fs->families[i].stop(fs->families[i].ctx);
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
			view_invalidate(va, party, guid);
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

int fs_start(struct fs *fs)
{
	int r = local_open_dirs(fs);

	if (r < 0)
		return r;
	for (size_t i = 0; i < view_n_apps(fs->view); i++)
		view_app_start(view_app_at(fs->view, i)); /* threads only now: see mount.c */
	if (pthread_create(&fs->warm_thread, NULL, warm_up, fs) == 0)
		fs->warm_started = true;
	return 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	/* the families first: their threads may still ask us */
	for (size_t i = 0; i < fs->n_families; i++)
		if (fs->families[i].free)
			fs->families[i].free(fs->families[i].ctx);
	free(fs->families);
	free(fs->areas);
	if (fs->warm_started)
		pthread_join(fs->warm_thread, NULL);
	/* files and folders still open at unmount: the kernel need not send
	 * their releases, and no request runs any more */
	while (fs->handles)
		handle_free(fs->handles);
	pthread_mutex_destroy(&fs->handles_lock);
	pthread_rwlock_destroy(&fs->rename_lock);
	gate_free(fs->gate);
	local_close_dirs(fs);
	free(fs->scopes); /* after the folders they hold are closed */
	layout_cache_free(fs->layouts);
	view_free(fs->view);
	node_table_free(fs->nodes);
	free(fs->mountpoint);
	free(fs);
}
