/* doctor_push.c - the push checks of altinnfs --check (doctor_i.h).
 *
 * The Events API has no dry run: whether the token may subscribe to an
 * app's events is known only by posting the subscription, and whether
 * the platform can reach webhook_url only by a request from its side.
 * So the doctor does what the mount would, briefly: it listens on
 * webhook_listen itself, posts each app's subscription (webhook_url, the
 * app as source) and each Broker and Correspondence resource's (the
 * resource, and for Broker our organisation as subject, as the daemon
 * subscribes), waits up to `timeout` seconds for the platform's
 * validation request, and deletes every subscription it made; one that
 * was there before stays. Posting a subscription that exists makes the
 * platform send its validation again (altinn-events SubscriptionService:
 * FindSubscription, then PushToValidationQueue), so the reach is checked
 * either way. The listener answers 200 only to validation events, with
 * webhook_url's code, as the daemon would; any other event is answered
 * 503, so the platform keeps it and sends it again later (polling fetches
 * it anyway). Nothing printed shows the code. */
#include "doctor_i.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api_broker.h"
#include "api_events.h"
#include "caps.h"
#include "config.h"
#include "json.h"
#include "xalloc.h"

#define VALIDATION_TYPE "platform.events.validatesubscription"

/* What arrived at the listener. */
struct heard {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *code;
	int64_t *ids;        /* subscriptions whose validation arrived, each once */
	size_t n_ids, cap;   /* cap: one per app */
	unsigned refused;    /* requests without the code */
	unsigned others;     /* other requests (not a validation event) */
};

struct body {
	char *text;
	size_t len;
	bool too_big;
	int64_t id; /* a validation event's subscription, answered 200 */
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(conn, status, resp);

	MHD_destroy_response(resp);
	return ret;
}

/* In time that does not depend on where they differ (the port faces the
 * internet while the check waits). */
static bool same_code(const char *given, const char *code)
{
	size_t n = strlen(code), m = given ? strlen(given) : 0;
	unsigned char diff = n != m;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)code[i] ^ (unsigned char)(i < m ? given[i] : 0);
	return diff == 0;
}

/* The validation event's subscription id, or -1 for anything else. */
static int64_t validation_of(const struct body *b)
{
	struct json_event e;
	int64_t id = -1;

	if (!b->text || json_parse_event(b->text, b->len, &e) < 0)
		return -1;
	if (strcmp(e.type, VALIDATION_TYPE) == 0)
		id = json_validation_subscription(e.source);
	json_event_clear(&e);
	return id;
}

static bool heard_of(struct heard *h, int64_t id)
{
	for (size_t i = 0; i < h->n_ids; i++)
		if (h->ids[i] == id)
			return true;
	return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct heard *h = cls;
	struct body *b = *con_cls;
	int64_t id;

	if (!b) {
		const char *code = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code");

		if (!same_code(code, h->code)) {
			pthread_mutex_lock(&h->lock);
			h->refused++;
			pthread_cond_broadcast(&h->cond);
			pthread_mutex_unlock(&h->lock);
			return answer(conn, MHD_HTTP_FORBIDDEN, "forbidden\n");
		}
		*con_cls = xcalloc(1, sizeof(struct body));
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		if (b->too_big || n > ALT_MAX_EVENT_BODY - b->len) {
			b->too_big = true;
		} else {
			b->text = xrealloc(b->text, b->len + n + 1);
			memcpy(b->text + b->len, upload_data, n);
			b->len += n;
			b->text[b->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	id = strcmp(method, MHD_HTTP_METHOD_POST) == 0 && !b->too_big ? validation_of(b) : -1;
	if (id > 0) { /* heard once the 200 is sent (on_completed) */
		b->id = id;
		return answer(conn, MHD_HTTP_OK, "ok\n");
	}
	pthread_mutex_lock(&h->lock);
	h->others++;
	pthread_mutex_unlock(&h->lock);
	return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "altinnfs --check: send it again later\n");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct heard *h = cls;
	struct body *b = *con_cls;

	/* only now has the platform its answer: stopping the listener earlier
	 * would cut the validation off */
	if (b && b->id > 0 && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		pthread_mutex_lock(&h->lock);
		if (!heard_of(h, b->id) && h->n_ids < h->cap)
			h->ids[h->n_ids++] = b->id;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
	}
	if (b) {
		free(b->text);
		free(b);
		*con_cls = NULL;
	}
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	/* the listen error is said on the doctor's own line */
}

/* Listens on listen ("host:port", "[v6]:port"); NULL when it cannot. */
static struct MHD_Daemon *listen_on(const char *listen, struct heard *h)
{
	const struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
					.ai_socktype = SOCK_STREAM };
	const char *colon = strrchr(listen, ':');
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct addrinfo *ai = NULL;
	struct MHD_Daemon *mhd;
	char *host;
	int rc;

	if (!colon || !colon[1])
		return NULL;
	if (listen[0] == '[' && colon > listen && colon[-1] == ']')
		host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = xstrndup(listen, (size_t)(colon - listen));
	rc = getaddrinfo(*host && strcmp(host, "*") != 0 ? host : NULL, colon + 1, &hints, &ai);
	free(host);
	if (rc != 0)
		return NULL;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
			       MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
			       MHD_OPTION_SOCK_ADDR, ai->ai_addr,
			       MHD_OPTION_CONNECTION_TIMEOUT, 10u,
			       MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
			       MHD_OPTION_END);
	freeaddrinfo(ai);
	return mhd;
}

/* webhook_url's `code`, as the daemon takes it (events.c); NULL if none. */
static char *code_of(const char *url)
{
	const char *p = strchr(url, '?');

	while (p && *p) {
		size_t n;

		p++;
		n = strcspn(p, "&#");
		if (strncmp(p, "code=", 5) == 0 && n > 5)
			return strspn(p + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					     "0123456789-._~") == n - 5 ? xstrndup(p + 5, n - 5) : NULL;
		p += n;
		if (*p != '&')
			break;
	}
	return NULL;
}

struct posted {
	int64_t id;
	bool made;  /* by this check: deleted again at the end */
	char *what; /* "subscription ttd/soknad", "subscription broker/<id>" */
};

/* One subscription with filter f to the events of about (an app, a
 * resource): posted (true) or a FAIL line. who_may says who the platform
 * lets subscribe, for the line of a 403. what is taken. */
static bool subscribe(struct doctor *d, char *what, const struct json_sub_filter *f,
		      const char *about, const char *who_may, struct posted *ret)
{
	bool validated = false;
	char err[256] = "";
	int64_t id = 0;
	int had, r;

	had = altinn_events_find_subscription_for(d->a, d->cfg->webhook_url, f, &id, &validated,
						  err, sizeof(err));
	if (had < 0 && had != -ENOENT) {
		doctor_line(d, DOCTOR_FAIL, what, "cannot list the token's subscriptions (%s): check "
			    "platform and the token", err[0] ? err : strerror(-had));
		goto out_free;
	}
	r = altinn_events_post_subscription_for(d->a, d->cfg->webhook_url, f, &id, &validated,
						err, sizeof(err));
	if (r == -EACCES)
		doctor_line(d, DOCTOR_FAIL, what, "the platform does not allow the token to "
			    "subscribe to the events of %s (%s): %s", about, err[0] ? err : "403",
			    who_may);
	else if (r == -EINVAL)
		doctor_line(d, DOCTOR_FAIL, what, "the platform refuses the subscription (%s): "
			    "webhook_url must be an absolute https URL the platform can reach",
			    err[0] ? err : "400");
	else if (r < 0)
		doctor_line(d, DOCTOR_FAIL, what, "cannot post the subscription (%s): check platform "
			    "and the network", err[0] ? err : strerror(-r));
	if (r < 0)
		goto out_free;
	*ret = (struct posted){ .id = id, .made = had == -ENOENT, .what = what };
	doctor_line(d, DOCTOR_OK, what, "the platform allows it (subscription %lld, %s)",
		    (long long)id, had == -ENOENT ? "made for this check and deleted after it" :
		    "there already, kept");
	return true;
out_free:
	free(what);
	return false;
}

static bool subscribe_app(struct doctor *d, const struct config_app *ca, struct posted *ret)
{
	char *base = config_app_base(d->cfg, ca->org);
	char *source = xasprintf("%s/%s/%s", base, ca->org, ca->app);
	const struct json_sub_filter f = { .source = source };
	char *app = xasprintf("%s/%s", ca->org, ca->app);
	bool ok = subscribe(d, xasprintf("subscription %s", app), &f, app,
			    "the token's org must own the app", ret);

	free(app);
	free(base);
	free(source);
	return ok;
}

/* Each resource of a family that subscribes to its own (Broker: the
 * events about us, subject our organisation; Correspondence: the owner's,
 * no subject), as the daemon does (brpush.c, cpush.c); how many posted. */
static size_t subscribe_resources(struct doctor *d, const char *family, const char *list,
				  const char *subject, struct posted *p)
{
	char *copy = xstrdup(list ? list : ""), *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		char *urn = xasprintf("urn:altinn:resource:%s", t);
		const struct json_sub_filter f = { .resource = urn, .subject = subject };

		n += subscribe(d, xasprintf("subscription %s/%s", family, t), &f, t,
			       "the token needs altinn:events.subscribe, and the resource's policy "
			       "must grant it subscribe", &p[n]);
		free(urn);
	}
	free(copy);
	return n;
}

static size_t count_words(const char *list)
{
	size_t n = 0;

	for (const char *s = list; s && *s;) {
		s += strspn(s, " \t");
		if (*s)
			n++;
		s += strcspn(s, " \t");
	}
	return n;
}

/* Waits up to `timeout` s for every posted validation; how many came. */
static size_t wait_validations(struct doctor *d, struct heard *h, const struct posted *p,
			       size_t n, double *ret_s)
{
	struct timespec start, until, now;
	size_t got = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	until = start;
	until.tv_sec += d->cfg->timeout;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		got = 0;
		for (size_t i = 0; i < n; i++)
			got += heard_of(h, p[i].id);
		if (got == n || pthread_cond_timedwait(&h->cond, &h->lock, &until) == ETIMEDOUT)
			break;
	}
	got = 0;
	for (size_t i = 0; i < n; i++)
		got += heard_of(h, p[i].id);
	pthread_mutex_unlock(&h->lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	*ret_s = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
	return got;
}

static void report_reach(struct doctor *d, struct heard *h, size_t n, size_t got, double s)
{
	const char *url = d->cfg->webhook_url;
	int url_len = (int)strcspn(url, "?#"); /* never the code */

	if (got == n) {
		doctor_line(d, DOCTOR_OK, "webhook", "the platform reached %.*s: the validation "
			    "of %zu subscription(s) arrived at webhook_listen in %.1f s", url_len, url,
			    n, s);
	} else if (got) {
		doctor_line(d, DOCTOR_WARN, "webhook", "the platform reached %.*s, but only %zu of "
			    "%zu validation(s) arrived within %d s: the platform may be slow; run "
			    "again", url_len, url, got, n, d->cfg->timeout);
	} else if (h->refused) {
		doctor_line(d, DOCTOR_FAIL, "webhook", "%u request(s) arrived at webhook_listen "
			    "without the code of webhook_url: something between the platform and "
			    "webhook_listen (a proxy) drops or changes the query string, and the "
			    "daemon would refuse every delivery (403)", h->refused);
	} else {
		doctor_line(d, DOCTOR_FAIL, "webhook", "no validation request arrived at "
			    "webhook_listen within %d s of subscribing%s: the platform cannot reach "
			    "%.*s: it needs a public DNS name, an https certificate the platform "
			    "trusts, a firewall open to the platform and a proxy forwarding to "
			    "webhook_listen (the real platform validates through a queue and may take "
			    "up to a minute: -o timeout=90 waits longer)", d->cfg->timeout,
			    h->others ? " (other requests did)" : "", url_len, url);
	}
}

void doctor_push(struct doctor *d, const bool *app_ok)
{
	const struct config *cfg = d->cfg;
	struct heard h = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct MHD_Daemon *mhd = NULL;
	struct posted *p;
	size_t n = 0, got;
	pthread_condattr_t attr;
	char *code, *me = NULL;
	double s;

	if (!cfg->webhook_listen && !cfg->webhook_url)
		return;
	if (!cfg->webhook_listen || !cfg->webhook_url) {
		doctor_line(d, DOCTOR_FAIL, "webhook", "push needs both webhook_listen and "
			    "webhook_url: set the one missing, or neither (polling only)");
		return;
	}
	code = code_of(cfg->webhook_url);
	if (!code) {
		doctor_line(d, DOCTOR_FAIL, "webhook_url", "needs a secret: end it with "
			    "?code=<random letters and digits> (32 are good)");
		return;
	}
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&h.cond, &attr);
	pthread_condattr_destroy(&attr);
	h.code = code;
	h.cap = cfg->n_apps + count_words(cfg->broker_resources) +
		count_words(cfg->correspondence_resources);
	h.ids = xcalloc(h.cap ? h.cap : 1, sizeof(*h.ids));
	mhd = listen_on(cfg->webhook_listen, &h);
	if (mhd)
		doctor_line(d, DOCTOR_OK, "webhook_listen", "\"%s\" is free: the check listens on "
			    "it for the platform's validation requests", cfg->webhook_listen);
	else
		doctor_line(d, DOCTOR_FAIL, "webhook_listen", "cannot listen on \"%s\": another "
			    "process has it (an altinnfs mounted with this config?), or it is not an "
			    "address:port of this host", cfg->webhook_listen);

	p = xcalloc(h.cap ? h.cap : 1, sizeof(*p));
	for (size_t i = 0; i < cfg->n_apps; i++)
		if (app_ok[i] && subscribe_app(d, &cfg->apps[i], &p[n]))
			n++;
	if (count_words(cfg->broker_resources) && broker_sender(d->a, &me) == 0) {
		char *subject = xasprintf("urn:altinn:organization:identifier-no:%s", me);

		n += subscribe_resources(d, "broker", cfg->broker_resources, subject, p + n);
		free(subject);
	}
	if (cfg->correspondence_events)
		n += subscribe_resources(d, "correspondence", cfg->correspondence_resources, NULL,
					 p + n);
	if (mhd && n) {
		got = wait_validations(d, &h, p, n, &s);
		report_reach(d, &h, n, got, s);
	}
	if (mhd)
		MHD_stop_daemon(mhd);
	for (size_t i = 0; i < n; i++) {
		char err[256] = "";
		int r = p[i].made ? altinn_events_delete_subscription(d->a, p[i].id, err,
								     sizeof(err)) : 0;

		if (r < 0 && r != -ENOENT)
			doctor_line(d, DOCTOR_WARN, p[i].what, "subscription %lld made by this check "
				    "could not be deleted (%s): delete it with DELETE "
				    "%s/events/api/v1/subscriptions/%lld", (long long)p[i].id,
				    err[0] ? err : strerror(-r), cfg->platform, (long long)p[i].id);
		free(p[i].what);
	}
	free(me);
	free(p);
	free(h.ids);
	free(code);
	pthread_cond_destroy(&h.cond);
	pthread_mutex_destroy(&h.lock);
}
