/* service.h - telling the service manager (systemd) how the daemon is.
 *
 * Under a unit with Type=notify, systemd gives us NOTIFY_SOCKET and,
 * with WatchdogSec=, WATCHDOG_USEC: we send READY=1 once the mount is
 * up, a STATUS= line while serving (what systemctl status shows), and
 * STOPPING=1 when told to stop; with the watchdog, WATCHDOG=1 at half
 * its interval from a thread that first gathers the status line, so a
 * daemon that cannot answer for its own state is restarted. Without
 * NOTIFY_SOCKET every call does nothing. */
#ifndef ALTINNFS_SERVICE_H
#define ALTINNFS_SERVICE_H

#include <stddef.h>

struct service;

/* Writes the one-line status (no newline) into buf; called from the
 * service's thread, never from a FUSE request. */
typedef void (*service_status_fn)(void *ctx, char *buf, size_t size);

/* 0 with *ret set (also when no service manager listens), or -errno. */
int service_new(service_status_fn status, void *ctx, struct service **ret);
/* The mount is up: READY=1 and the first STATUS=, then the status
 * thread. 0 or -errno (a thread that could not start). */
int service_ready(struct service *s);
/* Told to stop: STOPPING=1; the status thread ends. */
void service_stopping(struct service *s);
/* Joins the thread; NULL is fine. */
void service_free(struct service *s);

#endif
