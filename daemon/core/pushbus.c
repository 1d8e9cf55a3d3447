/* pushbus.c - pushed events, from the one webhook to the family whose
 * events they are (see pushbus.h).
 *
 * Routes are few (one per subscribed resource) and are added before the
 * webhook starts and removed after it is stopped, so a list under a
 * read-write lock is enough: a delivery holds the read side while its
 * route works, which is what lets pushbus_remove (the write side) wait
 * for the deliveries under way. The validated subscriptions are a small
 * ring: a subscription's validation matters only in the minutes after
 * it was posted. */
#include "pushbus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* subscriptions whose validation is remembered: a daemon makes one per
 * app and per resource, and each is looked up soon after it is posted */
#define PUSHBUS_KEEP_VALIDATED 256

struct route {
	char *resource;
	char *type_prefix;
	pushbus_fn fn;
	void *ctx;
	struct route *next;
};

struct pushbus {
	pthread_rwlock_t lock; /* routes: read to deliver, write to change */
	struct route *routes;  /* protected by lock */

	pthread_mutex_t validated_lock;
	int64_t validated[PUSHBUS_KEEP_VALIDATED]; /* protected by validated_lock: a ring */
	unsigned n_validated;                      /* protected by validated_lock */
};

struct pushbus *pushbus_new(void)
{
	struct pushbus *bus = xcalloc(1, sizeof(*bus));

	pthread_rwlock_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->validated_lock, NULL);
	return bus;
}

void pushbus_free(struct pushbus *bus)
{
	if (!bus)
		return;
	while (bus->routes) {
		struct route *r = bus->routes;

		bus->routes = r->next;
		free(r->resource);
		free(r->type_prefix);
		free(r);
	}
	pthread_rwlock_destroy(&bus->lock);
	pthread_mutex_destroy(&bus->validated_lock);
	free(bus);
}

void pushbus_add(struct pushbus *bus, const char *resource, const char *type_prefix,
		 pushbus_fn fn, void *ctx)
{
	struct route *r = xcalloc(1, sizeof(*r));

	r->resource = xstrdup(resource);
	r->type_prefix = xstrdup(type_prefix);
	r->fn = fn;
	r->ctx = ctx;
	pthread_rwlock_wrlock(&bus->lock);
	r->next = bus->routes;
	bus->routes = r;
	pthread_rwlock_unlock(&bus->lock);
}

void pushbus_remove(struct pushbus *bus, void *ctx)
{
	struct route **p;

	if (!bus)
		return;
	pthread_rwlock_wrlock(&bus->lock); /* once no delivery holds the read side */
	p = &bus->routes;
	while (*p) {
		struct route *r = *p;

		if (r->ctx != ctx) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		free(r->resource);
		free(r->type_prefix);
		free(r);
	}
	pthread_rwlock_unlock(&bus->lock);
}

int pushbus_deliver(struct pushbus *bus, const char *resource, const char *type,
		    const char *body, size_t len)
{
	int r = -ENOENT;

	if (!bus || !resource || !type)
		return -ENOENT;
	pthread_rwlock_rdlock(&bus->lock);
	for (struct route *rt = bus->routes; rt; rt = rt->next)
		if (strcmp(rt->resource, resource) == 0 &&
		    strncmp(type, rt->type_prefix, strlen(rt->type_prefix)) == 0) {
			r = rt->fn(rt->ctx, rt->resource, body, len);
			break;
		}
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

void pushbus_validated(struct pushbus *bus, int64_t id)
{
	if (!bus || id <= 0)
		return;
	pthread_mutex_lock(&bus->validated_lock);
	bus->validated[bus->n_validated++ % PUSHBUS_KEEP_VALIDATED] = id;
	pthread_mutex_unlock(&bus->validated_lock);
}

bool pushbus_was_validated(struct pushbus *bus, int64_t id)
{
	bool found = false;
	unsigned n;

	if (!bus || id <= 0)
		return false;
	pthread_mutex_lock(&bus->validated_lock);
	n = bus->n_validated < PUSHBUS_KEEP_VALIDATED ? bus->n_validated : PUSHBUS_KEEP_VALIDATED;
	for (unsigned i = 0; i < n && !found; i++)
		found = bus->validated[i] == id;
	pthread_mutex_unlock(&bus->validated_lock);
	return found;
}
