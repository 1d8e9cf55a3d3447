/* http.h - GET requests to the platform, with the rules every call shares.
 *
 * http.c holds curl (docs/design.md says who includes what). Every request gets the
 * same treatment: the bearer token from its credentials (and one refresh plus
 * one retry after a 401), Accept: application/json unless told otherwise,
 * one deadline of cfg->timeout seconds for all attempts of a request (bulk
 * transfers have none) and an end to any transfer in which nothing moved
 * for cfg->timeout, never a retry of one that timed out, at most two
 * retries with jittered backoff within the deadline for answers that may
 * succeed on a second try (5xx, 429, a dropped connection), and
 * connections reused across requests and threads. Each request's outcome
 * is recorded for status.json. Errors come back as -errno from one table,
 * http_errno(); no HTTP status or curl code leaves daemon/.
 *
 * Every function may be called from any thread at once. */
#ifndef ALTINNFS_HTTP_H
#define ALTINNFS_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "altinn.h"
#include "metrics.h"

struct config;
struct http;

/* An answer came but could not be used (it did not parse): status.json's
 * last_error says so while no request fails otherwise, until the same
 * kind of answer is usable again (what NULL), so that a platform that
 * answers nonsense does not look healthy. */
void http_note_problem(struct http *h, const char *what);

/* Where the bearer token comes from (auth.c, wired by api.c): http.c asks
 * for it and never knows its source. Tokens are malloc'd copies, freed
 * with secretfile_free(). */
struct http_credentials {
	void *ctx;
	/* 0 with the token to send (NULL: none) and its generation, or -errno */
	int (*token)(void *ctx, char **ret_token, uint64_t *ret_gen);
	/* the platform answered 401 to generation gen: 0 when another token
	 * is ready (retry once), -EACCES when not */
	int (*refresh)(void *ctx, uint64_t gen);
	/* the Ocp-Apim-Subscription-Key value, malloc'd, or NULL */
	char *(*subscription_key)(void *ctx);
};

/* Once in main before any thread starts, and once at exit. */
int http_global_init(void);
void http_global_cleanup(void);

/* cfg and cred must outlive the client. cred NULL: requests send only
 * the bearer they name (http_request.bearer). */
int http_new(const struct config *cfg, const struct http_credentials *cred, struct http **ret);
void http_free(struct http *h); /* NULL is fine */

/* The platform's answer, before its body. */
struct http_head {
	long status;
	bool has_range;       /* a "Content-Range: bytes first-last/total" came */
	uint64_t range_first;
	uint64_t range_last;
	uint64_t range_total; /* UINT64_MAX when the server wrote "*" */
};

/* A GET whose body goes to callbacks. */
struct http_request {
	const char *url;
	const char *accept; /* NULL: application/json */
	/* Range: bytes=range_first-range_last; range_last UINT64_MAX leaves it
	 * open ("bytes=first-"). */
	bool has_range;
	uint64_t range_first;
	uint64_t range_last;
	/* Large transfers get a larger receive buffer, and no deadline: they
	 * end only when nothing moves for cfg->timeout (as uploads from a
	 * file do). */
	bool bulk;
	size_t bulk_buffer; /* bulk: curl's receive buffer; 0: the default (512 KiB) */
	/* Called once per attempt with a 2xx head, before any body byte (also
	 * for an empty body). Nonzero aborts the request with that -errno. */
	int (*on_head)(void *ctx, const struct http_head *head);
	/* Body bytes of the 2xx answer. Return 0 for more, 1 to stop early
	 * with success, or a -errno to abort with that error. May block. */
	int (*on_data)(void *ctx, const char *p, size_t n);
	void *ctx;
	/* May an attempt whose body had begun be retried? Then on_head is
	 * called again and must forget the partial body. */
	bool restartable;
	/* Carried out at most once, like a POST: a request that is not
	 * idempotent (PUT process/next) is never retried here. */
	bool once;
	/* Seconds the request may take, and go without a byte moving, in
	 * place of cfg->timeout (0: cfg->timeout). A write the platform works
	 * on before it answers (an upload it passes on to Storage,
	 * process/next making PDFs) needs longer than a read. */
	long stall_timeout;
	/* Another thread sets it to abort the transfer within about a second;
	 * an aborted request returns -ECANCELED. NULL: never. */
	const atomic_bool *cancel;

	/* ---- sending (all optional; the default is a plain GET) */
	const char *method;       /* "POST", "PUT", "PATCH", "HEAD", ...; NULL: GET */
	const char *content_type; /* of the body */
	const void *body;         /* a body in memory ... */
	size_t body_len;
	bool has_body_fd;         /* ... or body_len bytes of body_fd from body_offset */
	int body_fd;
	uint64_t body_offset;
	/* Shown each piece of the body as it is sent, with its offset (a
	 * resent body starts again at 0): hashing a large upload on the way
	 * costs no second read. May be NULL. */
	void (*on_send)(void *ctx, uint64_t off, const char *p, size_t n);
	void *send_ctx;
	const char *const *headers; /* more "Name: value" lines, NULL-terminated */
	/* Sent as the bearer token instead of the platform's ("" sends none,
	 * and a 401 then triggers no token reload). */
	const char *bearer;
	/* One more answer header to keep, in result->captured ("Upload-Offset"). */
	const char *capture;
	/* Filled when not NULL: status, Location, and the body (the whole
	 * 2xx body when on_data is NULL, capped at ALT_MAX_JSON_BODY, or
	 * the start of an error body). Free with http_result_clear. */
	struct http_result *result;
};

/* A POST is never retried here: it may have been carried out. The caller
 * decides, knowing what a second attempt would mean. */
struct http_result {
	long status;   /* 0 when no answer came */
	char *body;    /* NUL-terminated, or NULL */
	size_t body_len;
	char *content_type;
	char *location;
	char *captured;      /* the request's capture header, or NULL */
	long retry_after_ms; /* the answer's Retry-After; -1 when none */
};
void http_result_clear(struct http_result *res);
int http_request(struct http *h, const struct http_request *req);

/* Ends every request under way within about a second (-ECANCELED) and
 * fails new ones at once: for shutdown, so no thread waits out a timeout. */
void http_stop(struct http *h);

/* GET url into a NUL-terminated malloc'd body of at most max bytes
 * (-EFBIG beyond). */
int http_get(struct http *h, const char *url, size_t max, char **ret_body, size_t *ret_len);

/* Percent-encodes s for a query value or a path segment (malloc'd). */
char *http_escape(const char *s);

/* Fills the platform fields of ret (checked, reachable, last_error,
 * checked_at, requests); leaves the token fields alone. */
void http_health(struct http *h, struct alt_health *ret);

/* The one table from a platform answer to an errno (see altinn.h):
 * curl_code is a CURLcode (0 when the transfer worked), status the HTTP
 * status (0 when none came). Returns 0 for success or a -errno. */
int http_errno(int curl_code, long status);

/* endpoints.c: the metrics' endpoint class of a platform URL */
enum metrics_endpoint http_endpoint_class(const char *url);

#endif
