/* main.c - altinnfs: mount an Altinn 3 service owner's apps as files.
 *
 * Parses the command line and config file, checks everything that can be
 * checked before mounting (so a typo is one clear line, not a half
 * mounted filesystem), then mounts and serves until unmounted or sent
 * SIGINT/SIGTERM, after which it unmounts cleanly. The platform being
 * down is not a start-up error: the mount comes up and status.json says
 * what is wrong. */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "altinn.h"
#include "config.h"
#include "events.h"
#include "inbox.h"
#include "instwrite.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "xalloc.h"

static const char usage_text[] =
	"usage: altinnfs [-f] [-d] [--config FILE] [-o key=value,...] MOUNTPOINT\n"
	"\n"
	"Mounts Altinn 3 apps as a directory tree: instances and their data elements\n"
	"are folders and files (see README.txt at the top of the mount).\n"
	"\n"
	"options:\n"
	"  -f               stay in the foreground, logging to stderr\n"
	"  -d               debug logging (implies -f)\n"
	"  --config FILE    read settings from FILE: \"key = value\" lines, '#' comments\n"
	"  -o key=value,... set keys (overrides the config file); may be repeated\n"
	"  -h, --help       show this help\n"
	"  -V, --version    show the version\n"
	"\n"
	"keys (docs/configuration.md explains each):\n"
	"  platform         base URL of the platform (Storage, Events, Authentication),\n"
	"                   e.g. https://platform.tt02.altinn.no             (required)\n"
	"  apps_url         base URL of the app API; {org} is replaced, e.g.\n"
	"                   https://{org}.apps.tt02.altinn.no (default: platform)\n"
	"  apps             space-separated org/app list to mount            (required)\n"
	"  token_file       file with an Altinn bearer token, re-read when it changes\n"
	"  state_dir        where the spool, cursors and receipts live\n"
	"                   (default /var/lib/altinnfs as root, else\n"
	"                   $XDG_STATE_HOME/altinnfs or ~/.local/state/altinnfs)\n"
	"  cache_ttl        seconds a listing or attribute is trusted (default 10)\n"
	"  cache_dir        where data element bytes are cached (default state_dir/cache)\n"
	"  cache_max        bound on that cache in bytes, K/M/G/T suffixes (default 1G;\n"
	"                   0: no cache; see docs/cache.md)\n"
	"  timeout          seconds a request may take, retries included, before it\n"
	"                   fails (a large transfer: may stall) (default 30)\n"
	"  page_size        instances per query page (default 100, at most 1000)\n"
	"  max_listed       instances one listing may hold (default 200000)\n"
	"  poll_interval    seconds between event polls (default 10)\n"
	"  events_start     now (default), all, or an ISO-8601 time\n"
	"  webhook_listen, webhook_url, maskinporten_client_id, maskinporten_key_file,\n"
	"  maskinporten_kid, maskinporten_scope, maskinporten_audience,\n"
	"  maskinporten_token_url, subscription_key_file\n"
	"                   events push and Maskinporten (see docs/configuration.md)\n"
	"  outbox, outbox_uploaders, outbox_process_next, outbox_data_type,\n"
	"  outbox_retry_max, outbox_give_up\n"
	"                   submissions from outbox/ (see docs/outbox.md)\n"
	"  allow_other      let other users see the mount (needs user_allow_other)\n"
	"\n"
	"example:\n"
	"  altinnfs -o platform=https://platform.tt02.altinn.no \\\n"
	"           -o apps_url=https://{org}.apps.tt02.altinn.no \\\n"
	"           -o 'apps=ttd/soknad ttd/tilskudd',token_file=/etc/altinnfs/token \\\n"
	"           /mnt/altinn\n"
	"\n"
	"Unmount with: fusermount3 -u MOUNTPOINT (or send SIGTERM)\n";

/* Mount options that fstab lines carry and that change nothing here. */
static bool ignorable_mount_option(const char *opt)
{
	static const char *const names[] = { "ro", "nosuid", "nodev", "noatime", "noexec",
					     "_netdev", "defaults", "nofail", "auto", "noauto",
					     "user", "users", NULL };

	for (size_t i = 0; names[i]; i++)
		if (strcmp(opt, names[i]) == 0)
			return true;
	return false;
}

static int apply_options(struct config *cfg, const char *opts)
{
	char *copy = xstrdup(opts), *save = NULL;
	int r = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		char *err = NULL;

		if (!eq && ignorable_mount_option(tok))
			continue;
		if (eq)
			*eq = '\0';
		r = config_set(cfg, tok, eq ? eq + 1 : "", &err);
		if (r < 0) {
			fprintf(stderr, "altinnfs: %s\n", err);
			free(err);
			break;
		}
	}
	free(copy);
	return r;
}

static char *default_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		return xstrdup("/var/lib/altinnfs");
	if (xdg && *xdg)
		return xasprintf("%s/altinnfs", xdg);
	return xasprintf("%s/.local/state/altinnfs", home ? home : "/tmp");
}

/* mkdir -p with mode 0700 for the last part */
static int make_dirs(const char *path)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
		if (r < 0)
			break;
	}
	if (r == 0 && mkdir(p, 0700) < 0 && errno != EEXIST)
		r = -errno;
	free(p);
	return r;
}

static int check_mountpoint(const char *path, char **ret_real)
{
	struct stat st;
	char *real;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "altinnfs: mountpoint \"%s\": %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "altinnfs: mountpoint \"%s\" is not a directory\n", path);
		return -ENOTDIR;
	}
	real = realpath(path, NULL);
	if (!real) {
		fprintf(stderr, "altinnfs: mountpoint \"%s\": %s\n", path, strerror(errno));
		return -errno;
	}
	*ret_real = real;
	return 0;
}

struct cmdline {
	bool foreground;
	bool debug;
	const char *config_file;
	char **opts;
	size_t n_opts;
	const char *mountpoint;
};

/* 0 to go on, 1 to exit 0 (help/version), -1 to exit 2 (usage) */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	static const struct option long_opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "fdo:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cl->foreground = true;
			break;
		case 'd':
			cl->debug = cl->foreground = true;
			break;
		case 'c':
			cl->config_file = optarg;
			break;
		case 'o':
			cl->opts = xrealloc(cl->opts, (cl->n_opts + 1) * sizeof(*cl->opts));
			cl->opts[cl->n_opts++] = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case 'V':
			printf("altinnfs %s (FUSE %d.%d)\n", ALTINNFS_VERSION, FUSE_MAJOR_VERSION,
			       FUSE_MINOR_VERSION);
			return 1;
		default:
			fprintf(stderr, "altinnfs: see --help for usage\n");
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, optind == argc ? "altinnfs: no mountpoint given (see --help)\n"
					       : "altinnfs: more than one mountpoint given\n");
		return -1;
	}
	cl->mountpoint = argv[optind];
	return 0;
}

static int load_config(const struct cmdline *cl, struct config *cfg)
{
	char *err = NULL;

	config_init(cfg);
	if (cl->config_file && config_load_file(cfg, cl->config_file, &err) < 0) {
		fprintf(stderr, "altinnfs: %s\n", err);
		free(err);
		return -1;
	}
	for (size_t i = 0; i < cl->n_opts; i++)
		if (apply_options(cfg, cl->opts[i]) < 0)
			return -1;
	cfg->debug = cl->debug;
	if (config_check(cfg, &err) < 0) {
		fprintf(stderr, "altinnfs: %s\n", err);
		free(err);
		return -1;
	}
	if (!cfg->state_dir)
		cfg->state_dir = default_state_dir();
	if (make_dirs(cfg->state_dir) < 0) {
		fprintf(stderr, "altinnfs: cannot create state_dir \"%s\": %s\n", cfg->state_dir,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* The modules that own parts of the tree, wired to the filesystem. */
struct modules {
	struct fs *fs;
	struct events *events;
	struct outbox *outbox;
	struct inbox *inbox;
	struct instwrite *instwrite; /* NULL when the outbox is off: its
				      * outcomes go to sent/ and failed/ */
};

static void on_instance_changed(void *ctx, const char *org, const char *app, const char *party,
				const char *guid)
{
	struct modules *m = ctx;

	fs_invalidate(m->fs, org, app, party, guid);
}

static void status_app(void *ctx, const char *org, const char *app, struct alt_status_app *st)
{
	struct modules *m = ctx;

	events_status(m->events, org, app, st);
}

static void status_outbox(void *ctx, struct alt_status_outbox *st)
{
	struct modules *m = ctx;

	outbox_status(m->outbox, st);
}

static int modules_new(struct config *cfg, struct altinn *a, const char *mountpoint,
		       struct modules *m)
{
	const struct events_deps ed = { cfg, a, mountpoint, on_instance_changed, m };
	const struct outbox_deps od = { cfg, a, mountpoint };
	const struct fs_status_hooks sh = { m, status_app, status_outbox };
	struct local_hooks hooks;
	int r;

	r = events_new(&ed, &m->events);
	if (r < 0)
		return log_errno(r, "cannot open the events state in \"%s\"", cfg->state_dir);
	r = outbox_new(&od, &m->outbox);
	if (r < 0)
		return log_errno(r, "cannot open the outbox spool in \"%s\"", cfg->state_dir);
	r = inbox_new(cfg, a, &m->inbox);
	if (r < 0)
		return log_errno(r, "cannot open the inbox state in \"%s\"", cfg->state_dir);
	fs_set_inbox(m->fs, &(struct fs_inbox_hooks){ m->inbox, inbox_hidden, inbox_confirm });
	if (events_hooks(m->events, &hooks))
		fs_set_area(m->fs, AREA_EVENTS, &hooks);
	for (int area = AREA_OUTBOX; area <= AREA_FAILED; area++)
		if (outbox_hooks(m->outbox, (enum local_area)area, &hooks))
			fs_set_area(m->fs, (enum local_area)area, &hooks);
	if (outbox_hooks(m->outbox, AREA_SENT, &hooks)) {
		struct alt_dw_hooks dw;

		r = instwrite_new(cfg, a, mountpoint, &m->instwrite);
		if (r < 0)
			return log_errno(r, "cannot open the instance writes journal in \"%s\"",
					 cfg->state_dir);
		instwrite_set_invalidate(m->instwrite, on_instance_changed, m);
		instwrite_hooks(m->instwrite, &dw);
		fs_set_data_writes(m->fs, &dw);
	}
	fs_set_status_hooks(m->fs, &sh);
	return 0;
}

static int serve(struct config *cfg, const char *mountpoint, bool foreground)
{
	char *fuse_argv[] = { "altinnfs", "-o", NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
	struct fuse_loop_config *loop;
	struct fuse_session *se = NULL;
	struct modules m = { 0 };
	struct altinn *a = NULL;
	int r;

	fuse_argv[2] = cfg->allow_other ? "fsname=altinnfs,subtype=altinnfs,allow_other"
					: "fsname=altinnfs,subtype=altinnfs";
	r = altinn_new(cfg, &a);
	if (r < 0)
		return log_errno(r, "cannot set up the platform client");
	m.fs = fs_new(a, cfg, mountpoint);
	r = modules_new(cfg, a, mountpoint, &m);
	if (r < 0)
		goto out_free;
	se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), m.fs);
	if (!se) {
		r = -EINVAL;
		goto out_free;
	}
	fs_set_session(m.fs, se);
	if (fuse_set_signal_handlers(se) < 0) {
		r = -EIO;
		goto out_destroy;
	}
	if (fuse_session_mount(se, mountpoint) < 0) {
		fprintf(stderr, "altinnfs: cannot mount at \"%s\" (is /dev/fuse there, and fusermount3?)\n",
			mountpoint);
		r = -EIO;
		goto out_signals;
	}
	fuse_daemonize(foreground);
	/* threads only now: fuse_daemonize forks */
	r = fs_start(m.fs);
	if (r == 0)
		r = events_start(m.events);
	if (r == 0)
		r = outbox_start(m.outbox);
	if (r == 0)
		r = inbox_start(m.inbox);
	if (r == 0 && m.instwrite)
		r = instwrite_start(m.instwrite);
	if (r < 0)
		goto out_unmount;
	log_info("serving %zu app(s) from \"%s\" at \"%s\"", cfg->n_apps, cfg->platform, mountpoint);
	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(loop, 32);
	r = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	if (fuse_session_exited(se))
		r = 0; /* unmounted or told to stop */
out_unmount:
	log_info("unmounting \"%s\"", mountpoint);
	/* Nobody serves the mount any more: end requests under way and tell
	 * the modules to stop, unmount (their writes through the mount now
	 * fail instead of waiting), then wait for their threads. */
	altinn_stop(a);
	events_stop(m.events);
	outbox_stop(m.outbox);
	inbox_stop(m.inbox);
	instwrite_stop(m.instwrite);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out_free:
	events_free(m.events);
	outbox_free(m.outbox);
	inbox_free(m.inbox);
	instwrite_free(m.instwrite);
	fs_free(m.fs);
	altinn_free(a);
	fuse_opt_free_args(&args);
	return r;
}

int main(int argc, char **argv)
{
	struct cmdline cl = { 0 };
	struct config cfg;
	char *mountpoint = NULL;
	int r;

	r = parse_cmdline(argc, argv, &cl);
	if (r != 0) {
		free(cl.opts);
		return r > 0 ? 0 : 2;
	}
	if (load_config(&cl, &cfg) < 0 || check_mountpoint(cl.mountpoint, &mountpoint) < 0) {
		free(cl.opts);
		config_free(&cfg);
		return 2;
	}
	free(cl.opts);
	log_setup(cl.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, !cl.foreground);
	/* before any thread: curl's global state and jansson's hash seed */
	json_global_init();
	r = http_global_init();
	if (r < 0) {
		log_errno(r, "cannot initialise libcurl");
		free(mountpoint);
		config_free(&cfg);
		return 1;
	}
	r = serve(&cfg, mountpoint, cl.foreground);
	http_global_cleanup();
	free(mountpoint);
	config_free(&cfg);
	return r < 0 ? 1 : 0;
}
