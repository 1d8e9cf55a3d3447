/* main.c - altinnfs: mount an Altinn 3 service owner's apps as files.
 *
 * Parses the command line and config file, checks everything that can be
 * checked before mounting (so a typo is one clear line, not a half
 * mounted filesystem), then mounts and serves until unmounted or sent
 * SIGINT/SIGTERM, after which it unmounts cleanly. The platform being
 * down is not a start-up error: the mount comes up and status.json says
 * what is wrong. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "altinn.h"
#include "config.h"
#include "ctl.h"
#include "credentials.h"
#include "doctor.h"
#include "events.h"
#include "exporter.h"
#include "inbox.h"
#include "instwrite.h"
#include "broker.h"
#include "corr.h"
#include "fs.h"
#include "log.h"
#include "names.h"
#include "outbox.h"
#include "pushbus.h"
#include "service.h"
#include "version.h"
#include "xalloc.h"

static const char usage_text[] =
	"usage: altinnfs [-f] [-d] [--config FILE] [-o key=value,...] [SOURCE] MOUNTPOINT\n"
	"\n"
	"Mounts Altinn 3 apps as a directory tree: instances and their data elements\n"
	"are folders and files (see README.txt at the top of the mount).\n"
	"\n"
	"options:\n"
	"  -f               stay in the foreground, logging to stderr\n"
	"  -d               debug logging (implies -f)\n"
	"  --config FILE    read settings from FILE: \"key = value\" lines, '#' comments\n"
	"  -o key=value,... set keys (overrides the config file); may be repeated;\n"
	"                   -o config=FILE is --config FILE (for fstab and mount -t)\n"
	"  SOURCE           what mount(8) passes first (fstab's first field): ignored\n"
	"  --check          check the config, secrets, token and each app's permissions\n"
	"                   against the platform without mounting; exit 0 if all pass\n"
	"  -h, --help       show this help\n"
	"  -V, --version    show the version\n"
	"\n"
	"keys, as -o key=value or \"key = value\" lines (docs/configuration.md explains each):\n";

static const char usage_example[] =
	"\n"
	"example:\n"
	"  altinnfs -o platform=https://platform.tt02.altinn.no \\\n"
	"           -o apps_url=https://{org}.apps.tt02.altinn.no \\\n"
	"           -o 'apps=ttd/soknad ttd/tilskudd',token_file=/etc/altinnfs/token \\\n"
	"           /mnt/altinn\n"
	"\n"
	"Unmount with: fusermount3 -u MOUNTPOINT (or send SIGTERM)\n";

/* Mount options that fstab lines carry and that change nothing here:
 * mount(8) and mount.fuse3 act on them (or the kernel's defaults hold),
 * and they reach us in the -o of "altinnfs SOURCE MOUNTPOINT -o ...". */
static bool ignorable_mount_option(const char *opt)
{
	static const char *const names[] = {
		"rw", "ro", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "atime",
		"noatime", "relatime", "norelatime", "strictatime", "nodiratime", "async",
		"sync", "_netdev", "defaults", "nofail", "auto", "noauto", "user", "nouser",
		"users", "owner", "group", NULL
	};

	for (size_t i = 0; names[i]; i++)
		if (strcmp(opt, names[i]) == 0)
			return true;
	/* x-systemd.*, x-gvfs-* and comment=: for other readers of fstab */
	return strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0;
}

/* The config=FILE of -o options (the last one wins), which mount -t and
 * fstab use since they cannot pass --config: malloc'd, or NULL. */
static char *config_option(char **opts, size_t n_opts)
{
	char *found = NULL;

	for (size_t i = 0; i < n_opts; i++) {
		char *copy = xstrdup(opts[i]), *save = NULL;

		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (strncmp(tok, "config=", 7) == 0) {
				free(found);
				found = xstrdup(tok + 7);
			}
		free(copy);
	}
	return found;
}

/* --check: configuration errors are the doctor's first FAIL line on
 * stdout (exit 1) instead of a usage error on stderr (exit 2). */
static bool checking;

static void config_error(const char *msg)
{
	if (checking)
		doctor_fail(stdout, "config", msg);
	else
		fprintf(stderr, "altinnfs: %s\n", msg);
}

static int apply_options(struct config *cfg, const char *opts)
{
	char *copy = xstrdup(opts), *save = NULL;
	int r = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		char *err = NULL;

		if (ignorable_mount_option(tok) || strncmp(tok, "config=", 7) == 0)
			continue; /* config=: read before the others (load_config) */
		if (eq)
			*eq = '\0';
		r = config_set(cfg, tok, eq ? eq + 1 : "", &err);
		if (r < 0) {
			config_error(err);
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
	const char *unit = getenv("STATE_DIRECTORY"); /* systemd's StateDirectory= */

	if (unit && *unit)
		return xstrndup(unit, strcspn(unit, ":"));
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

	/* mount.fuse3 -o drop_privileges mounts itself and hands us the
	 * FUSE descriptor as /dev/fd/N, which libfuse takes as it is */
	if (strncmp(path, "/dev/fd/", 8) == 0) {
		*ret_real = xstrdup(path);
		return 0;
	}
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
	const char *mountpoint; /* NULL only with --check */
	bool check;
};

/* 0 to go on, 1 to exit 0 (help/version), -1 to exit 2 (usage) */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	static const struct option long_opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check", no_argument, NULL, 'C' },
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
		case 'C':
			cl->check = checking = true;
			break;
		case 'o':
			cl->opts = xrealloc(cl->opts, (cl->n_opts + 1) * sizeof(*cl->opts));
			cl->opts[cl->n_opts++] = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			config_print_help(stdout);
			fputs(usage_example, stdout);
			return 1;
		case 'V':
			printf("altinnfs %s (FUSE %s)\n", ALTINNFS_VERSION, fs_fuse_version());
			return 1;
		default:
			fprintf(stderr, "altinnfs: see --help for usage\n");
			return -1;
		}
	}
	/* [SOURCE] MOUNTPOINT: mount.fuse3 runs "altinnfs SOURCE MOUNTPOINT -o ..." */
	if (cl->check && optind == argc)
		return 0; /* --check needs no mountpoint */
	if (optind == argc || argc - optind > 2) {
		fprintf(stderr, optind == argc ? "altinnfs: no mountpoint given (see --help)\n"
					       : "altinnfs: more than one mountpoint given\n");
		return -1;
	}
	cl->mountpoint = argv[argc - 1];
	return 0;
}

static int load_config(const struct cmdline *cl, struct config *cfg)
{
	char *err = NULL, *opt_file = config_option(cl->opts, cl->n_opts);
	const char *file = opt_file ? opt_file : cl->config_file;

	config_init(cfg);
	if (file && config_load_file(cfg, file, &err) < 0) {
		config_error(err);
		free(err);
		free(opt_file);
		return -1;
	}
	free(opt_file);
	for (size_t i = 0; i < cl->n_opts; i++)
		if (apply_options(cfg, cl->opts[i]) < 0)
			return -1;
	cfg->debug = cl->debug;
	credentials_resolve(cfg);
	if (config_check(cfg, &err) < 0) {
		config_error(err);
		free(err);
		return -1;
	}
	if (!cfg->state_dir)
		cfg->state_dir = default_state_dir();
	if (make_dirs(cfg->state_dir) < 0) {
		err = xasprintf("cannot create state_dir \"%s\": %s", cfg->state_dir,
				strerror(errno));
		config_error(err);
		free(err);
		return -1;
	}
	return 0;
}

/* The folder families, one line each: adding one is its folder under
 * daemon/ and a line here (family.h is the contract). fs/ starts them
 * in this order once the mount is up, stops them before the unmount and
 * frees them after it; README.txt shows their places in this order. */
static const family_new_fn families[] = {
	ctl_family,
	inbox_family,
	outbox_family,
	instwrite_family, /* after the outbox: its outcomes go to sent/, failed/ */
	events_family,
	broker_family,
	corr_family,
};

static void invalidate(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid)
{
	fs_invalidate(ctx, org, app, party, guid);
}

/* What main hands fs_serve's start and stop: the client and the service
 * manager's link. */
struct run_ctx {
	const struct config *cfg;
	struct altinn *a;
	struct fs *fs;
	struct service *svc;
	struct exporter *metrics; /* when metrics_listen is set */
};

/* One line for systemctl status: the outbox's queue, each app's events
 * cursor, whether the platform answers. */
static void status_line(void *ctx, char *buf, size_t size)
{
	struct run_ctx *rc = ctx;
	struct fs_status_snapshot s;
	struct alt_health h;
	size_t n = 0;

	fs_status_snapshot(rc->fs, &s);
	altinn_health(rc->a, &h);
	n += (size_t)snprintf(buf + n, size - n, "serving %zu app(s); platform %s", s.n_apps,
			      !h.checked ? "not asked yet" : h.reachable ? "answers" : "unreachable");
	if (s.have_outbox && n < size) {
		struct timespec now;
		long age = 0;

		clock_gettime(CLOCK_REALTIME, &now);
		if (s.outbox.pending && s.outbox.oldest_pending_at.tv_sec)
			age = (long)(now.tv_sec - s.outbox.oldest_pending_at.tv_sec);
		n += (size_t)snprintf(buf + n, size - n,
				      "; outbox %llu pending (oldest %ld s), %llu failed",
				      (unsigned long long)s.outbox.pending, age,
				      (unsigned long long)s.outbox.failed);
	}
	for (size_t i = 0; i < s.n_apps && n < size; i++)
		if (s.apps[i].event_cursor[0])
			n += (size_t)snprintf(buf + n, size - n, "; events %s at %s", s.apps[i].id,
					      s.apps[i].event_cursor);
	fs_status_snapshot_free(&s);
}

/* A scrape of /metrics: status.json's figures, no request made. */
static void metrics_collect(void *ctx, exporter_emit_fn emit, void *emit_ctx)
{
	struct run_ctx *rc = ctx;
	struct fs_status_snapshot s;
	struct metrics_figures f = { 0 };

	fs_status_snapshot(rc->fs, &s);
	altinn_health(rc->a, &f.health);
	f.apps = s.apps;
	f.n_apps = s.n_apps;
	f.outbox = s.have_outbox ? &s.outbox : NULL;
	emit(emit_ctx, &f);
	fs_status_snapshot_free(&s);
}

/* The mount is up: serve the metrics, tell the service manager. */
static int run_start(void *ctx)
{
	struct run_ctx *rc = ctx;
	int r;

	if (rc->cfg->metrics_listen) {
		r = exporter_start(rc->cfg->metrics_listen, metrics_collect, rc, &rc->metrics);
		if (r < 0)
			return r;
	}
	return service_ready(rc->svc);
}

/* Nobody serves the mount any more: end requests under way, before the
 * families are told to stop and fs_serve unmounts. */
static void run_stop(void *ctx)
{
	struct run_ctx *rc = ctx;

	service_stopping(rc->svc);
	altinn_stop(rc->a);
}

static int serve(struct config *cfg, const char *mountpoint, bool foreground)
{
	struct run_ctx rc = { 0 };
	struct pushbus *push;
	struct altinn *a = NULL;
	struct fs *fs;
	int r;

	r = altinn_new(cfg, &a);
	if (r < 0)
		return log_errno(r, "cannot set up the platform client");
	push = pushbus_new(); /* outlives the families (fs_free) */
	fs = fs_new(a, cfg, mountpoint);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family_deps deps = { cfg, a, mountpoint, invalidate, fs,
						  names_sanitize, push };
		struct fs_family f;

		r = families[i](&deps, &f);
		if (r < 0)
			break;
		fs_add_family(fs, &f);
	}
	rc = (struct run_ctx){ cfg, a, fs, NULL, NULL };
	if (r == 0)
		r = service_new(status_line, &rc, &rc.svc);
	if (r == 0)
		r = fs_serve(fs, mountpoint, &(struct fs_run){ foreground, run_start, run_stop, &rc });
	exporter_free(rc.metrics); /* before fs: a scrape reads its figures */
	service_free(rc.svc);
	fs_free(fs);
	altinn_free(a);
	pushbus_free(push);
	return r;
}

/* altinnfs --check: the doctor's lines on stdout; 0 when all pass. */
static int check(struct cmdline *cl)
{
	struct config cfg;
	int r;

	if (load_config(cl, &cfg) < 0) {
		free(cl->opts);
		config_free(&cfg);
		return 1;
	}
	free(cl->opts);
	/* the lines say what failed; the log only what --debug asks for */
	log_setup(cl->debug ? LOG_LVL_DEBUG : LOG_LVL_ERROR, false);
	r = altinn_global_init();
	if (r == 0)
		r = doctor_run(&cfg, cl->mountpoint, stdout);
	altinn_global_cleanup();
	config_free(&cfg);
	return r != 0;
}

int main(int argc, char **argv)
{
	struct cmdline cl = { 0 };
	struct config cfg;
	char *mountpoint = NULL;
	int r;

	/* Large buffers (a download's curl buffer, a read's reply, a spool
	 * chunk) are mapped and given back when freed. glibc otherwise raises
	 * this bound to the largest block freed so far, and then keeps freed
	 * MiBs in the arena of each of the many threads that ever held one:
	 * 32 readers at once left the daemon 30 MiB larger for good. */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	r = parse_cmdline(argc, argv, &cl);
	if (r != 0) {
		free(cl.opts);
		return r > 0 ? 0 : 2;
	}
	if (cl.check)
		return check(&cl);
	if (load_config(&cl, &cfg) < 0 || check_mountpoint(cl.mountpoint, &mountpoint) < 0) {
		free(cl.opts);
		config_free(&cfg);
		return 2;
	}
	free(cl.opts);
	log_setup(cl.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, !cl.foreground);
	/* before any thread: curl's global state and jansson's hash seed */
	r = altinn_global_init();
	if (r < 0) {
		log_errno(r, "cannot initialise libcurl");
		free(mountpoint);
		config_free(&cfg);
		return 1;
	}
	r = serve(&cfg, mountpoint, cl.foreground);
	altinn_global_cleanup();
	free(mountpoint);
	config_free(&cfg);
	return r < 0 ? 1 : 0;
}
