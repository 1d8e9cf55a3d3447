/* node.c - the inode table (see node.h).
 *
 * Two chained hash tables under one mutex: (parent ino, name) -> node for
 * lookups and ino -> node for every other operation. Both grow by
 * doubling so a walk of a million-entry tree stays O(1) per step. */
#include "node.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct node_table {
	pthread_mutex_t lock;
	struct node *root;
	uint64_t next_ino; /* protected by lock */
	uint64_t count;    /* protected by lock */
	struct node **by_name; /* protected by lock */
	struct node **by_ino;  /* protected by lock */
	size_t buckets;        /* protected by lock; a power of two */
};

static uint64_t hash_name(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

static uint64_t hash_ino(uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdull;
	return ino ^ (ino >> 33);
}

static void insert(struct node_table *t, struct node *n)
{
	size_t m = t->buckets - 1;

	if (n->parent) {
		size_t b = hash_name(n->parent->ino, n->name) & m;

		n->hash_next = t->by_name[b];
		t->by_name[b] = n;
	}
	n->ino_next = t->by_ino[hash_ino(n->ino) & m];
	t->by_ino[hash_ino(n->ino) & m] = n;
}

static void grow(struct node_table *t)
{
	struct node **old = t->by_ino;
	size_t old_n = t->buckets;

	t->buckets *= 2;
	t->by_ino = xcalloc(t->buckets, sizeof(*t->by_ino));
	free(t->by_name);
	t->by_name = xcalloc(t->buckets, sizeof(*t->by_name));
	for (size_t i = 0; i < old_n; i++)
		for (struct node *n = old[i], *next; n; n = next) {
			next = n->ino_next;
			insert(t, n);
		}
	free(old);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static struct node *node_new(struct node_table *t, struct node *parent, const char *name,
			     enum node_kind kind, const struct node_key *key)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->ino = t->next_ino++;
	n->kind = kind;
	n->name = xstrdup(name);
	n->parent = parent;
	if (key) {
		n->key.org = dup_or_null(key->org);
		n->key.app = key->app;
		n->key.party = dup_or_null(key->party);
		n->key.guid = dup_or_null(key->guid);
		n->key.data_type = dup_or_null(key->data_type);
		n->key.data_guid = dup_or_null(key->data_guid);
		n->key.area = key->area;
		n->key.family = key->family;
		n->key.scope = key->scope;
	}
	if (parent)
		parent->nchildren++;
	if (++t->count > t->buckets)
		grow(t);
	insert(t, n);
	return n;
}

struct node_table *node_table_new(void)
{
	struct node_table *t = xcalloc(1, sizeof(*t));

	pthread_mutex_init(&t->lock, NULL);
	t->buckets = 1024;
	t->by_name = xcalloc(t->buckets, sizeof(*t->by_name));
	t->by_ino = xcalloc(t->buckets, sizeof(*t->by_ino));
	t->next_ino = 1;
	t->root = node_new(t, NULL, "", NODE_ROOT, NULL);
	t->root->nlookup = 1; /* the kernel never forgets the root */
	return t;
}

static void node_free_one(struct node *n)
{
	free(n->name);
	free((char *)n->key.org);
	free((char *)n->key.party);
	free((char *)n->key.guid);
	free((char *)n->key.data_type);
	free((char *)n->key.data_guid);
	free(n);
}

void node_table_free(struct node_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->buckets; i++)
		for (struct node *n = t->by_ino[i], *next; n; n = next) {
			next = n->ino_next;
			node_free_one(n);
		}
	free(t->by_ino);
	free(t->by_name);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct node *node_root(struct node_table *t)
{
	return t->root;
}

static struct node *find_child(struct node_table *t, struct node *parent, const char *name)
{
	size_t b = hash_name(parent->ino, name) & (t->buckets - 1);

	for (struct node *n = t->by_name[b]; n; n = n->hash_next)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* With the lock held: takes n out of the name table. */
static void unhash_name(struct node_table *t, struct node *n)
{
	struct node **pp;

	if (!n->parent || !n->name[0])
		return;
	for (pp = &t->by_name[hash_name(n->parent->ino, n->name) & (t->buckets - 1)]; *pp;
	     pp = &(*pp)->hash_next)
		if (*pp == n) {
			*pp = n->hash_next;
			break;
		}
	n->name[0] = '\0';
}

struct node *node_lookup_add(struct node_table *t, struct node *parent, const char *name,
			     enum node_kind kind, const struct node_key *key)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_child(t, parent, name);
	/* A different kind under the same name (say an element's data guid
	 * changed behind a reused name) is a new file: detach the old node
	 * by renaming it out of the name table's reach. */
	if (n && (n->kind != kind || (key && key->data_guid && n->key.data_guid &&
				      strcmp(key->data_guid, n->key.data_guid) != 0))) {
		unhash_name(t, n); /* unreachable by name; still valid by ino */
		n = NULL;
	}
	if (!n)
		n = node_new(t, parent, name, kind, key);
	n->nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct node *node_find(struct node_table *t, struct node *parent, const char *name)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_child(t, parent, name);
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct node *node_get(struct node_table *t, uint64_t ino)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[hash_ino(ino) & (t->buckets - 1)]; n; n = n->ino_next)
		if (n->ino == ino)
			break;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void unlink_node(struct node_table *t, struct node *n)
{
	size_t m = t->buckets - 1;
	struct node **pp;

	unhash_name(t, n);
	for (pp = &t->by_ino[hash_ino(n->ino) & m]; *pp; pp = &(*pp)->ino_next)
		if (*pp == n) {
			*pp = n->ino_next;
			break;
		}
	t->count--;
}

void node_forget(struct node_table *t, uint64_t ino, uint64_t count)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[hash_ino(ino) & (t->buckets - 1)]; n; n = n->ino_next)
		if (n->ino == ino)
			break;
	if (!n || n == t->root) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
	/* free it and every ancestor that only lived for its children */
	while (n && n != t->root && n->nlookup == 0 && n->nchildren == 0) {
		struct node *parent = n->parent;

		unlink_node(t, n);
		node_free_one(n);
		parent->nchildren--;
		n = parent;
	}
	pthread_mutex_unlock(&t->lock);
}

bool node_swap_cached_mtime(struct node_table *t, struct node *n, struct timespec mtime)
{
	bool same;

	pthread_mutex_lock(&t->lock);
	same = n->cached_mtime.tv_sec == mtime.tv_sec && n->cached_mtime.tv_nsec == mtime.tv_nsec;
	n->cached_mtime = mtime;
	pthread_mutex_unlock(&t->lock);
	return same;
}

bool node_swap_cached_file(struct node_table *t, struct node *n, const struct stat *st)
{
	bool same;

	pthread_mutex_lock(&t->lock);
	same = n->cached_mtime.tv_sec == st->st_mtim.tv_sec &&
	       n->cached_mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       n->cached_ino == (uint64_t)st->st_ino && n->cached_size == (uint64_t)st->st_size;
	n->cached_mtime = st->st_mtim;
	n->cached_ino = (uint64_t)st->st_ino;
	n->cached_size = (uint64_t)st->st_size;
	pthread_mutex_unlock(&t->lock);
	return same;
}

void node_rename(struct node_table *t, struct node *n, struct node *parent, const char *name)
{
	struct node *old;
	size_t b;

	pthread_mutex_lock(&t->lock);
	old = find_child(t, parent, name);
	if (old && old != n)
		unhash_name(t, old);
	unhash_name(t, n);
	free(n->name);
	n->name = xstrdup(name);
	if (n->parent != parent) {
		n->parent->nchildren--;
		parent->nchildren++;
		/* the old parent may now be free to go, but the kernel still
		 * holds it if it has a lookup; forget will collect it */
		n->parent = parent;
	}
	b = hash_name(parent->ino, name) & (t->buckets - 1);
	n->hash_next = t->by_name[b];
	t->by_name[b] = n;
	pthread_mutex_unlock(&t->lock);
}

void node_unlink(struct node_table *t, struct node *parent, const char *name)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_child(t, parent, name);
	if (n)
		unhash_name(t, n);
	pthread_mutex_unlock(&t->lock);
}

char *node_path_below(struct node_table *t, struct node *n, enum node_kind stop)
{
	size_t len = 0;
	char *out, *p;
	struct node *m;

	pthread_mutex_lock(&t->lock);
	for (m = n; m && m->kind != stop; m = m->parent)
		len += strlen(m->name) + 1;
	if (!m) {
		pthread_mutex_unlock(&t->lock);
		return NULL;
	}
	out = xmalloc(len + 1);
	p = out + len;
	*p = '\0';
	for (m = n; m->kind != stop; m = m->parent) {
		size_t l = strlen(m->name);

		if (p != out + len)
			*--p = '/';
		p -= l;
		memcpy(p, m->name, l);
	}
	pthread_mutex_unlock(&t->lock);
	/* the first part was written at out + (slack of one '/') */
	if (p != out)
		memmove(out, p, strlen(p) + 1);
	return out;
}

uint64_t node_count(struct node_table *t)
{
	uint64_t c;

	pthread_mutex_lock(&t->lock);
	c = t->count;
	pthread_mutex_unlock(&t->lock);
	return c;
}
