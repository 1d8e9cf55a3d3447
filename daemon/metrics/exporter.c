/* exporter.c - GET /metrics in the Prometheus text format (exporter.h).
 *
 * libmicrohttpd answers on its own thread, one scrape at a time: a
 * scrape renders core's counters (lock-free reads) and then the figures
 * the daemon's collect function hands over (status.json's numbers, no
 * request to the platform), so scraping costs the daemon nothing it
 * would not do for a read of status.json. Names follow Prometheus's
 * conventions: altinnfs_ prefix, _total for counters, base units
 * (_seconds, _bytes); ages are gauges in seconds so alert rules need no
 * time() arithmetic. */
#include "exporter.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "version.h"
#include "xalloc.h"

/* a scraper or two, and a person with curl */
#define EXPORTER_MAX_CONNECTIONS 8
#define EXPORTER_IDLE_TIMEOUT 30 /* seconds */

struct exporter {
	struct MHD_Daemon *d;
	exporter_collect_fn collect;
	void *ctx;
	time_t started;
};

static double age_s(const struct timespec *ts, const struct timespec *now)
{
	return (double)(now->tv_sec - ts->tv_sec) + (double)(now->tv_nsec - ts->tv_nsec) / 1e9;
}

static void gauge(struct metrics_text *t, const char *name, const char *help, const char *type)
{
	metrics_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void emit_platform(struct metrics_text *t, const struct alt_health *h,
			  const struct timespec *now)
{
	if (h->checked) {
		gauge(t, "altinnfs_platform_up", "1 when the last platform request got an HTTP "
		      "answer, 0 when it did not.", "gauge");
		metrics_printf(t, "altinnfs_platform_up %d\n", h->reachable ? 1 : 0);
	}
	gauge(t, "altinnfs_token_info", "The token's source (token_file, maskinporten).",
	      "gauge");
	metrics_printf(t, "altinnfs_token_info{source=\"%s\"} 1\n", h->token_source);
	if (h->token_expires_at.tv_sec) {
		gauge(t, "altinnfs_token_expiry_seconds", "Seconds until the current token "
		      "expires (negative: expired).", "gauge");
		metrics_printf(t, "altinnfs_token_expiry_seconds %.0f\n",
			       -age_s(&h->token_expires_at, now));
	}
}

static void emit_cache(struct metrics_text *t, const struct alt_cache_status *c)
{
	gauge(t, "altinnfs_cache_enabled", "1 when the content cache is on.", "gauge");
	metrics_printf(t, "altinnfs_cache_enabled %d\n", c->on ? 1 : 0);
	if (!c->on)
		return;
	gauge(t, "altinnfs_cache_size_bytes", "Bytes the content cache holds.", "gauge");
	metrics_printf(t, "altinnfs_cache_size_bytes %llu\n", (unsigned long long)c->used);
	gauge(t, "altinnfs_cache_max_bytes", "The content cache's bound (cache_max).", "gauge");
	metrics_printf(t, "altinnfs_cache_max_bytes %llu\n", (unsigned long long)c->max);
	gauge(t, "altinnfs_cache_entries", "Data elements in the content cache.", "gauge");
	metrics_printf(t, "altinnfs_cache_entries %llu\n", (unsigned long long)c->entries);
	gauge(t, "altinnfs_cache_hits_total", "Reads served from the content cache.", "counter");
	metrics_printf(t, "altinnfs_cache_hits_total %llu\n", (unsigned long long)c->hits);
	gauge(t, "altinnfs_cache_misses_total", "Reads the content cache could not serve.",
	      "counter");
	metrics_printf(t, "altinnfs_cache_misses_total %llu\n", (unsigned long long)c->misses);
	gauge(t, "altinnfs_cache_fetched_bytes_total", "Bytes fetched into the content cache.",
	      "counter");
	metrics_printf(t, "altinnfs_cache_fetched_bytes_total %llu\n",
		       (unsigned long long)c->bytes_fetched);
}

static void emit_outbox(struct metrics_text *t, const struct alt_status_outbox *ob,
			const struct timespec *now)
{
	gauge(t, "altinnfs_outbox_pending", "Submissions in the outbox not yet delivered.",
	      "gauge");
	metrics_printf(t, "altinnfs_outbox_pending %llu\n", (unsigned long long)ob->pending);
	gauge(t, "altinnfs_outbox_oldest_pending_age_seconds", "Age of the oldest submission "
	      "not yet delivered (0: none).", "gauge");
	metrics_printf(t, "altinnfs_outbox_oldest_pending_age_seconds %.0f\n",
		       ob->pending && ob->oldest_pending_at.tv_sec ?
			       age_s(&ob->oldest_pending_at, now) : 0.0);
	gauge(t, "altinnfs_outbox_retries", "Attempts made so far for the submissions still "
	      "pending.", "gauge");
	metrics_printf(t, "altinnfs_outbox_retries %llu\n", (unsigned long long)ob->retries);
	gauge(t, "altinnfs_outbox_failed", "Submissions in failed/ (refused for good or given "
	      "up).", "gauge");
	metrics_printf(t, "altinnfs_outbox_failed %llu\n", (unsigned long long)ob->failed);
}

static void emit_apps(struct metrics_text *t, const struct metrics_figures *f,
		      const struct timespec *now)
{
	gauge(t, "altinnfs_instances_listed", "Instances in an app's last whole listing.",
	      "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		metrics_printf(t, "altinnfs_instances_listed{app=\"%s\"} %llu\n", f->apps[i].id,
			       (unsigned long long)f->apps[i].instances_listed);
	gauge(t, "altinnfs_events_last_poll_age_seconds", "Seconds since an app's events were "
	      "last polled successfully (the lag of its cursor).", "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		if (f->apps[i].last_poll_at.tv_sec)
			metrics_printf(t, "altinnfs_events_last_poll_age_seconds{app=\"%s\"} %.0f\n",
				       f->apps[i].id, age_s(&f->apps[i].last_poll_at, now));
	gauge(t, "altinnfs_events_files", "Event files in an app's events/ folder.", "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		metrics_printf(t, "altinnfs_events_files{app=\"%s\"} %llu\n", f->apps[i].id,
			       (unsigned long long)f->apps[i].pending_event_files);
}

/* The instance index of each app that has one (docs/index.md). */
static void emit_index(struct metrics_text *t, const struct metrics_figures *f,
		       const struct timespec *now)
{
	bool any = false;

	for (size_t i = 0; i < f->n_apps; i++)
		any = any || f->apps[i].index.on;
	if (!any)
		return;
	gauge(t, "altinnfs_index_instances", "Instances the app's index holds.", "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		if (f->apps[i].index.on)
			metrics_printf(t, "altinnfs_index_instances{app=\"%s\"} %llu\n", f->apps[i].id,
				       (unsigned long long)f->apps[i].index.instances);
	gauge(t, "altinnfs_index_complete", "1 when the app's index has walked every "
	      "instance, 0 while it walks or after its walk failed.", "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		if (f->apps[i].index.on)
			metrics_printf(t, "altinnfs_index_complete{app=\"%s\"} %d\n", f->apps[i].id,
				       f->apps[i].index.partial ? 0 : 1);
	gauge(t, "altinnfs_index_requests_total", "Query pages the app's index asked for "
	      "(its walk and its refreshes).", "counter");
	for (size_t i = 0; i < f->n_apps; i++)
		if (f->apps[i].index.on)
			metrics_printf(t, "altinnfs_index_requests_total{app=\"%s\"} %llu\n",
				       f->apps[i].id,
				       (unsigned long long)(f->apps[i].index.pages +
							    f->apps[i].index.refresh_pages));
	gauge(t, "altinnfs_index_refresh_age_seconds", "Seconds since the app's index was "
	      "last brought up to date.", "gauge");
	for (size_t i = 0; i < f->n_apps; i++)
		if (f->apps[i].index.on && f->apps[i].index.refreshed_at.tv_sec)
			metrics_printf(t, "altinnfs_index_refresh_age_seconds{app=\"%s\"} %.0f\n",
				       f->apps[i].id, age_s(&f->apps[i].index.refreshed_at, now));
}

static void emit(void *emit_ctx, const struct metrics_figures *f)
{
	struct metrics_text *t = emit_ctx;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	emit_platform(t, &f->health, &now);
	emit_cache(t, &f->health.cache);
	if (f->outbox)
		emit_outbox(t, f->outbox, &now);
	emit_apps(t, f, &now);
	emit_index(t, f, &now);
}

static char *render(struct exporter *e, size_t *ret_len)
{
	struct metrics_text t = { 0 };

	gauge(&t, "altinnfs_build_info", "The daemon's version.", "gauge");
	metrics_printf(&t, "altinnfs_build_info{version=\"%s\"} 1\n", ALTINNFS_VERSION);
	gauge(&t, "altinnfs_start_time_seconds", "When the daemon started (Unix time).", "gauge");
	metrics_printf(&t, "altinnfs_start_time_seconds %lld\n", (long long)e->started);
	metrics_render_counters(&t);
	e->collect(e->ctx, emit, &t);
	*ret_len = t.len;
	return t.p;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status, char *body,
			      size_t len, const char *type)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct exporter *e = cls;
	size_t len;
	char *body;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, xstrdup("only GET\n"), 9,
			      "text/plain; charset=utf-8");
	if (strcmp(url, "/metrics") != 0)
		return answer(conn, MHD_HTTP_NOT_FOUND, xstrdup("see /metrics\n"), 13,
			      "text/plain; charset=utf-8");
	body = render(e, &len);
	return answer(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("metrics: %s", buf);
}

/* "127.0.0.1:9464", "[::1]:9464", "*:9464" into an address */
static int resolve(const char *listen, struct addrinfo **ret)
{
	const struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
					.ai_socktype = SOCK_STREAM };
	const char *colon = strrchr(listen, ':');
	char *host;
	int rc;

	if (!colon || !colon[1])
		return -EINVAL;
	if (listen[0] == '[' && colon > listen && colon[-1] == ']')
		host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = xstrndup(listen, (size_t)(colon - listen));
	rc = getaddrinfo(*host && strcmp(host, "*") != 0 ? host : NULL, colon + 1, &hints, ret);
	free(host);
	return rc == 0 ? 0 : -EINVAL;
}

int exporter_start(const char *listen, exporter_collect_fn collect, void *ctx,
		   struct exporter **ret)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct addrinfo *ai = NULL;
	struct exporter *e;
	int r;

	r = resolve(listen, &ai);
	if (r < 0)
		return log_errno(r, "metrics_listen \"%s\": want address:port", listen);
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	e = xcalloc(1, sizeof(*e));
	e->collect = collect;
	e->ctx = ctx;
	e->started = time(NULL);
	e->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, e,
				MHD_OPTION_EXTERNAL_LOGGER, on_log, e,
				MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)EXPORTER_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)EXPORTER_IDLE_TIMEOUT,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!e->d) {
		free(e);
		return log_errno(-EADDRNOTAVAIL, "metrics: cannot listen on \"%s\"", listen);
	}
	log_info("metrics served at \"http://%s/metrics\"", listen);
	*ret = e;
	return 0;
}

void exporter_free(struct exporter *e)
{
	if (!e)
		return;
	MHD_stop_daemon(e->d);
	free(e);
}
