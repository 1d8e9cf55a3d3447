/* webhook.c - the push endpoint (see webhook.h).
 *
 * libmicrohttpd with a thread per connection: the platform keeps one
 * connection per subscription and sends one event at a time on it, and a
 * delivery blocks while its file is written and made durable, so a
 * thread per connection is both the simplest and the fastest shape. The
 * number of connections is capped, so a flood cannot make threads
 * without bound.
 *
 * The secret is checked before any body byte is read, in time that does
 * not depend on where it differs. Nothing here knows what an event is:
 * the callback decides, and its answer becomes the status code. */
#include "webhook.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "caps.h"
#include "log.h"
#include "xalloc.h"

/* Connections at once. The platform uses about one per subscription, but
 * the port faces the internet and the secret is checked only once a
 * request's headers are in: 64 idle connections used to lock the
 * platform out. Each is a thread, idle ones cost little but a stack. */
#define WEBHOOK_MAX_CONNECTIONS 512
/* Seconds a connection may sit without a byte before it is closed: a
 * pushed event arrives in one go, so this frees what idlers hold fast. */
#define WEBHOOK_IDLE_TIMEOUT 10

struct webhook {
	struct MHD_Daemon *d;
	char *secret;
	webhook_cb cb;
	void *ctx;
	atomic_bool stopping;
};

/* One request's body, gathered over the calls of the access handler. */
struct delivery {
	char *body;
	size_t len, cap;
	bool too_big;
};

static bool same_secret(const char *given, const char *secret)
{
	size_t n = strlen(secret), m = given ? strlen(given) : 0;
	unsigned char diff = n != m;

	/* every byte of the secret is looked at, whatever the input */
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)secret[i] ^ (unsigned char)(i < m ? given[i] : 0);
	return diff == 0;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void gather(struct delivery *dl, const char *data, size_t n)
{
	if (dl->too_big || n > ALT_MAX_EVENT_BODY - dl->len) {
		dl->too_big = true;
		return;
	}
	if (dl->len + n + 1 > dl->cap) {
		dl->cap = dl->cap ? dl->cap : 4096;
		while (dl->cap < dl->len + n + 1)
			dl->cap *= 2;
		dl->body = xrealloc(dl->body, dl->cap);
	}
	memcpy(dl->body + dl->len, data, n);
	dl->len += n;
	dl->body[dl->len] = '\0';
}

/* The first call for a request: refuse what must be refused before any
 * body byte is read. */
static enum MHD_Result begin(struct webhook *w, struct MHD_Connection *conn, const char *method,
			     void **con_cls)
{
	const char *code = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code");
	const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (!same_secret(code, w->secret)) {
		log_warn("webhook: refused a request without the secret");
		return answer(conn, MHD_HTTP_FORBIDDEN, "forbidden\n");
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only POST\n");
	if (clen && strtoull(clen, NULL, 10) > ALT_MAX_EVENT_BODY)
		return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too large\n");
	*con_cls = xcalloc(1, sizeof(struct delivery));
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct webhook *w = cls;
	struct delivery *dl = *con_cls;
	int r;

	if (!dl)
		return begin(w, conn, method, con_cls);
	if (*upload_data_size > 0) {
		gather(dl, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (dl->too_big)
		return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too large\n");
	if (atomic_load(&w->stopping))
		return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
	r = w->cb(w->ctx, dl->body ? dl->body : "", dl->len);
	if (r == 0)
		return answer(conn, MHD_HTTP_OK, "ok\n");
	if (r == -EINVAL)
		return answer(conn, MHD_HTTP_BAD_REQUEST, "not a CloudEvent\n");
	return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not stored, try again\n");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct delivery *dl = *con_cls;

	if (dl) {
		free(dl->body);
		free(dl);
		*con_cls = NULL;
	}
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("webhook: %s", buf);
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080" into an address */
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

int webhook_start(const char *listen, const char *secret, webhook_cb cb, void *ctx,
		  struct webhook **ret)
{
	struct addrinfo *ai = NULL;
	struct webhook *w;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_ERROR_LOG;
	int r;

	if (!secret || !*secret)
		return log_errno(-EINVAL, "webhook: no secret");
	r = resolve(listen, &ai);
	if (r < 0)
		return log_errno(r, "webhook_listen \"%s\": want address:port", listen);
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	w = xcalloc(1, sizeof(*w));
	w->secret = xstrdup(secret);
	w->cb = cb;
	w->ctx = ctx;
	atomic_init(&w->stopping, false);
	w->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, w,
				MHD_OPTION_EXTERNAL_LOGGER, on_log, w,
				MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)WEBHOOK_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)WEBHOOK_IDLE_TIMEOUT,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!w->d) {
		webhook_free(w);
		return log_errno(-EADDRNOTAVAIL, "webhook: cannot listen on \"%s\"", listen);
	}
	log_info("webhook listening on \"%s\"", listen);
	*ret = w;
	return 0;
}

void webhook_stop(struct webhook *w)
{
	if (w)
		atomic_store(&w->stopping, true);
}

void webhook_free(struct webhook *w)
{
	if (!w)
		return;
	if (w->d)
		MHD_stop_daemon(w->d);
	free(w->secret);
	free(w);
}
