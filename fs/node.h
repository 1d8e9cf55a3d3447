/* node.h - the inode table: which kernel inode number means which place
 * in the tree.
 *
 * A node is a (parent, name) pair with a kind and the keys that find its
 * backing on the platform (app, party, instance guid, data guid). Nodes
 * live while the kernel holds a lookup on them or a child of theirs
 * lives; inode numbers are never reused, so a stale kernel handle can
 * only miss, never hit the wrong file.
 *
 * All functions take the table's own lock internally; the node fields below are
 * immutable after creation except where marked. */
#ifndef ALTINNFS_NODE_H
#define ALTINNFS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

enum node_kind {
	NODE_ROOT,
	NODE_README,      /* README.txt */
	NODE_STATUS,      /* status.json */
	NODE_APPS,        /* apps/ */
	NODE_ORG,         /* apps/<org>/ */
	NODE_APP,         /* apps/<org>/<app>/ */
	NODE_FAMILY,      /* <root>/ of a rooted family */
	NODE_SCOPE,       /* <root>/<scope>/ */
	NODE_SCOPE_STATUS, /* <root>/<scope>/status.json */
	NODE_APP_JSON,    /* .../application.json */
	NODE_INSTANCES,   /* .../instances/ */
	NODE_PARTY,       /* .../instances/<partyId>/ */
	NODE_INSTANCE,    /* .../instances/<partyId>/<guid>/ */
	NODE_INSTANCE_JSON,
	NODE_DATA,        /* .../<guid>/data/ */
	NODE_DATA_TYPE,   /* .../data/<dataType>/ */
	NODE_DATA_FILE,   /* .../data/<dataType>/<name> */
	NODE_CTL,         /* .../instances/<partyId>/<guid>/ctl */
	NODE_INBOX,       /* apps/<org>/<app>/inbox/ */
	NODE_INBOX_LINK,  /* .../inbox/<partyId>-<guid> -> ../instances/<partyId>/<guid> */
	NODE_AREA,        /* apps/<org>/<app>/{events,outbox,sent,failed}/, <root>/<scope>/<area>/ */
	NODE_LOCAL,       /* a file or folder below an area, kept on local disk */
};

struct view_app;

/* What identifies a node's backing; unused fields are NULL. */
struct node_key {
	const char *org;           /* NODE_ORG and below */
	struct view_app *app;      /* NODE_APP and below */
	const char *party;         /* NODE_PARTY and below */
	const char *guid;          /* NODE_INSTANCE and below */
	const char *data_type;     /* NODE_DATA_TYPE: the folder's name */
	const char *data_guid;     /* NODE_DATA_FILE */
	int area;                  /* NODE_AREA and NODE_LOCAL: 1 + its index in fs->areas */
	int family;                /* NODE_FAMILY: 1 + its index in fs->families */
	int scope;                 /* NODE_SCOPE and below: 1 + its index in fs->scopes */
};

struct node {
	uint64_t ino;
	enum node_kind kind;
	char *name;
	struct node *parent;
	struct node_key key; /* strings owned by the node */
	/* protected by the table lock: */
	uint64_t nlookup;
	uint64_t nchildren;
	struct timespec cached_mtime; /* data and local files: mtime when last opened */
	uint64_t cached_ino, cached_size; /* local files: which file, how long, then */
	struct node *hash_next;       /* by (parent, name) */
	struct node *ino_next;        /* by ino */
};

struct node_table;

struct node_table *node_table_new(void);
void node_table_free(struct node_table *t);

/* The root node (ino 1), always present. */
struct node *node_root(struct node_table *t);

/* Finds the child (parent, name) or creates it with kind and key, and
 * counts one kernel lookup on it. Returns the node (never NULL). */
struct node *node_lookup_add(struct node_table *t, struct node *parent, const char *name,
			     enum node_kind kind, const struct node_key *key);

/* The child (parent, name) if the table has it, without counting a lookup. */
struct node *node_find(struct node_table *t, struct node *parent, const char *name);

/* The node for a kernel inode number, or NULL when it is gone. The
 * pointer stays valid until the kernel forgets the inode, which it does
 * not do while a request on it is running. */
struct node *node_get(struct node_table *t, uint64_t ino);

/* Drops n kernel lookups (FUSE forget). */
void node_forget(struct node_table *t, uint64_t ino, uint64_t n);

/* Reads and sets cached_mtime under the table lock; returns true when
 * the old value equals mtime (the kernel's cached pages are still good). */
bool node_swap_cached_mtime(struct node_table *t, struct node *n, struct timespec mtime);
/* The same for a file of a local area, opened as st: true when it is the
 * file (inode), size and mtime of the last open. */
bool node_swap_cached_file(struct node_table *t, struct node *n, const struct stat *st);

/* Moves n to (parent, name), replacing whatever node had that name
 * (it stays valid by inode number for handles still open). */
void node_rename(struct node_table *t, struct node *n, struct node *parent, const char *name);

/* Makes the node called (parent, name), if any, unreachable by name: the
 * file it stood for was removed. */
void node_unlink(struct node_table *t, struct node *parent, const char *name);

/* The path of n below its ancestor of kind stop ("a/b/c"; "" for the
 * ancestor itself), read consistently under the table lock. Returns a
 * new string, or NULL when n is not below such an ancestor. */
char *node_path_below(struct node_table *t, struct node *n, enum node_kind stop);

/* Number of live nodes, for status and tests. */
uint64_t node_count(struct node_table *t);

#endif
