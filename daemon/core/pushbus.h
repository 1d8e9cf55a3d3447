/* pushbus.h - pushed events, from the one webhook to the family whose
 * events they are.
 *
 * The platform pushes every subscription's events to the one endpoint
 * of webhook_url, which the events family serves (events/webhook.c):
 * apps' events are its own, and a family that subscribes to a resource
 * of its own (Broker, Correspondence) takes that resource's events
 * through this bus. A route is a resource URN and a type prefix, so a
 * Broker event is never handed to Correspondence, whatever its resource.
 * The bus also remembers which subscriptions the platform validated
 * (the validation event comes to the same endpoint, sometimes before
 * the answer to the POST that made the subscription).
 *
 * It knows no HTTP and no JSON: the listener parses the event, the
 * route's callback gets the body as it came. Every call is thread safe;
 * pushbus_remove waits for the deliveries under way to that route's
 * owner, so an owner may free itself once it returns. */
#ifndef ALTINNFS_PUSHBUS_H
#define ALTINNFS_PUSHBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pushbus;

/* One pushed event of resource (the route's URN), on the webhook's
 * thread: 0 (answered 200), -EINVAL (400: not an event the route can
 * take) or another -errno (503: the platform sends it again later). */
typedef int (*pushbus_fn)(void *ctx, const char *resource, const char *body, size_t len);

struct pushbus *pushbus_new(void);
void pushbus_free(struct pushbus *bus); /* NULL is fine; no route may be left */

/* Events of resource (the whole URN, "urn:altinn:resource:<id>") whose
 * type starts with type_prefix go to fn(ctx, ...). */
void pushbus_add(struct pushbus *bus, const char *resource, const char *type_prefix,
		 pushbus_fn fn, void *ctx);
/* Removes every route of ctx, once the deliveries under way are over. */
void pushbus_remove(struct pushbus *bus, void *ctx);

/* Hands an event to its route: what the route answered, or -ENOENT
 * when no route takes it. */
int pushbus_deliver(struct pushbus *bus, const char *resource, const char *type,
		    const char *body, size_t len);

/* The platform validated subscription id (a validation event came). */
void pushbus_validated(struct pushbus *bus, int64_t id);
/* Did a validation event for id come (the newest 256 are kept)? */
bool pushbus_was_validated(struct pushbus *bus, int64_t id);

#endif
