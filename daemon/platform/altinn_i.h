/* altinn_i.h - the client's insides, for the files of platform/ only.
 *
 * Everything outside platform/ sees struct altinn as an opaque handle
 * through altinn.h; the files that make its calls (api.c, reader.c,
 * api_action.c, api_app.c, api_events.c) need its fields. */
#ifndef ALTINNFS_ALTINN_I_H
#define ALTINNFS_ALTINN_I_H

#include <stdatomic.h>

#include "altinn.h"
#include "http.h"

struct auth;
struct cache;

struct altinn {
	const struct config *cfg; /* owned by main; outlives the client */
	struct auth *auth;
	struct http_credentials cred; /* auth, as http.c asks for it */
	struct http *http;
	char *storage;            /* "{platform}/storage/api/v1"; immutable */
	atomic_int n_streams;     /* read-ahead streams alive, <= ALT_MAX_STREAMS */
	struct cache *cache;      /* data element bytes on disk; NULL when off */
};

/* reader.c: a reader of the bytes at url through the cache only, keyed
 * by key (a lowercase GUID) and size, their MD5 (32 hex digits, or NULL)
 * checked before the last byte is served (cache_entry_get_checked); the
 * download starts now. -ENOSPC when the cache is off or cannot hold it,
 * or key is no GUID: fetch the bytes another way. For api_brecv.c. */
int reader_open_checked(struct altinn *a, const char *url, const char *key, uint64_t size,
			const char *md5, struct alt_reader **ret);

/* api_app.c: a finished request sorted into an outcome (api_app.h);
 * mutating: it changes something, so a lost answer leaves it unknown.
 * For the other families' calls (api_broker.c). */
struct app_answer;
int app_conclude(int r, const struct http_result *res, bool mutating, const char *what,
		 struct app_answer *ans);

#endif
