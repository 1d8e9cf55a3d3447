/* mount.c - the mount's life: the FUSE session, from mount to unmount.
 *
 * Everything main needs of libfuse is here, so that nothing above fs/
 * includes it: the session over fs_ops(), the signal handlers (SIGINT,
 * SIGTERM and SIGHUP end the loop; once it has ended they are ignored),
 * the mount, fuse_daemonize, the
 * multi-threaded loop and the unmount. The caller's start runs after
 * fuse_daemonize (threads do not survive its fork) and its stop runs
 * once nobody serves the mount any more but before the unmount, so that
 * background threads writing through the mount fail instead of waiting
 * for a kernel that waits for us. */
#include "fs.h"
#include "fs_i.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "caps.h"
#include "config.h"
#include "log.h"

#define FS_STR2(x) #x
#define FS_STR(x) FS_STR2(x)

const char *fs_fuse_version(void)
{
	return FS_STR(FUSE_MAJOR_VERSION) "." FS_STR(FUSE_MINOR_VERSION);
}

/* libfuse's handler ends the session, and its loop notices only when a
 * signal interrupts the main thread's wait. The kernel hands a signal to
 * any thread that does not block it, and the uploaders, pollers and
 * curl's threads do not: so a SIGINT that lands on one of them is passed
 * on to the main thread, or the mount would stay up until the next
 * request (a test saw 10 s go by). */
static struct fuse_session *signal_session;
static pthread_t signal_main;

static void on_stop_signal(int sig)
{
	int saved = errno;

	fuse_session_exit(signal_session);
	if (!pthread_equal(pthread_self(), signal_main))
		pthread_kill(signal_main, sig);
	errno = saved;
}

static void catch_stop_signals(struct fuse_session *se)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_stop_signal };

	signal_session = se;
	signal_main = pthread_self();
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the main thread's wait must end */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Once the loop has ended the process is on its way out: a second stop
 * signal (an impatient operator, a service manager's repeated stop) must
 * not kill it half way through the unmount and the families' stop, with
 * their journals open, so from here on they are ignored. */
static void ignore_stop_signals(void)
{
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

static int loop(struct fuse_session *se)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int r;

	fuse_loop_cfg_set_max_threads(cfg, ALT_FUSE_THREADS);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	if (fuse_session_exited(se))
		r = 0; /* unmounted or told to stop */
	return r;
}

int fs_serve(struct fs *fs, const char *mountpoint, const struct fs_run *run)
{
	char *fuse_argv[] = { "altinnfs", "-o", NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
	struct fuse_session *se;
	int r;

	fuse_argv[2] = fs->cfg->allow_other ? "fsname=altinnfs,subtype=altinnfs,allow_other"
					    : "fsname=altinnfs,subtype=altinnfs";
	se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), fs);
	if (!se) {
		r = -EINVAL;
		goto out_free_args;
	}
	fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) < 0) { /* and SIGPIPE ignored */
		r = -EIO;
		goto out_destroy;
	}
	catch_stop_signals(se);
	if (fuse_session_mount(se, mountpoint) < 0) {
		fprintf(stderr, "altinnfs: cannot mount at \"%s\" (is /dev/fuse there, and fusermount3?)\n",
			mountpoint);
		r = -EIO;
		goto out_signals;
	}
	fuse_daemonize(run->foreground);
	/* threads only now: fuse_daemonize forks */
	r = fs_start(fs);
	if (r == 0 && run->start)
		r = run->start(run->ctx);
	if (r == 0)
		r = fs_families_start(fs);
	if (r < 0)
		goto out_unmount;
	log_info("serving %zu app(s) from \"%s\" at \"%s\"", fs->cfg->n_apps, fs->cfg->platform,
		 mountpoint);
	r = loop(se);
out_unmount:
	ignore_stop_signals();
	log_info("unmounting \"%s\"", mountpoint);
	if (run->stop)
		run->stop(run->ctx);
	fs_families_stop(fs);
	fuse_session_unmount(se);
out_signals:
	ignore_stop_signals();
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out_free_args:
	fuse_opt_free_args(&args);
	return r;
}
