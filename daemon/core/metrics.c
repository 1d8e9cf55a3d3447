/* metrics.c - lock-free counters and their Prometheus text (metrics.h).
 *
 * Each counter is a relaxed atomic add into a fixed array indexed by
 * its labels (endpoint class and status, FUSE operation and errno), so
 * counting costs a few nanoseconds and never waits. Rendering reads the
 * arrays without stopping the writers: a scrape may see one request
 * counted in requests_total and not yet in the histogram, which
 * Prometheus tolerates. Zero rows are left out, except that each
 * endpoint's histogram is always shown once it has a request. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define METRICS_STATUS_SLOTS 600 /* 0: no answer; 100..599: HTTP statuses */
#define METRICS_ERRNO_SLOTS 134  /* errno values up to EHWPOISON */

static const char *const endpoint_names[METRICS_EP_N] = {
	"storage_applications", "storage_instances", "storage_data", "app",
	"events", "authentication", "maskinporten", "other",
};

/* request latency buckets, seconds */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define METRICS_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static atomic_uint_fast64_t http_requests[METRICS_EP_N][METRICS_STATUS_SLOTS];
static atomic_uint_fast64_t http_received[METRICS_EP_N];
static atomic_uint_fast64_t http_sent[METRICS_EP_N];
static atomic_uint_fast64_t http_le[METRICS_EP_N][METRICS_BUCKETS]; /* not cumulative */
static atomic_uint_fast64_t http_count[METRICS_EP_N];
static atomic_uint_fast64_t http_sum_us[METRICS_EP_N];

static const char *const *fuse_names;
static size_t n_fuse_names;
/* [0] is "other"; op i is at i + 1 */
static atomic_uint_fast64_t fuse_ops[METRICS_FUSE_OPS + 1];
static atomic_uint_fast64_t fuse_errors[METRICS_FUSE_OPS + 1][METRICS_ERRNO_SLOTS];

static atomic_uint_fast64_t event_files;

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_http(enum metrics_endpoint ep, long status, uint64_t received, uint64_t sent,
		  double seconds)
{
	size_t b = 0;

	if ((unsigned)ep >= METRICS_EP_N)
		ep = METRICS_EP_OTHER;
	if (status < 100 || status >= METRICS_STATUS_SLOTS)
		status = 0;
	add(&http_requests[ep][status], 1);
	add(&http_received[ep], received);
	add(&http_sent[ep], sent);
	while (b < METRICS_BUCKETS && seconds > buckets[b])
		b++;
	if (b < METRICS_BUCKETS)
		add(&http_le[ep][b], 1);
	add(&http_count[ep], 1);
	add(&http_sum_us[ep], seconds > 0 ? (uint64_t)(seconds * 1e6) : 0);
}

void metrics_fuse_names(const char *const *names, size_t n)
{
	fuse_names = names;
	n_fuse_names = n < METRICS_FUSE_OPS ? n : METRICS_FUSE_OPS;
}

static size_t fuse_slot(int op)
{
	return op >= 0 && (size_t)op < n_fuse_names ? (size_t)op + 1 : 0;
}

void metrics_fuse_op(int op)
{
	add(&fuse_ops[fuse_slot(op)], 1);
}

void metrics_fuse_error(int op, int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return;
	add(&fuse_errors[fuse_slot(op)][err < METRICS_ERRNO_SLOTS ? err : 0], 1);
}

void metrics_event_files(uint64_t n)
{
	add(&event_files, n);
}

void metrics_printf(struct metrics_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		t->cap = t->cap ? t->cap * 2 + (size_t)n : 4096 + (size_t)n;
		t->p = xrealloc(t->p, t->cap);
	}
}

static const char *fuse_name(size_t slot)
{
	return slot == 0 ? "other" : fuse_names[slot - 1];
}

/* "ENOENT"; a number for one glibc has no name for */
static void errno_name(int err, char *buf, size_t size)
{
	const char *name = err ? strerrorname_np(err) : NULL;

	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "%d", err);
}

static void render_http(struct metrics_text *t)
{
	metrics_printf(t, "# HELP altinnfs_platform_requests_total Requests to the platform "
			  "(each attempt), by endpoint class and HTTP status (0: no answer).\n"
			  "# TYPE altinnfs_platform_requests_total counter\n");
	for (int ep = 0; ep < METRICS_EP_N; ep++)
		for (int s = 0; s < METRICS_STATUS_SLOTS; s++) {
			uint64_t v = get(&http_requests[ep][s]);

			if (v)
				metrics_printf(t, "altinnfs_platform_requests_total{endpoint=\"%s\","
						  "code=\"%d\"} %llu\n", endpoint_names[ep], s,
					       (unsigned long long)v);
		}
	metrics_printf(t, "# HELP altinnfs_platform_received_bytes_total Bytes received "
			  "from the platform (bodies), by endpoint class.\n"
			  "# TYPE altinnfs_platform_received_bytes_total counter\n");
	for (int ep = 0; ep < METRICS_EP_N; ep++)
		metrics_printf(t, "altinnfs_platform_received_bytes_total{endpoint=\"%s\"} %llu\n",
			       endpoint_names[ep], (unsigned long long)get(&http_received[ep]));
	metrics_printf(t, "# HELP altinnfs_platform_sent_bytes_total Bytes sent to the "
			  "platform (bodies), by endpoint class.\n"
			  "# TYPE altinnfs_platform_sent_bytes_total counter\n");
	for (int ep = 0; ep < METRICS_EP_N; ep++)
		metrics_printf(t, "altinnfs_platform_sent_bytes_total{endpoint=\"%s\"} %llu\n",
			       endpoint_names[ep], (unsigned long long)get(&http_sent[ep]));
	metrics_printf(t, "# HELP altinnfs_platform_request_duration_seconds How long one "
			  "attempt of a platform request took, by endpoint class.\n"
			  "# TYPE altinnfs_platform_request_duration_seconds histogram\n");
	for (int ep = 0; ep < METRICS_EP_N; ep++) {
		uint64_t count = get(&http_count[ep]), cum = 0;

		if (!count)
			continue;
		for (size_t b = 0; b < METRICS_BUCKETS; b++) {
			cum += get(&http_le[ep][b]);
			metrics_printf(t, "altinnfs_platform_request_duration_seconds_bucket"
					  "{endpoint=\"%s\",le=\"%g\"} %llu\n", endpoint_names[ep],
				       buckets[b], (unsigned long long)cum);
		}
		if (cum > count)
			count = cum; /* a writer between the two reads */
		metrics_printf(t, "altinnfs_platform_request_duration_seconds_bucket"
				  "{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
				  "altinnfs_platform_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
				  "altinnfs_platform_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
			       endpoint_names[ep], (unsigned long long)count, endpoint_names[ep],
			       (double)get(&http_sum_us[ep]) / 1e6, endpoint_names[ep],
			       (unsigned long long)count);
	}
}

static void render_fuse(struct metrics_text *t)
{
	char name[32];

	metrics_printf(t, "# HELP altinnfs_fuse_operations_total FUSE requests served, by "
			  "operation.\n# TYPE altinnfs_fuse_operations_total counter\n");
	for (size_t i = 0; i <= n_fuse_names; i++) {
		uint64_t v = get(&fuse_ops[i]);

		if (v)
			metrics_printf(t, "altinnfs_fuse_operations_total{op=\"%s\"} %llu\n",
				       fuse_name(i), (unsigned long long)v);
	}
	metrics_printf(t, "# HELP altinnfs_fuse_errors_total FUSE requests answered with an "
			  "error, by operation and errno.\n"
			  "# TYPE altinnfs_fuse_errors_total counter\n");
	for (size_t i = 0; i <= n_fuse_names; i++)
		for (int e = 0; e < METRICS_ERRNO_SLOTS; e++) {
			uint64_t v = get(&fuse_errors[i][e]);

			if (!v)
				continue;
			errno_name(e, name, sizeof(name));
			metrics_printf(t, "altinnfs_fuse_errors_total{op=\"%s\",errno=\"%s\"} %llu\n",
				       fuse_name(i), name, (unsigned long long)v);
		}
}

void metrics_render_counters(struct metrics_text *t)
{
	render_http(t);
	render_fuse(t);
	metrics_printf(t, "# HELP altinnfs_events_files_written_total Event files written "
			  "into the apps' events/ folders.\n"
			  "# TYPE altinnfs_events_files_written_total counter\n"
			  "altinnfs_events_files_written_total %llu\n",
		       (unsigned long long)get(&event_files));
}
