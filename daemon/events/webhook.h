/* webhook.h - the push endpoint: a small HTTP server for the platform's
 * webhook deliveries (libmicrohttpd).
 *
 * Each delivery is one POST with one CloudEvent as its body. A request
 * is refused with 403 unless its `code` query parameter equals the
 * secret, with 405 unless it is a POST, with 413 when the body passes
 * ALT_MAX_EVENT_BODY. Otherwise the body goes to the callback, which runs
 * on the connection's own thread (not a FUSE thread: it may write
 * through the mount) and decides the answer. */
#ifndef ALTINNFS_WEBHOOK_H
#define ALTINNFS_WEBHOOK_H

#include <stddef.h>

struct webhook;

/* One delivery: 0 answers 200; -EINVAL 400 (not an event: the platform
 * should not send it again); any other -errno 503 (try again later). */
typedef int (*webhook_cb)(void *ctx, const char *body, size_t len);

/* Listens on listen ("host:port", "[v6 address]:port") and serves until
 * webhook_free. secret must not be empty. */
int webhook_start(const char *listen, const char *secret, webhook_cb cb, void *ctx,
		  struct webhook **ret);
/* From now on every request is answered 503 at once; does not wait. */
void webhook_stop(struct webhook *w);
/* Closes the server and waits for the requests under way. NULL is fine. */
void webhook_free(struct webhook *w);

#endif
