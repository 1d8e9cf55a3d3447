/* config.c - settings from a config file (inih) and -o key=value options.
 *
 * One table lists every key with its type, where it lands in struct
 * config and its line in --help, so the file parser, -o and --help can
 * never disagree about which keys exist (tests/test_01_cli.py holds
 * --help against docs/configuration.md, tests/test_20_service.py the
 * table and its defaults against the man page, docs/altinnfs.8.scd: a
 * new key goes into all three). Unknown keys and bad values are errors
 * that name the key: a typo must not silently fall back to a default. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "secretfile.h"
#include "xalloc.h"

enum key_kind { KEY_STRING, KEY_URL, KEY_INT, KEY_APPS, KEY_FLAG, KEY_BYTES };

struct key_def {
	const char *name;
	enum key_kind kind;
	size_t offset;
	int min, max; /* KEY_INT */
	const char *help; /* its line in --help; "\n" starts another */
};

#define STR(k, h) { #k, KEY_STRING, offsetof(struct config, k), 0, 0, h }
#define URL(k, h) { #k, KEY_URL, offsetof(struct config, k), 0, 0, h }
#define INT(k, lo, hi, h) { #k, KEY_INT, offsetof(struct config, k), lo, hi, h }
#define FLAG(k, h) { #k, KEY_FLAG, offsetof(struct config, k), 0, 0, h }

static const struct key_def keys[] = {
	URL(platform, "base URL of the platform (Storage, Events, Authentication),\n"
		      "e.g. https://platform.tt02.altinn.no (required)"),
	URL(apps_url, "base URL of the app API; {org} is replaced, e.g.\n"
		      "https://{org}.apps.tt02.altinn.no (default: derived from a\n"
		      "platform https://platform.<env> of Altinn, else platform)"),
	{ "apps", KEY_APPS, 0, 0, 0, "space-separated org/app list to mount (required)" },
	STR(token_file, "file with an Altinn bearer token, re-read when it changes"),
	STR(state_dir, "where the journals, cursors and receipts live (default\n"
		       "/var/lib/altinnfs as root, else $XDG_STATE_HOME/altinnfs\n"
		       "or ~/.local/state/altinnfs)"),
	INT(cache_ttl, 0, 86400, "seconds a listing or attribute is trusted (default 10)"),
	INT(timeout, 1, 3600, "seconds a request may take, retries included, before it\n"
			      "fails (a large transfer: may stall) (default 30)"),
	INT(write_timeout, 1, 86400, "seconds an App API write may wait for its answer\n"
				     "(default 300)"),
	STR(cache_dir, "where the content cache of data elements lives\n"
		       "(default <state_dir>/cache)"),
	{ "cache_max", KEY_BYTES, offsetof(struct config, cache_max), 0, 0,
	  "the content cache's bound in bytes, K/M/G/T allowed;\n0: no cache (default: a quarter of "
	  "the free space of\ncache_dir's file system at start, at most 16G)" },
	INT(page_size, 1, 1000, "instances per query page (default 100)"),
	INT(max_listed, 100, 10000000, "instances one listing may hold (default 200000)"),
	INT(poll_interval, 1, 86400, "seconds between event polls (default 10)"),
	STR(index_since, "ISO-8601 time: index and list only instances changed\n"
			 "since then (default: all); others answer a direct look"),
	STR(events_start, "now (default), all, or an ISO-8601 time"),
	INT(events_keep, 1, 100000, "event files kept per app (default 10000)"),
	INT(events_keep_days, 0, 36500, "days an event file is kept; 0: no limit (default 30)"),
	STR(webhook_listen, "address:port of the events push endpoint"),
	URL(webhook_url, "its public https URL, ending in ?code=<secret>"),
	STR(metrics_listen, "address:port serving Prometheus metrics at /metrics\n"
			    "(default: off)"),
	STR(maskinporten_client_id, "Maskinporten client id: Maskinporten is the token source"),
	STR(maskinporten_key_file, "the client's RSA private key (PEM, mode 0600)"),
	STR(maskinporten_kid, "the key id registered for that key"),
	STR(maskinporten_scope, "space-separated scopes"),
	URL(maskinporten_audience, "the Maskinporten issuer, with its trailing slash"),
	URL(maskinporten_token_url, "the token endpoint (default: audience + token)"),
	FLAG(maskinporten_exchange_test, "send ?test=true on the token exchange (default no)"),
	STR(subscription_key_file, "file with an Ocp-Apim-Subscription-Key value"),
	FLAG(outbox, "the outbox/, sent/ and failed/ folders (default yes)"),
	INT(outbox_uploaders, 1, 32, "submissions delivered at once (default 4)"),
	FLAG(outbox_process_next, "PUT process/next after the uploads (default yes)"),
	STR(outbox_data_type, "data type per app: \"org/app:type ...\""),
	INT(outbox_retry_max, 1, 86400, "longest wait between attempts, seconds (default 300)"),
	INT(outbox_give_up, 1, 365 * 86400,
	    "seconds a submission may keep failing before failed/\n(default 259200)"),
	INT(instance_writes_give_up, 1, 365 * 86400,
	    "seconds a write into an instance may keep failing\nbefore it is given up (default 259200)"),
	INT(inbox_give_up, 1, 365 * 86400,
	    "seconds a confirmation may keep failing before it is\ngiven up (default 259200)"),
	STR(broker_resources, "space-separated Altinn Broker resource ids, each served at\n"
			      "broker/<resourceId>/ (default: none)"),
	URL(broker_url, "base URL of the Broker API (default: platform +\n/broker/api/v1)"),
	INT(broker_give_up, 1, 365 * 86400,
	    "seconds a Broker transfer may keep failing before failed/\n(default 259200)"),
	INT(broker_poll, 1, 86400,
	    "seconds between two searches for Broker transfers sent to us\n(default 60; at most 10 a minute are made)"),
	INT(broker_reconcile, 1, 30 * 86400,
	    "seconds between reconciling reads of a published Broker\n"
	    "transfer, until it is purged (default 3600)"),
	{ "broker_tus_threshold", KEY_BYTES, offsetof(struct config, broker_tus_threshold), 0, 0,
	  "Broker files of this many bytes or more are uploaded by\nTUS, resumable (default 64M)" },
	{ "broker_tus_chunk", KEY_BYTES, offsetof(struct config, broker_tus_chunk), 0, 0,
	  "bytes of one TUS PATCH, at most what a crash sends again\n(default 32M)" },
	STR(correspondence_resources,
	    "space-separated Altinn Correspondence resource ids, each\n"
	    "served at correspondence/<resourceId>/ (default: none)"),
	FLAG(correspondence_events, "follow sent messages' statuses by the Events API,\n"
				    "polled every poll_interval (default yes)"),
	INT(correspondence_reconcile, 1, 30 * 86400,
	    "seconds between reconciling reads of a sent message's\n"
	    "correspondences once published (default 3600)"),
	FLAG(allow_other, "let other users see the mount (needs user_allow_other)"),
};

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cache_ttl = 10;
	cfg->timeout = 30;
	cfg->write_timeout = 300;
	cfg->cache_max = CONFIG_CACHE_MAX_AUTO;
	cfg->page_size = 100;
	cfg->max_listed = ALT_MAX_LISTED;
	cfg->poll_interval = 10;
	cfg->events_start = xstrdup("now");
	cfg->outbox = true;
	cfg->outbox_uploaders = 4;
	cfg->outbox_process_next = true;
	cfg->outbox_retry_max = 300;
	cfg->outbox_give_up = 3 * 86400;
	cfg->instance_writes_give_up = 3 * 86400;
	cfg->broker_give_up = 3 * 86400;
	cfg->broker_poll = 60;
	cfg->broker_reconcile = 3600;
	cfg->broker_tus_threshold = ALT_BROKER_TUS_THRESHOLD;
	cfg->broker_tus_chunk = ALT_BROKER_TUS_CHUNK;
	cfg->inbox_give_up = 3 * 86400;
	cfg->correspondence_events = true;
	cfg->correspondence_reconcile = 3600;
	cfg->events_keep = 10000;
	cfg->events_keep_days = 30;
}

/* A byte count: digits with an optional K, M, G or T (powers of 1024). */
static int set_bytes(uint64_t *out, const char *key, const char *value, char **ret_err)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (!errno && end != value && *end && !end[1]) {
		const char *units = "KMGT", *u = strchr(units, *end & ~0x20);

		if (u && *u)
			shift = 10 * (unsigned)(u - units + 1);
		else
			errno = EINVAL;
		end++;
	}
	if (errno || end == value || *end || value[0] == '-' || (shift && v > (~0ull >> shift))) {
		*ret_err = xasprintf("invalid value \"%s\" for \"%s\": want a number of bytes "
				     "(a K, M, G or T suffix is fine)", value, key);
		return -EINVAL;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

static const struct key_def *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool valid_app_part(const char *s, size_t len)
{
	if (len == 0 || len > 100)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static void free_apps(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_apps; i++) {
		free(cfg->apps[i].org);
		free(cfg->apps[i].app);
	}
	free(cfg->apps);
	cfg->apps = NULL;
	cfg->n_apps = 0;
}

static int set_apps(struct config *cfg, const char *value, char **ret_err)
{
	const char *p = value;

	free_apps(cfg);
	while (*p) {
		size_t len = strcspn(p, " \t,");
		const char *slash = memchr(p, '/', len);

		if (len == 0) {
			p++;
			continue;
		}
		if (!slash || !valid_app_part(p, (size_t)(slash - p)) ||
		    !valid_app_part(slash + 1, len - (size_t)(slash - p) - 1)) {
			*ret_err = xasprintf("invalid app \"%.*s\" in \"apps\": want org/app", (int)len, p);
			return -EINVAL;
		}
		for (size_t i = 0; i < cfg->n_apps; i++)
			if (strlen(cfg->apps[i].org) == (size_t)(slash - p) &&
			    strncmp(cfg->apps[i].org, p, (size_t)(slash - p)) == 0 &&
			    strlen(cfg->apps[i].app) == len - (size_t)(slash - p) - 1 &&
			    strncmp(cfg->apps[i].app, slash + 1, len - (size_t)(slash - p) - 1) == 0)
				goto next; /* listed twice: once is enough */
		cfg->apps = xrealloc(cfg->apps, (cfg->n_apps + 1) * sizeof(*cfg->apps));
		cfg->apps[cfg->n_apps].org = xstrndup(p, (size_t)(slash - p));
		cfg->apps[cfg->n_apps].app = xstrndup(slash + 1, len - (size_t)(slash - p) - 1);
		cfg->n_apps++;
next:
		p += len;
	}
	return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, char **ret_err)
{
	const struct key_def *k = find_key(key);
	char **sp;
	char *end;
	long v;

	if (!k) {
		*ret_err = xasprintf("unknown option \"%s\" (see --help for the keys)", key);
		return -EINVAL;
	}
	switch (k->kind) {
	case KEY_APPS:
		return set_apps(cfg, value, ret_err);
	case KEY_FLAG:
		*(bool *)((char *)cfg + k->offset) =
			!value || !*value || strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
			strcmp(value, "yes") == 0;
		return 0;
	case KEY_INT:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < k->min || v > k->max) {
			*ret_err = xasprintf("invalid value \"%s\" for \"%s\": want a whole number from %d to %d",
					     value, key, k->min, k->max);
			return -EINVAL;
		}
		*(int *)((char *)cfg + k->offset) = (int)v;
		return 0;
	case KEY_BYTES:
		return set_bytes((uint64_t *)((char *)cfg + k->offset), key, value, ret_err);
	case KEY_URL:
		if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
			*ret_err = xasprintf("invalid value \"%s\" for \"%s\": want an http:// or https:// URL",
					     value, key);
			return -EINVAL;
		}
		/* fall through */
	case KEY_STRING:
		sp = (char **)((char *)cfg + k->offset);
		free(*sp);
		*sp = xstrdup(value);
		if (k->kind == KEY_URL && strcmp(key, "maskinporten_audience") != 0) {
			size_t len = strlen(*sp);

			while (len > 8 && (*sp)[len - 1] == '/')
				(*sp)[--len] = '\0';
		}
		return 0;
	}
	return -EINVAL;
}

struct file_ctx {
	struct config *cfg;
	char *err;
};

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *ctx = user;

	if (ctx->err)
		return 0;
	if (section && *section && strcmp(section, "altinnfs") != 0) {
		ctx->err = xasprintf("unknown section \"[%s]\"", section);
		return 0;
	}
	if (config_set(ctx->cfg, name, value, &ctx->err) < 0)
		return 0;
	return 1;
}

int config_load_file(struct config *cfg, const char *path, char **ret_err)
{
	struct file_ctx ctx = { cfg, NULL };
	int line = ini_parse(path, file_handler, &ctx);

	if (line == -1) {
		*ret_err = xasprintf("cannot read config file \"%s\": %s", path, strerror(errno));
		return -ENOENT;
	}
	if (line != 0) {
		char *why = ctx.err;

		*ret_err = xasprintf("config file \"%s\" line %d: %s", path, line,
				     why ? why : "not a \"key = value\" line");
		free(why);
		return -EINVAL;
	}
	return 0;
}

/* The maskinporten_* keys: all there is to know before the first grant. */
static int check_maskinporten(const struct config *cfg, char **ret_err)
{
	static const char *const needed[] = { "maskinporten_key_file", "maskinporten_kid",
					       "maskinporten_scope", "maskinporten_audience" };
	const char *const values[] = { cfg->maskinporten_key_file, cfg->maskinporten_kid,
				       cfg->maskinporten_scope, cfg->maskinporten_audience };
	const char *aud = cfg->maskinporten_audience;

	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		if (!values[i] || !*values[i]) {
			*ret_err = xasprintf("maskinporten_client_id is given but not \"%s\"", needed[i]);
			return -EINVAL;
		}
	if (aud[strlen(aud) - 1] != '/') {
		*ret_err = xasprintf("maskinporten_audience \"%s\" must be the issuer with its "
				     "trailing slash, e.g. \"https://test.maskinporten.no/\"", aud);
		return -EINVAL;
	}
	return secretfile_check("maskinporten key file", cfg->maskinporten_key_file, ret_err);
}

/* The host of a URL, lower-case, malloc'd ("" when there is none). */
static char *url_host(const char *url)
{
	const char *p = strstr(url, "://"), *end;
	char *host;

	p = p ? p + 3 : url;
	p += strcspn(p, "@/") < strcspn(p, "/") ? strcspn(p, "@") + 1 : 0;
	end = p + strcspn(p, ":/?#");
	host = xstrndup(p, (size_t)(end - p));
	for (char *c = host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return host;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0 && (n == k || s[n - k - 1] == '.');
}

/* A real Altinn environment: its apps are served at
 * https://{org}.apps.<env>/{org}/{app}, not on the platform host, and
 * the events service takes only such a sourceFilter as an app's
 * (altinn-events SubscriptionController.IsAppSubscription: AppsDomain). */
static bool altinn_host(const char *host)
{
	return ends_with(host, "altinn.no") || ends_with(host, "altinn.cloud");
}

int config_check(const struct config *cfg, char **ret_err)
{
	int r;

	if (cfg->broker_tus_chunk < ALT_BROKER_TUS_CHUNK_MIN ||
	    cfg->broker_tus_chunk > ALT_BROKER_TUS_CHUNK_MAX) {
		*ret_err = xasprintf("\"broker_tus_chunk\" must be from %u to %llu bytes",
				     ALT_BROKER_TUS_CHUNK_MIN,
				     (unsigned long long)ALT_BROKER_TUS_CHUNK_MAX);
		return -EINVAL;
	}

	if (!cfg->platform) {
		*ret_err = xstrdup("no \"platform\" given (the platform's base URL)");
		return -EINVAL;
	}
	if (cfg->n_apps == 0) {
		*ret_err = xstrdup("no \"apps\" given (a space-separated list of org/app)");
		return -EINVAL;
	}
	if (!cfg->apps_url) {
		char *host = url_host(cfg->platform);
		bool bad = altinn_host(host) && strncmp(host, "platform.", 9) != 0;

		if (bad)
			*ret_err = xasprintf("\"platform\" is an Altinn host (%s) whose apps host "
					     "cannot be derived: set \"apps_url\" (e.g. "
					     "https://{org}.apps.tt02.altinn.no)", host);
		free(host);
		if (bad)
			return -EINVAL;
	}
	if (cfg->index_since) {
		int y, mo, d;
		char tail;

		/* the index parses the whole time; the date part must be there */
		if (sscanf(cfg->index_since, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) < 3 ||
		    mo < 1 || mo > 12 || d < 1 || d > 31) {
			*ret_err = xasprintf("index_since \"%s\": want an ISO-8601 time "
					     "(2024-01-01 or 2024-01-01T00:00:00Z)", cfg->index_since);
			return -EINVAL;
		}
	}
	if (!cfg->maskinporten_client_id && (cfg->maskinporten_key_file || cfg->maskinporten_kid ||
					     cfg->maskinporten_scope || cfg->maskinporten_audience ||
					     cfg->maskinporten_token_url)) {
		*ret_err = xstrdup("maskinporten_* keys are given but not \"maskinporten_client_id\"");
		return -EINVAL;
	}
	if (!cfg->token_file && !cfg->maskinporten_client_id) {
		*ret_err = xstrdup("no token source: give \"token_file\" or the maskinporten_* keys");
		return -EINVAL;
	}
	if (cfg->token_file && cfg->maskinporten_client_id) {
		*ret_err = xstrdup("two token sources: give \"token_file\" or the maskinporten_* "
				   "keys, not both");
		return -EINVAL;
	}
	if (cfg->token_file)
		r = secretfile_check("token file", cfg->token_file, ret_err);
	else
		r = check_maskinporten(cfg, ret_err);
	if (r == 0 && cfg->subscription_key_file)
		r = secretfile_check("subscription key file", cfg->subscription_key_file, ret_err);
	return r;
}

char *config_app_base(const struct config *cfg, const char *org)
{
	const char *base = cfg->apps_url ? cfg->apps_url : cfg->platform;
	const char *mark = strstr(base, "{org}");
	char *host;

	if (!cfg->apps_url) {
		/* platform.<env> of a real Altinn serves apps at {org}.apps.<env> */
		host = url_host(cfg->platform);
		if (altinn_host(host) && strncmp(host, "platform.", 9) == 0) {
			char *v = xasprintf("https://%s.apps.%s", org, host + 9);

			free(host);
			return v;
		}
		free(host);
	}
	if (!mark)
		return xstrdup(base);
	return xasprintf("%.*s%s%s", (int)(mark - base), base, org, mark + 5);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].kind == KEY_STRING || keys[i].kind == KEY_URL) {
			char **sp = (char **)((char *)cfg + keys[i].offset);

			free(*sp);
			*sp = NULL;
		}
	free_apps(cfg);
}

void config_print_help(FILE *out)
{
	int width = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((int)strlen(keys[i].name) > width)
			width = (int)strlen(keys[i].name);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *h = keys[i].help;
		bool first = true;

		while (*h) {
			size_t n = strcspn(h, "\n");

			fprintf(out, "  %-*s  %.*s\n", width, first ? keys[i].name : "", (int)n, h);
			h += n + (h[n] == '\n');
			first = false;
		}
	}
}
