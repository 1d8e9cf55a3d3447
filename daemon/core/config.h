/* config.h - the daemon's settings, from a config file and -o options.
 *
 * Every key in docs/configuration.md can appear in the config file
 * ("key = value" lines, '#' comments) and as -o key=value; -o wins.
 * Unknown keys are an error, never ignored. */
#ifndef ALTINNFS_CONFIG_H
#define ALTINNFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* cache_max when not set: the cache sizes itself from the free space of
 * cache_dir's file system at start (docs/cache.md). */
#define CONFIG_CACHE_MAX_AUTO UINT64_MAX

struct config_app {
	char *org;
	char *app;
};

struct config {
	char *platform;          /* base URL, no trailing slash */
	char *apps_url;          /* may contain {org}; no trailing slash */
	struct config_app *apps; /* from "apps": org/app ... */
	size_t n_apps;
	char *token_file;
	char *state_dir;
	int cache_ttl;      /* seconds a listing/attribute is trusted */
	int timeout;        /* seconds a request may take (bulk: may stall) */
	int write_timeout;  /* seconds an App API write may wait for its answer */
	char *cache_dir;    /* data element cache; NULL: <state_dir>/cache */
	uint64_t cache_max; /* its bound in bytes; 0: no cache; CONFIG_CACHE_MAX_AUTO:
			     * sized from the free space at start */
	int page_size;      /* instances per query page */
	int max_listed;     /* instances one listing may hold (memory bound) */
	int poll_interval;  /* seconds between event polls */
	char *index_since;  /* ISO-8601: index only instances changed since; NULL: all */
	char *events_start; /* now | all | ISO-8601 */
	int events_keep;      /* event files kept per app */
	int events_keep_days; /* days an event file is kept (0: no limit) */
	char *webhook_listen;
	char *webhook_url;
	char *metrics_listen; /* address:port of GET /metrics; NULL: off */
	char *maskinporten_client_id;
	char *maskinporten_key_file;
	char *maskinporten_kid;
	char *maskinporten_scope;
	char *maskinporten_audience;
	char *maskinporten_token_url;
	bool maskinporten_exchange_test; /* ?test=true on the exchange (Digdir testing ttd) */
	char *subscription_key_file;
	bool outbox;              /* the outbox/, sent/ and failed/ areas */
	int outbox_uploaders;     /* submissions delivered at once */
	bool outbox_process_next; /* PUT process/next after the uploads */
	char *outbox_data_type;   /* "org/app:dataType ..." overrides */
	int outbox_retry_max;     /* seconds: the longest wait between attempts */
	int outbox_give_up;       /* seconds: transient failures older end in failed/ */
	int instance_writes_give_up; /* seconds: instance writes older are given up */
	char *broker_resources;   /* space-separated Broker resource ids; NULL: none */
	char *broker_url;         /* the Broker API base; NULL: platform + /broker/api/v1 */
	char *correspondence_resources; /* space-separated Correspondence resource ids */
	bool correspondence_events;     /* follow receipts by the events feed */
	int correspondence_reconcile;   /* seconds between reconciling reads */
	int broker_give_up;       /* seconds: a transfer failing longer goes to failed/ */
	int broker_poll;          /* seconds between searches for transfers sent to us */
	int broker_reconcile;     /* seconds between reads of a published transfer we sent */
	uint64_t broker_tus_threshold; /* bytes: files this large go by TUS */
	uint64_t broker_tus_chunk;     /* bytes of one TUS PATCH */
	int inbox_give_up;        /* seconds: inbox deliveries older are given up */
	bool allow_other;
	bool debug;
};

/* fills defaults */
void config_init(struct config *cfg);
/* sets one key; returns 0, or -EINVAL with *ret_err set to a message */
int config_set(struct config *cfg, const char *key, const char *value, char **ret_err);
/* reads "key = value" lines; returns 0 or -errno with *ret_err set */
int config_load_file(struct config *cfg, const char *path, char **ret_err);
/* checks the whole: required keys, readable token file; 0 or -errno with *ret_err */
int config_check(const struct config *cfg, char **ret_err);
/* the app API base for org: apps_url with {org} replaced; without
 * apps_url, https://{org}.apps.<env> for a platform https://platform.<env>
 * of a real Altinn (*.altinn.no, *.altinn.cloud), else the platform
 * (caller frees) */
char *config_app_base(const struct config *cfg, const char *org);
void config_free(struct config *cfg);
/* every key with its help, one or more lines each, for --help */
void config_print_help(FILE *out);

#endif
