/* service.c - READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 to systemd.
 *
 * libsystemd's sd_notify does the sending (NOTIFY_SOCKET may be a path
 * or an abstract socket, and it passes our credentials); this file only
 * decides when. One thread sends the status line when it changes and
 * pings the watchdog: it wakes every SERVICE_STATUS_MS, or at half the
 * watchdog's interval when that is shorter, as sd_watchdog_enabled(3)
 * advises. The ping comes after the status callback has returned, so a
 * daemon stuck on its own locks stops pinging and systemd restarts it. */
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

/* How often the status line is gathered when no watchdog asks for more. */
#define SERVICE_STATUS_MS 5000
#define SERVICE_STATUS_MAX 512

struct service {
	service_status_fn status;
	void *ctx;
	bool notify;           /* NOTIFY_SOCKET is set */
	uint64_t watchdog_us;  /* 0: no watchdog */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;         /* protected by lock */
	char last[SERVICE_STATUS_MAX]; /* the last STATUS= sent; the thread's */
};

int service_new(service_status_fn status, void *ctx, struct service **ret)
{
	struct service *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t attr;
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t us = 0;

	s->status = status;
	s->ctx = ctx;
	s->notify = sock && *sock;
	if (s->notify && sd_watchdog_enabled(0, &us) > 0)
		s->watchdog_us = us;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	*ret = s;
	return 0;
}

static void send_state(struct service *s, const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		log_debug("cannot tell the service manager \"%.20s\": %s", state, strerror(-r));
}

/* Sends STATUS= when the line changed since the last one sent. */
static void send_status(struct service *s)
{
	char line[SERVICE_STATUS_MAX], msg[SERVICE_STATUS_MAX + 16];

	line[0] = '\0';
	s->status(s->ctx, line, sizeof(line));
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, s->last) == 0)
		return;
	memcpy(s->last, line, sizeof(line));
	snprintf(msg, sizeof(msg), "STATUS=%s", line);
	send_state(s, msg);
}

static int64_t period_ms(const struct service *s)
{
	int64_t ms = SERVICE_STATUS_MS;

	if (s->watchdog_us && (int64_t)(s->watchdog_us / 2000) < ms)
		ms = (int64_t)(s->watchdog_us / 2000);
	return ms > 0 ? ms : 1;
}

static void *service_thread(void *arg)
{
	struct service *s = arg;
	int64_t ms = period_ms(s);

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->lock);
		send_status(s);
		if (s->watchdog_us)
			send_state(s, "WATCHDOG=1");
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int service_ready(struct service *s)
{
	int r;

	if (!s->notify)
		return 0;
	send_state(s, "READY=1");
	send_status(s);
	r = -pthread_create(&s->thread, NULL, service_thread, s);
	if (r < 0)
		return log_errno(r, "cannot start the service manager's status thread");
	s->started = true;
	return 0;
}

void service_stopping(struct service *s)
{
	if (!s || !s->notify)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	send_state(s, "STOPPING=1\nSTATUS=unmounting");
}

void service_free(struct service *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
