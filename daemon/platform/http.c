/* http.c - every request the daemon makes, made the same careful way.
 *
 * curl lives here (docs/design.md, "Who includes what"). A request borrows an easy handle from
 * a small pool and gives it back, so one handle is used by one thread at a
 * time and keeps its open connection for the next request, whichever
 * thread makes it; DNS answers and TLS sessions are shared between all
 * handles through a share object with a lock per kind of data.
 *
 * No request can hang. A request has one deadline, cfg->timeout after it
 * began, for all its attempts and backoff together: a trickled body or an
 * error body that never ends is cut there. Only bulk transfers (a stream
 * window, an upload) may take longer, as long as bytes keep moving: any
 * transfer with no byte in or out for cfg->timeout ends at once (curl's
 * own low-speed check averages over a window and fired up to twice as
 * late). A request that timed out is never tried again. Signals are off
 * (CURLOPT_NOSIGNAL) so threads are safe. Only failures that may pass are
 * retried - 5xx, 429 and dropped connections, at most twice, honouring a
 * short Retry-After, within the deadline. A refused connection fails at
 * once: the platform is down and the user should hear so now. A 401 gets
 * one token refresh and one more try, never a loop.
 *
 * Redirects are not followed and only http(s) is spoken, so a link from
 * the platform can never carry the token somewhere else. The token goes
 * into one header list that is wiped after the request; curl's verbose
 * output, which would print it, is never enabled. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "caps.h"
#include "growbuf.h"
#include "log.h"
#include "metrics.h"
#include "secretfile.h"
#include "version.h"
#include "xalloc.h"

/* Idle handles (each with its open connection) kept for reuse; more than
 * the FUSE worker threads plus streams that may run at once is waste. */
#define HTTP_POOL_MAX 32
#define HTTP_MAX_RETRIES 2
#define HTTP_BACKOFF_MS 200
/* A Retry-After longer than this is not waited for: a FUSE caller is
 * blocked meanwhile, and the outer layers retry later anyway. */
#define HTTP_RETRY_AFTER_MAX_MS 5000
#define HTTP_BULK_BUFFER (512 * 1024)

struct http {
	const struct config *cfg;
	const struct http_credentials *cred; /* NULL: no token of our own */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[HTTP_POOL_MAX]; /* protected by pool_lock */
	size_t n_pool;             /* protected by pool_lock */

	pthread_mutex_t health_lock;
	struct alt_health health; /* protected by health_lock */
	char unusable[256];       /* protected by health_lock: http_note_problem */
	atomic_bool stopping;     /* set once at shutdown: every request ends */
};

static long http_timeout_s(const struct http *h)
{
	return h->cfg->timeout > 0 ? h->cfg->timeout : 30;
}

/* What one attempt saw. */
struct attempt {
	const struct http *h;
	const struct http_request *req;
	struct http_head head;
	char reason[64];
	bool head_done;     /* headers of the final answer are complete */
	bool body_begun;    /* on_data has been called */
	bool stopped;       /* on_data asked to stop early */
	bool stalled;       /* nothing moved for cfg->timeout: we ended it */
	bool err_cut;       /* an error body past its cap: we ended it */
	long budget_ms;     /* the attempt must end within this; 0: no limit */
	curl_off_t moved;   /* bytes in and out so far ... */
	struct timespec moved_at; /* ... and when that last changed */
	int cb_err;         /* a -errno from a callback */
	long retry_after_ms; /* -1: none */
	char *err_body;     /* the start of a non-2xx body, for the log */
	size_t err_len;
	struct growbuf ok;  /* a 2xx body, when the request has no on_data */
	char *location;     /* Location header */
	char *content_type; /* Content-Type header */
	char *captured;     /* the header the request named in capture */
	uint64_t upload_pos; /* next body byte to send */
	CURLcode cc;
	long os_errno;
};

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

/* ---- the errno table */

int http_errno(int curl_code, long status)
{
	switch ((CURLcode)curl_code) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	default: /* refused, reset, unresolvable, TLS: the platform is unusable */
		return -EIO;
	}
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 409:
	case 412:
		return -EBUSY;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE; /* a read past the end; the reader turns it into EOF */
	default: /* 5xx, 429 and anything we do not expect */
		return -EIO;
	}
}

/* ---- handles */

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *ctx)
{
	struct http *h = ctx;
	pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *ctx)
{
	struct http *h = ctx;
	pthread_mutex_unlock(&h->share_locks[data]);
}

static CURL *pool_get(struct http *h)
{
	CURL *easy = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool)
		easy = h->pool[--h->n_pool];
	pthread_mutex_unlock(&h->pool_lock);
	if (!easy)
		easy = curl_easy_init();
	if (!easy)
		abort(); /* curl_easy_init fails only without memory */
	return easy;
}

static void pool_put(struct http *h, CURL *easy)
{
	curl_easy_reset(easy);
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_pool < HTTP_POOL_MAX) {
		h->pool[h->n_pool++] = easy;
		easy = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (easy)
		curl_easy_cleanup(easy);
}

int http_new(const struct config *cfg, const struct http_credentials *cred, struct http **ret)
{
	struct http *h = xcalloc(1, sizeof(*h));

	h->cfg = cfg;
	h->cred = cred;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_mutex_init(&h->health_lock, NULL);
	h->share = curl_share_init();
	if (!h->share ||
	    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		http_free(h);
		return log_errno(-EIO, "cannot set up the http client");
	}
	*ret = h;
	return 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_mutex_destroy(&h->health_lock);
	free(h);
}

/* ---- callbacks */

/* The value of header `name` in line (NUL-terminated, CRLF cut), or NULL. */
static const char *header_value(char *line, const char *name)
{
	size_t k = strlen(name);
	char *v;

	if (strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	v = line + k + 1;
	v += strspn(v, " \t");
	v[strcspn(v, "\r\n")] = '\0';
	return v;
}

/* "HTTP/1.1 503 Service Unavailable": a new answer begins (after a 1xx,
 * the final one), so what was parsed before is forgotten. */
static void parse_status_line(struct attempt *at, const char *line)
{
	const char *sp = strchr(line, ' ');
	char *end;
	size_t i;

	memset(&at->head, 0, sizeof(at->head));
	at->reason[0] = '\0';
	at->retry_after_ms = -1;
	if (!sp)
		return;
	at->head.status = strtol(sp + 1, &end, 10);
	end += strspn(end, " ");
	for (i = 0; end[i] && end[i] != '\r' && end[i] != '\n' && i < sizeof(at->reason) - 1; i++)
		at->reason[i] = (end[i] >= 0x20 && end[i] < 0x7f) ? end[i] : '?';
	at->reason[i] = '\0';
}

/* "bytes 0-99/1000", or "bytes 0-99/" and a star */
static void parse_content_range(struct attempt *at, const char *v)
{
	unsigned long long first, last, total;
	char star;

	if (sscanf(v, "bytes %llu-%llu/%llu", &first, &last, &total) == 3) {
		at->head.range_total = total;
	} else if (sscanf(v, "bytes %llu-%llu/%c", &first, &last, &star) == 3 && star == '*') {
		at->head.range_total = UINT64_MAX;
	} else {
		return;
	}
	at->head.has_range = true;
	at->head.range_first = first;
	at->head.range_last = last;
}

static void parse_retry_after(struct attempt *at, const char *v)
{
	char *end;
	long s = strtol(v, &end, 10);
	time_t when;

	if (end != v && *end == '\0') {
		at->retry_after_ms = s < 0 ? 0 : s > 3600 ? 3600000 : s * 1000;
		return;
	}
	when = curl_getdate(v, NULL);
	if (when > 0)
		at->retry_after_ms = when > time(NULL) ? (long)(when - time(NULL)) * 1000 : 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ctx)
{
	struct attempt *at = ctx;
	size_t n = size * nitems;
	char line[512]; /* curl's line is not NUL-terminated; longer lines are not ours */
	const char *v;

	snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), data);
	if (strncmp(line, "HTTP/", 5) == 0) {
		parse_status_line(at, line);
	} else if (line[0] == '\r' || line[0] == '\n') {
		if (at->head.status < 200) /* 1xx: the real answer follows */
			return n;
		at->head_done = true;
		if (at->head.status < 300 && at->req->on_head) {
			int r = at->req->on_head(at->req->ctx, &at->head);
			if (r) {
				at->cb_err = r < 0 ? r : -EIO;
				return 0;
			}
		}
	} else if ((v = header_value(line, "Content-Range"))) {
		parse_content_range(at, v);
	} else if ((v = header_value(line, "Retry-After"))) {
		parse_retry_after(at, v);
	} else if ((v = header_value(line, "Location"))) {
		free(at->location);
		at->location = xstrndup(v, strcspn(v, "\r\n"));
	} else if ((v = header_value(line, "Content-Type"))) {
		free(at->content_type);
		at->content_type = xstrndup(v, strcspn(v, "\r\n"));
	} else if (at->req->capture && (v = header_value(line, at->req->capture))) {
		free(at->captured);
		at->captured = xstrdup(v);
	}
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct attempt *at = ctx;
	size_t n = size * nmemb;
	int r;

	if (at->head.status < 200 || at->head.status >= 300) {
		size_t room = ALT_MAX_ERROR_BODY - at->err_len;
		if (!at->err_body)
			at->err_body = xmalloc(ALT_MAX_ERROR_BODY + 1);
		if (n < room)
			room = n;
		memcpy(at->err_body + at->err_len, p, room);
		at->err_len += room;
		if (room == n)
			return n; /* read it all, so the connection stays usable */
		at->err_cut = true; /* a body that may never end: stop here */
		return 0;
	}
	at->body_begun = true;
	if (!at->req->on_data) {
		at->ok.max = ALT_MAX_JSON_BODY;
		r = growbuf_append(&at->ok, p, n);
		if (r < 0) {
			at->cb_err = r;
			return 0;
		}
		return n;
	}
	r = at->req->on_data(at->req->ctx, p, n);
	if (r == 0)
		return n;
	if (r > 0)
		at->stopped = true;
	else
		at->cb_err = r;
	return 0; /* curl aborts the transfer */
}

static long elapsed_ms(const struct timespec *since);

/* How long a request may take, and go without a byte moving: the
 * request's own stall_timeout (App API writes, which the platform works
 * on before it answers), else cfg->timeout. */
static long patience_ms(const struct http *h, const struct http_request *req)
{
	return (req->stall_timeout > 0 ? req->stall_timeout : http_timeout_s(h)) * 1000L;
}

/* Called at least once a second: ends a transfer that was stopped or
 * cancelled, or in which no byte moved either way for its patience. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct attempt *at = ctx;

	if (atomic_load(&at->h->stopping) || (at->req->cancel && atomic_load(at->req->cancel)))
		return 1;
	if (dlnow + ulnow != at->moved) {
		at->moved = dlnow + ulnow;
		clock_gettime(CLOCK_MONOTONIC, &at->moved_at);
	} else if (elapsed_ms(&at->moved_at) >= patience_ms(at->h, at->req)) {
		at->stalled = true;
		at->cb_err = -ETIMEDOUT;
		return 1;
	}
	return 0;
}

/* ---- request bodies */

static size_t on_read(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct attempt *at = ctx;
	const struct http_request *req = at->req;
	size_t want = size * nitems;
	uint64_t left = req->body_len > at->upload_pos ? req->body_len - at->upload_pos : 0;
	ssize_t got;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (!req->has_body_fd) {
		memcpy(buf, (const char *)req->body + at->upload_pos, want);
		got = (ssize_t)want;
	} else {
		got = pread(req->body_fd, buf, want, (off_t)(req->body_offset + at->upload_pos));
		if (got <= 0) {
			at->cb_err = got < 0 ? -errno : -EIO; /* the file shrank under us */
			return CURL_READFUNC_ABORT;
		}
	}
	if (req->on_send)
		req->on_send(req->send_ctx, at->upload_pos, buf, (size_t)got);
	at->upload_pos += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *ctx, curl_off_t offset, int origin)
{
	struct attempt *at = ctx;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > at->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	at->upload_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void setup_method(CURL *easy, struct attempt *at)
{
	const struct http_request *req = at->req;
	const char *m = req->method ? req->method : "GET";
	bool has_body = req->body || req->has_body_fd;

	if (strcmp(m, "GET") == 0 && !has_body) {
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (strcmp(m, "HEAD") == 0) { /* an answer without a body */
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
		return;
	}
	if (strcmp(m, "PUT") == 0) {
		curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	} else {
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(has_body ? req->body_len : 0));
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m);
	}
	if (!has_body && strcmp(m, "PUT") != 0 && strcmp(m, "POST") != 0) {
		/* DELETE and friends without a body: no Content-Length: 0 */
		curl_easy_setopt(easy, CURLOPT_POST, 0L);
		curl_easy_setopt(easy, CURLOPT_NOBODY, 0L);
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m);
		return;
	}
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(easy, CURLOPT_READDATA, at);
	curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(easy, CURLOPT_SEEKDATA, at);
}

/* ---- one attempt */

static struct curl_slist *build_headers(struct http *h, const struct http_request *req,
					const char *token)
{
	struct curl_slist *list = NULL;
	char buf[128];
	char *line;

	snprintf(buf, sizeof(buf), "Accept: %s", req->accept ? req->accept : "application/json");
	list = curl_slist_append(list, buf);
	if (token) {
		line = xasprintf("Authorization: Bearer %s", token);
		list = curl_slist_append(list, line);
		secretfile_free(line);
	}
	line = h->cred ? h->cred->subscription_key(h->cred->ctx) : NULL;
	if (line) {
		char *hdr = xasprintf("Ocp-Apim-Subscription-Key: %s", line);
		list = curl_slist_append(list, hdr);
		secretfile_free(hdr);
		secretfile_free(line);
	}
	if (req->content_type) {
		line = xasprintf("Content-Type: %s", req->content_type);
		list = curl_slist_append(list, line);
		free(line);
	}
	if (req->method && strcmp(req->method, "GET") != 0)
		list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
	for (size_t i = 0; req->headers && req->headers[i]; i++)
		list = curl_slist_append(list, req->headers[i]);
	if (req->has_range) {
		if (req->range_last == UINT64_MAX)
			snprintf(buf, sizeof(buf), "Range: bytes=%llu-",
				 (unsigned long long)req->range_first);
		else
			snprintf(buf, sizeof(buf), "Range: bytes=%llu-%llu",
				 (unsigned long long)req->range_first,
				 (unsigned long long)req->range_last);
		list = curl_slist_append(list, buf);
	}
	if (!list)
		abort(); /* curl_slist_append fails only without memory */
	return list;
}

/* Wipes the header list's copy of the token before freeing it. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static void setup_handle(struct http *h, CURL *easy, struct attempt *at,
			 struct curl_slist *headers)
{
	long timeout_ms = http_timeout_s(h) * 1000L;

	if (at->budget_ms > 0 && at->budget_ms < timeout_ms)
		timeout_ms = at->budget_ms;
	curl_easy_setopt(easy, CURLOPT_URL, at->req->url);
	setup_method(easy, at);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SHARE, h->share);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	if (at->budget_ms > 0)
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, at->budget_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "altinnfs/" ALTINNFS_VERSION);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, at);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, at);
	curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(easy, CURLOPT_XFERINFODATA, at);
	if (at->req->bulk) {
		curl_easy_setopt(easy, CURLOPT_BUFFERSIZE,
				 (long)(at->req->bulk_buffer ? at->req->bulk_buffer : HTTP_BULK_BUFFER));
		curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, (long)HTTP_BULK_BUFFER);
	}
	/* curl silently sends a request again when a reused connection
	 * turns out dead before any answer: harmless for a GET, a second
	 * submission for a POST the server carried out before it hung up.
	 * A fresh connection is never retried that way. */
	if (at->req->once || (at->req->method && strcmp(at->req->method, "POST") == 0))
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
}

/* One attempt for the metrics: its status, bytes and time. */
static void count_attempt(CURL *easy, const struct attempt *at, const struct timespec *began)
{
	curl_off_t down = 0, up = 0;
	struct timespec now;

	curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &up);
	clock_gettime(CLOCK_MONOTONIC, &now);
	metrics_http(http_endpoint_class(at->req->url), at->head.status,
		     down > 0 ? (uint64_t)down : 0, up > 0 ? (uint64_t)up : 0,
		     (double)(now.tv_sec - began->tv_sec) +
			     (double)(now.tv_nsec - began->tv_nsec) / 1e9);
}

/* Performs one attempt; 0 or -errno, with what happened in *at. */
static int attempt_once(struct http *h, struct attempt *at, const char *token)
{
	struct curl_slist *headers = build_headers(h, at->req, token);
	CURL *easy = pool_get(h);
	struct timespec began;
	int r;

	setup_handle(h, easy, at, headers);
	clock_gettime(CLOCK_MONOTONIC, &at->moved_at);
	began = at->moved_at;
	at->cc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &at->os_errno);
	count_attempt(easy, at, &began);
	pool_put(h, easy);
	free_headers(headers);

	if (at->cb_err)
		return at->cb_err;
	if (at->stopped)
		return 0;
	/* a cut error body: the status says what went wrong */
	r = http_errno(at->err_cut ? CURLE_OK : at->cc, at->head.status);
	if (r == 0 && !at->head_done)
		r = -EIO; /* "OK" without a complete answer: never trust it */
	return r;
}

/* ---- health */

/* "/storage/api/v1/instances" from a URL: the part worth showing. */
static void url_path(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://");

	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		p = "/";
	snprintf(buf, size, "%.*s", (int)strcspn(p, "?#"), p);
}

static void url_host_port(const char *url, char *buf, size_t size)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		snprintf(buf, size, "%s:%s", host, port);
	else
		snprintf(buf, size, "the platform");
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* Answers that are the platform working as it should, not trouble. */
static bool answer_is_normal(long status)
{
	return (status >= 200 && status < 400) || status == 404 || status == 409 ||
	       status == 410 || status == 412 || status == 416;
}

static void describe(const struct http *h, const struct attempt *at, int r, char *buf,
		     size_t size)
{
	const char *method = at->req->method ? at->req->method : "GET";
	char path[160], where[160];

	url_path(at->req->url, path, sizeof(path));
	if (at->cc == CURLE_COULDNT_CONNECT) {
		url_host_port(at->req->url, where, sizeof(where));
		snprintf(buf, size, "connect to %s: %s", where,
			 at->os_errno ? strerror((int)at->os_errno) : "cannot connect");
	} else if (at->cc == CURLE_COULDNT_RESOLVE_HOST) {
		url_host_port(at->req->url, where, sizeof(where));
		snprintf(buf, size, "resolve %s: host not found", where);
	} else if (at->stalled) {
		snprintf(buf, size, "%s %s: no progress within %ld s", method, path,
			 http_timeout_s(h));
	} else if (at->cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(buf, size, "%s %s: no whole answer within %ld s", method, path,
			 http_timeout_s(h));
	} else if (at->cc != CURLE_OK && at->cc != CURLE_WRITE_ERROR) {
		snprintf(buf, size, "%s %s: %s", method, path, curl_easy_strerror(at->cc));
	} else if (at->head.status && (at->head.status < 200 || at->head.status >= 300)) {
		/* the status says more than the errno it became (a 3xx too) */
		snprintf(buf, size, "%s %s: %ld%s%s", method, path, at->head.status,
			 at->reason[0] ? " " : "", at->reason);
	} else {
		snprintf(buf, size, "%s %s: %s", method, path, strerror(-r));
	}
}

void http_note_problem(struct http *h, const char *what)
{
	pthread_mutex_lock(&h->health_lock);
	snprintf(h->unusable, sizeof(h->unusable), "%s", what ? what : "");
	pthread_mutex_unlock(&h->health_lock);
}

/* Every attempt counts; the last one decides reachable and last_error. */
static void record(struct http *h, const struct attempt *at, int r)
{
	bool ok = r == 0 || (r < 0 && at->head.status &&
						answer_is_normal(at->head.status) && !at->cb_err);
	char msg[sizeof(h->health.last_error)] = "";

	if (!ok)
		describe(h, at, r, msg, sizeof(msg));
	pthread_mutex_lock(&h->health_lock);
	h->health.requests++;
	if (r != -ECANCELED) { /* we stopped it: says nothing about the platform */
		h->health.checked = true;
		clock_gettime(CLOCK_REALTIME, &h->health.checked_at);
		h->health.reachable = at->head.status != 0;
		memcpy(h->health.last_error, msg, sizeof(msg));
	}
	pthread_mutex_unlock(&h->health_lock);
}

void http_health(struct http *h, struct alt_health *ret)
{
	pthread_mutex_lock(&h->health_lock);
	ret->checked = h->health.checked;
	ret->reachable = h->health.reachable;
	memcpy(ret->last_error, h->health.last_error, sizeof(ret->last_error));
	if (!ret->last_error[0] && h->unusable[0])
		snprintf(ret->last_error, sizeof(ret->last_error), "%s", h->unusable);
	ret->checked_at = h->health.checked_at;
	ret->requests = h->health.requests;
	pthread_mutex_unlock(&h->health_lock);
}

/* ---- retries */

static bool retryable(const struct attempt *at)
{
	switch (at->cc) {
	case CURLE_OK:
	case CURLE_WRITE_ERROR: /* our callback stopped it: decided by cb_err */
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true; /* the connection dropped: a new one may work */
	default:
		return false; /* refused, timed out, TLS, cancelled: retrying won't help */
	}
	if (at->cb_err)
		return false;
	return at->head.status == 429 || at->head.status == 500 || at->head.status == 502 ||
	       at->head.status == 503 || at->head.status == 504;
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Exponential backoff with jitter (so many waiting threads do not return
 * together), or the server's Retry-After when it gave one. */
static long backoff_ms(const struct attempt *at, int retry)
{
	static _Thread_local unsigned int seed;
	long base = HTTP_BACKOFF_MS << retry;

	if (!seed)
		seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
	if (at->retry_after_ms >= 0)
		return at->retry_after_ms < HTTP_RETRY_AFTER_MAX_MS ? at->retry_after_ms
								  : HTTP_RETRY_AFTER_MAX_MS;
	return base / 2 + (long)(rand_r(&seed) % (unsigned int)base);
}

/* Sleeps, waking early when the request is cancelled. */
static bool sleep_ms(const struct http *h, const struct http_request *req, long ms)
{
	while (ms > 0) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, step * 1000000L };

		if (atomic_load(&h->stopping) || (req->cancel && atomic_load(req->cancel)))
			return false;
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return true;
}

static void log_failure(const struct http *h, struct attempt *at, int r)
{
	char msg[256];

	describe(h, at, r, msg, sizeof(msg));
	if (r == -ENOENT || r == -ECANCELED || r == -ERANGE)
		log_debug("%s", msg);
	else
		log_warn("%s", msg);
	if (at->err_len && log_enabled(LOG_LVL_DEBUG)) {
		size_t n = at->err_len < 300 ? at->err_len : 300;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)at->err_body[i] < 0x20 || (unsigned char)at->err_body[i] >= 0x7f)
				at->err_body[i] = ' ';
		log_debug("platform said: %.*s", (int)n, at->err_body);
	}
}

void http_result_clear(struct http_result *res)
{
	if (!res)
		return;
	free(res->body);
	free(res->content_type);
	free(res->location);
	free(res->captured);
	memset(res, 0, sizeof(*res));
	res->retry_after_ms = -1;
}

/* Hands what the attempt saw to res (or drops it when res is NULL). */
static void attempt_done(struct attempt *at, struct http_result *res)
{
	if (res) {
		http_result_clear(res);
		res->status = at->head.status;
		res->retry_after_ms = at->retry_after_ms;
		if (at->ok.data) {
			res->body = growbuf_steal(&at->ok, &res->body_len);
		} else if (at->err_body) {
			at->err_body[at->err_len] = '\0';
			res->body = at->err_body;
			res->body_len = at->err_len;
			at->err_body = NULL;
		}
		res->location = at->location;
		res->content_type = at->content_type;
		res->captured = at->captured;
		at->location = at->content_type = at->captured = NULL;
	}
	growbuf_free(&at->ok);
	free(at->err_body);
	free(at->location);
	free(at->content_type);
	free(at->captured);
	at->err_body = at->location = at->content_type = at->captured = NULL;
}

void http_stop(struct http *h)
{
	atomic_store(&h->stopping, true);
}

/* Has the request a deadline of cfg->timeout for all its attempts? All
 * but bulk transfers, whose size and not the platform decides how long
 * they take; those end only when they stall. */
static bool has_deadline(const struct http_request *req)
{
	return !req->bulk && !req->has_body_fd;
}

int http_request(struct http *h, const struct http_request *req)
{
	long budget_ms = patience_ms(h, req);
	bool refreshed = false;
	struct timespec start;
	int retries = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (atomic_load(&h->stopping))
		return -ECANCELED;
	for (;;) {
		struct attempt at = { .h = h, .req = req, .retry_after_ms = -1 };
		long left_ms = budget_ms - elapsed_ms(&start);
		uint64_t gen;
		char *token;
		long delay;
		int r;

		if (req->bearer) {
			token = *req->bearer ? xstrdup(req->bearer) : NULL;
			gen = 0;
			refreshed = true; /* not our token: nothing to reload */
		} else if (h->cred) {
			r = h->cred->token(h->cred->ctx, &token, &gen);
			if (r < 0)
				return r;
		} else {
			token = NULL;
			gen = 0;
			refreshed = true;
		}
		if (has_deadline(req)) {
			if (left_ms <= 0) {
				char path[160];

				secretfile_free(token);
				url_path(req->url, path, sizeof(path));
				return log_errno(-ETIMEDOUT, "%s: no time left within %ld s", path,
						 budget_ms / 1000);
			}
			at.budget_ms = left_ms;
		}
		r = attempt_once(h, &at, token);
		secretfile_free(token);
		record(h, &at, r);
		if (r == 0) {
			attempt_done(&at, req->result);
			return 0;
		}
		if (at.head.status == 401 && !refreshed && at.cc == CURLE_OK) {
			refreshed = true;
			if (h->cred && h->cred->refresh(h->cred->ctx, gen) == 0) {
				attempt_done(&at, NULL);
				continue;
			}
		}
		delay = backoff_ms(&at, retries);
		if (retries >= HTTP_MAX_RETRIES || !retryable(&at) ||
		    (req->method && strcmp(req->method, "POST") == 0) || req->once ||
		    (at.body_begun && !req->restartable) ||
		    elapsed_ms(&start) + delay >= budget_ms) {
			log_failure(h, &at, r);
			attempt_done(&at, req->result);
			return r;
		}
		log_debug("retrying in %ld ms after attempt %d failed", delay, retries + 1);
		attempt_done(&at, NULL);
		retries++;
		if (!sleep_ms(h, req, delay))
			return -ECANCELED;
	}
}

/* ---- whole bodies */

static int body_head(void *ctx, const struct http_head *head)
{
	struct growbuf *b = ctx;
	b->len = 0; /* a retried attempt starts over */
	return 0;
}

static int body_data(void *ctx, const char *p, size_t n)
{
	return growbuf_append(ctx, p, n);
}

int http_get(struct http *h, const char *url, size_t max, char **ret_body, size_t *ret_len)
{
	struct growbuf b = { .max = max };
	struct http_request req = {
		.url = url,
		.on_head = body_head,
		.on_data = body_data,
		.ctx = &b,
		.restartable = true,
	};
	int r;

	r = http_request(h, &req);
	if (r < 0) {
		if (r == -EFBIG)
			log_warn("answer to \"%s\" is larger than %zu bytes", url, max);
		growbuf_free(&b);
		return r;
	}
	if (!b.data)
		b.data = xcalloc(1, 1);
	*ret_body = growbuf_steal(&b, ret_len);
	return 0;
}

char *http_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (!e)
		abort(); /* only allocation failure */
	copy = xstrdup(e);
	curl_free(e);
	return copy;
}
