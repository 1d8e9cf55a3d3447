/* altinn_i.h - the client's insides, shared by api.c and reader.c only.
 *
 * fs/ sees struct altinn as an opaque handle through altinn.h; the two
 * files that implement that header need its fields. */
#ifndef ALTINNFS_ALTINN_I_H
#define ALTINNFS_ALTINN_I_H

#include <stdatomic.h>

#include "altinn.h"

struct auth;
struct http;
struct cache;

struct altinn {
	const struct config *cfg; /* owned by main; outlives the client */
	struct auth *auth;
	struct http *http;
	char *storage;            /* "{platform}/storage/api/v1"; immutable */
	atomic_int n_streams;     /* read-ahead streams alive, <= ALT_MAX_STREAMS */
	struct cache *cache;      /* data element bytes on disk; NULL when off */
};

#endif
