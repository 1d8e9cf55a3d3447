/* index_lru.c - the parsed instance documents the index holds in memory.
 *
 * A listing of an instance's folders needs its parsed document; parsing
 * it from the catalog again for every stat would cost tens of
 * microseconds each, keeping every one would make the daemon's memory
 * grow with the app. So a fixed number (ALT_INDEX_PARSED) are kept: a
 * hash of the id finds a slot chain, a use moves it to the front of one
 * list, and the back of the list is reused. */
#include "index_i.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct slot {
	char *id;
	struct alt_instance *inst;
	struct slot *prev, *next;  /* use order, front = newest */
	struct slot *chain;        /* same bucket */
};

struct idx_lru {
	pthread_mutex_t lock;
	size_t cap, n, n_buckets;
	struct slot **buckets;
	struct slot *front, *back;
};

static size_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % n);
}

struct idx_lru *idx_lru_new(size_t cap)
{
	struct idx_lru *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	l->cap = cap ? cap : 1;
	l->n_buckets = l->cap * 2 + 1;
	l->buckets = xcalloc(l->n_buckets, sizeof(*l->buckets));
	return l;
}

static void unlink_use(struct idx_lru *l, struct slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->front = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->back = s->prev;
	s->prev = s->next = NULL;
}

static void push_front(struct idx_lru *l, struct slot *s)
{
	s->next = l->front;
	s->prev = NULL;
	if (l->front)
		l->front->prev = s;
	l->front = s;
	if (!l->back)
		l->back = s;
}

static struct slot **find(struct idx_lru *l, const char *id)
{
	struct slot **p = &l->buckets[hash(id, l->n_buckets)];

	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->chain;
	return p;
}

static void remove_slot(struct idx_lru *l, struct slot **at)
{
	struct slot *s = *at;

	*at = s->chain;
	unlink_use(l, s);
	alt_instance_unref(s->inst);
	free(s->id);
	free(s);
	l->n--;
}

struct alt_instance *idx_lru_get(struct idx_lru *l, const char *id)
{
	struct alt_instance *inst = NULL;
	struct slot **at;

	pthread_mutex_lock(&l->lock);
	at = find(l, id);
	if (*at) {
		unlink_use(l, *at);
		push_front(l, *at);
		inst = alt_instance_ref((*at)->inst);
	}
	pthread_mutex_unlock(&l->lock);
	return inst;
}

void idx_lru_put(struct idx_lru *l, const char *id, struct alt_instance *inst)
{
	struct slot **at, *s;

	pthread_mutex_lock(&l->lock);
	at = find(l, id);
	if (*at)
		remove_slot(l, at);
	if (l->n == l->cap && l->back)
		remove_slot(l, find(l, l->back->id));
	s = xcalloc(1, sizeof(*s));
	s->id = xstrdup(id);
	s->inst = alt_instance_ref(inst);
	at = find(l, id);
	*at = s;
	push_front(l, s);
	l->n++;
	pthread_mutex_unlock(&l->lock);
}

void idx_lru_drop(struct idx_lru *l, const char *id)
{
	struct slot **at;

	pthread_mutex_lock(&l->lock);
	if (id) {
		at = find(l, id);
		if (*at)
			remove_slot(l, at);
	} else {
		while (l->back)
			remove_slot(l, find(l, l->back->id));
	}
	pthread_mutex_unlock(&l->lock);
}

void idx_lru_free(struct idx_lru *l)
{
	if (!l)
		return;
	idx_lru_drop(l, NULL);
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
