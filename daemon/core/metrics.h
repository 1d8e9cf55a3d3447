/* metrics.h - the daemon's counters, for Prometheus (docs/operations.md).
 *
 * Counters only go up and are kept in fixed arrays of atomics, so the
 * hot paths (every platform request, every FUSE operation) count without
 * a lock or an allocation. Gauges (queues, cache, token) are not kept
 * here: the metrics endpoint asks for them when it is scraped. Nothing
 * here knows HTTP, FUSE or the platform: the callers name the endpoint
 * class and the operation. */
#ifndef ALTINNFS_METRICS_H
#define ALTINNFS_METRICS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Which part of the platform a request went to (label "endpoint"). */
enum metrics_endpoint {
	METRICS_EP_APPLICATIONS, /* Storage: application metadata */
	METRICS_EP_INSTANCES,    /* Storage: instance queries and documents */
	METRICS_EP_DATA,         /* Storage: data element bytes */
	METRICS_EP_APP,          /* an app's own API (submissions, process) */
	METRICS_EP_EVENTS,       /* the Events API */
	METRICS_EP_AUTH,         /* the token exchange */
	METRICS_EP_MASKINPORTEN, /* the Maskinporten token endpoint */
	METRICS_EP_OTHER,
	METRICS_EP_N
};

/* One attempt of a platform request: its HTTP status (0: no answer),
 * bytes both ways and how long it took. */
void metrics_http(enum metrics_endpoint ep, long status, uint64_t received, uint64_t sent,
		  double seconds);

/* FUSE operations: op is an index into the names given once with
 * metrics_fuse_names (at most METRICS_FUSE_OPS); -1 counts as "other". */
#define METRICS_FUSE_OPS 48
void metrics_fuse_names(const char *const *names, size_t n);
void metrics_fuse_op(int op);
/* A reply with a non-zero errno */
void metrics_fuse_error(int op, int err);

/* n event files written into an app's events/ folder */
void metrics_event_files(uint64_t n);

/* Text in the Prometheus exposition format, grown as needed. */
struct metrics_text {
	char *p;
	size_t len, cap;
};
void metrics_printf(struct metrics_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends every counter above, with its HELP and TYPE lines. */
void metrics_render_counters(struct metrics_text *t);

#endif
