/* exporter.h - the Prometheus endpoint: GET /metrics on metrics_listen.
 *
 * Serves core's counters (metrics.h) and, asked for at each scrape, the
 * figures the daemon keeps anyway for status.json: the outbox queue, the
 * events, the content cache, the token, the platform's health. Every
 * metric is listed in docs/operations.md. */
#ifndef ALTINNFS_EXPORTER_H
#define ALTINNFS_EXPORTER_H

#include <stddef.h>

#include "altinn.h"

struct exporter;

/* What a scrape shows besides the counters. */
struct metrics_figures {
	struct alt_health health;
	const struct alt_status_app *apps;
	size_t n_apps;
	const struct alt_status_outbox *outbox; /* NULL: no outbox */
};

/* The daemon's figures: collect fills a struct metrics_figures and calls
 * emit(emit_ctx, &figures) before it frees what the struct points to. */
typedef void (*exporter_emit_fn)(void *emit_ctx, const struct metrics_figures *f);
typedef void (*exporter_collect_fn)(void *ctx, exporter_emit_fn emit, void *emit_ctx);

/* Listens on "address:port" ("127.0.0.1:9464", "[::1]:9464", "*:9464");
 * 0 with *ret set, or -errno (logged). */
int exporter_start(const char *listen, exporter_collect_fn collect, void *ctx,
		   struct exporter **ret);
/* Stops listening and waits for a scrape under way; NULL is fine. */
void exporter_free(struct exporter *e);

#endif
