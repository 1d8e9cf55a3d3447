/* doctor.c - the checks of altinnfs --check, one line each (doctor.h).
 *
 * The checks run in the order a problem would show up at a mount: local
 * things first (state_dir, secret files), then the token, then each app
 * with the permissions its features need (read: metadata, the instance
 * query, events; write: the outbox's scope), push (doctor_push.c), the
 * Broker and Correspondence resources (their scopes, and a search that
 * finds nothing, so nothing is sent), then the addresses the daemon would
 * listen on. A check that cannot run because an earlier one failed still
 * prints its line. Each failure says what to do, in words an operator can
 * act on; nothing printed is a secret (the token's org, expiry and scopes
 * are not). The platform calls are the daemon's own (altinn.h,
 * api_events.h, api_broker.h, api_corr.h), so a check passes exactly when
 * the mount's requests would. */
#include "doctor.h"
#include "doctor_i.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "altinn.h"
#include "api_broker.h"
#include "api_corr.h"
#include "api_events.h"
#include "config.h"
#include "json.h"
#include "secretfile.h"
#include "xalloc.h"

#define READ_SCOPE "altinn:serviceowner/instances.read"
#define WRITE_SCOPE "altinn:serviceowner/instances.write"

/* the checks of this file say ok or FAIL */
static void line(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	doctor_line(d, ok ? DOCTOR_OK : DOCTOR_FAIL, what, "%s", buf);
}

void doctor_fail(FILE *out, const char *what, const char *why)
{
	fprintf(out, "FAIL  %s: %s\n", what, why);
}

static void check_state_dir(struct doctor *d)
{
	const char *dir = d->cfg->state_dir;
	char *tmp = xasprintf("%s/.altinnfs-check-XXXXXX", dir);
	struct statvfs vfs;
	int fd = mkstemp(tmp);

	if (fd < 0) {
		line(d, false, "state_dir", "cannot create a file in \"%s\": %s: make it writable "
		     "for the user that runs altinnfs, or set state_dir", dir, strerror(errno));
		free(tmp);
		return;
	}
	close(fd);
	unlink(tmp);
	free(tmp);
	if (statvfs(dir, &vfs) == 0)
		line(d, true, "state_dir", "\"%s\" is writable, %llu MiB free", dir,
		     (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20);
	else
		line(d, true, "state_dir", "\"%s\" is writable", dir);
}

static void check_secret(struct doctor *d, const char *what, const char *path)
{
	char *err = NULL;
	struct stat st;

	if (!path)
		return;
	if (secretfile_check(what, path, &err) < 0) {
		line(d, false, what, "%s", err);
		free(err);
		return;
	}
	if (stat(path, &st) == 0)
		line(d, true, what, "\"%s\" is readable, mode %04o", path,
		     (unsigned)(st.st_mode & 07777));
	else
		line(d, true, what, "\"%s\" is readable", path);
}

/* What to do about a token that could not be had, by its source. */
static const char *token_advice(const struct config *cfg)
{
	if (cfg->maskinporten_client_id)
		return "check maskinporten_client_id, maskinporten_kid and that the key file is the "
		       "key registered for that client (Digdir's self-service portal), and "
		       "maskinporten_audience";
	return "put a valid Altinn token in the token file (it is read again when it changes)";
}

/* The token: the first request has made the source fetch or read one. */
static bool check_token(struct doctor *d)
{
	struct alt_health h;
	struct timespec now;
	char when[40];

	altinn_health(d->a, &h);
	clock_gettime(CLOCK_REALTIME, &now);
	if (!h.token_expires_at.tv_sec && !h.token_subject[0]) {
		line(d, false, "token", "no token from %s: %s: %s", h.token_source,
		     h.last_error[0] ? h.last_error : "none was had", token_advice(d->cfg));
		return false;
	}
	if (h.token_expires_at.tv_sec && h.token_expires_at.tv_sec <= now.tv_sec) {
		json_format_time(&h.token_expires_at, when, sizeof(when));
		line(d, false, "token", "the token from %s expired at %s: %s", h.token_source, when,
		     token_advice(d->cfg));
		return false;
	}
	if (h.token_expires_at.tv_sec)
		line(d, true, "token", "from %s, for \"%s\", valid for %ld more minutes",
		     h.token_source, h.token_subject[0] ? h.token_subject : "?",
		     (long)(h.token_expires_at.tv_sec - now.tv_sec) / 60);
	else
		line(d, true, "token", "from %s, for \"%s\" (no expiry in it)", h.token_source,
		     h.token_subject[0] ? h.token_subject : "?");
	snprintf(d->scope, sizeof(d->scope), "%s", h.token_scope);
	if (!h.token_scope[0]) {
		line(d, true, "scopes", "the token names no scopes: the platform decides");
		return true;
	}
	if (!doctor_has_scope(h.token_scope, READ_SCOPE))
		line(d, false, "scopes", "the token lacks \"%s\", which every read needs: add it to "
		     "maskinporten_scope and to the client", READ_SCOPE);
	else if (d->cfg->outbox && !doctor_has_scope(h.token_scope, WRITE_SCOPE))
		line(d, false, "scopes", "the outbox is on but the token lacks \"%s\": add it to "
		     "maskinporten_scope and to the client, or set outbox = no", WRITE_SCOPE);
	else if (!doctor_has_scope(h.token_scope, WRITE_SCOPE))
		line(d, true, "scopes", "\"%s\" (read only: writes into instances' data "
		     "folders and rm in inbox/ will be refused)", h.token_scope);
	else
		line(d, true, "scopes", "\"%s\"", h.token_scope);
	return true;
}

/* What a failed platform call means, and what to do about it. */
static void app_failure(struct doctor *d, const char *what, int r, const char *id)
{
	struct alt_health h;

	altinn_health(d->a, &h);
	switch (r) {
	case -ENOENT:
		line(d, false, what, "\"%s\" is not on the platform (404): check the org/app in "
		     "apps and that platform is the right environment", id);
		break;
	case -EACCES:
		line(d, false, what, "the platform refuses the token for \"%s\" (%s): the token's "
		     "org must own the app and the token must have the scopes", id,
		     h.last_error[0] ? h.last_error : "401/403");
		break;
	case -ETIMEDOUT:
	case -EIO:
	default:
		line(d, false, what, "cannot reach the platform for \"%s\": %s: check platform "
		     "(%s) and the network, proxy and firewall", id,
		     h.last_error[0] ? h.last_error : strerror(-r), d->cfg->platform);
		break;
	}
}

static int first_only(struct alt_instance *inst, void *ctx)
{
	alt_instance_unref(inst);
	*(bool *)ctx = true;
	return 1; /* one is enough: stop after the first page */
}

/* Whether the app's metadata could be read (the rest of its checks ran). */
static bool check_app(struct doctor *d, const struct config_app *ca)
{
	char *id = xasprintf("%s/%s", ca->org, ca->app), *what;
	struct alt_query q = { .org = ca->org, .app = ca->app, .is_complete = -1 };
	struct json_event *evs = NULL;
	struct alt_app *app = NULL;
	struct timespec now;
	char from[40];
	bool any = false;
	size_t n = 0;
	int r;

	what = xasprintf("app %s", id);
	r = altinn_get_app(d->a, ca->org, ca->app, &app);
	if (r < 0)
		app_failure(d, what, r, id);
	else
		line(d, true, what, "metadata readable, %zu data type(s)", app->n_types);
	alt_app_free(app);
	free(what);
	if (r < 0) { /* its instances and events would say the same, or mislead */
		free(id);
		return false;
	}

	what = xasprintf("instances %s", id);
	r = altinn_list_instances(d->a, &q, first_only, &any);
	if (r < 0)
		app_failure(d, what, r, id);
	else
		line(d, true, what, "the instance query is allowed (%s)",
		     any ? "instances found" : "none yet");
	free(what);

	what = xasprintf("events %s", id);
	clock_gettime(CLOCK_REALTIME, &now);
	json_format_time(&now, from, sizeof(from));
	r = altinn_events_poll(d->a, ca->org, ca->app, NULL, from, 1, NULL, &evs, &n);
	if (r < 0)
		app_failure(d, what, r, id);
	else
		line(d, true, what, "the events of the app may be read");
	json_events_free(evs, n);
	free(what);
	free(id);
	return true;
}

/* A local address the daemon would listen on: free to bind now? */
static void check_listen(struct doctor *d, const char *key, const char *listen)
{
	const struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
					.ai_socktype = SOCK_STREAM };
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	struct addrinfo *ai = NULL;
	char *host;
	int fd, one = 1, rc;

	if (!listen)
		return;
	if (!colon || !colon[1]) {
		line(d, false, key, "\"%s\" is not address:port", listen);
		return;
	}
	if (listen[0] == '[' && colon > listen && colon[-1] == ']')
		host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = xstrndup(listen, (size_t)(colon - listen));
	rc = getaddrinfo(*host && strcmp(host, "*") != 0 ? host : NULL, colon + 1, &hints, &ai);
	free(host);
	if (rc != 0) {
		line(d, false, key, "\"%s\": %s", listen, gai_strerror(rc));
		return;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		line(d, false, key, "cannot listen on \"%s\": %s: another process has it, or "
		     "the address is not this host's", listen, strerror(errno));
	else
		line(d, true, key, "\"%s\" is free to listen on", listen);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
}

/* ---- Broker and Correspondence: the scopes sending needs, and each
 * resource asked about without making anything: a search for what the
 * token's organisation sent, with a key nothing was sent under. */

static const char *const broker_scopes[] = { "altinn:broker.write", "altinn:broker.read", NULL };
static const char *const corr_scopes[] = { "altinn:correspondence.write", NULL };

static int broker_probe(struct altinn *a, const char *resource, struct app_answer *ans)
{
	struct timespec now;
	char *id = NULL;
	int64_t ms;
	int r;

	clock_gettime(CLOCK_REALTIME, &now);
	ms = (int64_t)now.tv_sec * 1000;
	/* a second's window just past: nothing of ours to look through */
	r = broker_find(a, resource, ms - 1000, ms,
			&(struct broker_match){ .file_name = "altinnfs-check",
						.reference = "altinnfs-check" },
			&id, ans);
	free(id);
	return r;
}

static int corr_probe(struct altinn *a, const char *resource, struct app_answer *ans)
{
	char *id = NULL;
	int r;

	/* a fixed key no message is sent under: the answer is an empty list */
	r = corr_find_by_key(a, resource, "00000000-0000-4000-8000-a171a7f5c4ec", &id, ans);
	free(id);
	return r;
}

static void check_resources(struct doctor *d, const char *family, const char *resources,
			    const char *const *scopes,
			    int (*probe)(struct altinn *, const char *, struct app_answer *))
{
	char *list, *save = NULL, *what;

	if (!resources || !*resources)
		return;
	for (size_t i = 0; scopes[i]; i++)
		if (d->scope[0] && !doctor_has_scope(d->scope, scopes[i])) {
			what = xasprintf("scopes %s", family);
			line(d, false, what, "%s_resources is set but the token lacks \"%s\": add it "
			     "to maskinporten_scope and to the client (Digdir's self-service portal)",
			     family, scopes[i]);
			free(what);
		}
	list = xstrdup(resources);
	for (char *rid = strtok_r(list, " ", &save); rid; rid = strtok_r(NULL, " ", &save)) {
		struct app_answer ans = { 0 };
		int r = probe(d->a, rid, &ans);

		what = xasprintf("%s %s", family, rid);
		if ((r == 0 || r == -ENOENT) && ans.status >= 200 && ans.status < 300)
			line(d, true, what, "the resource answers the token's organisation");
		else if (ans.status >= 400 && ans.status < 500 && ans.status != 429)
			line(d, false, what, "the platform refuses it (%s): check the resource id and "
			     "that the resource's owner has given the token's organisation access "
			     "(its access list and policy), and the token's scopes", ans.summary);
		else
			line(d, false, what, "cannot ask the platform (%s): check %s, the network, "
			     "proxy and firewall", ans.summary[0] ? ans.summary : strerror(-r),
			     strcmp(family, "broker") == 0 && d->cfg->broker_url ? "broker_url" :
			     "platform");
		app_answer_clear(&ans);
		free(what);
	}
	free(list);
}

static void check_mountpoint(struct doctor *d, const char *mountpoint)
{
	struct stat st;

	if (!mountpoint)
		return;
	if (stat(mountpoint, &st) < 0)
		line(d, false, "mountpoint", "\"%s\": %s: create it (mkdir -p)", mountpoint,
		     strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		line(d, false, "mountpoint", "\"%s\" is not a folder", mountpoint);
	else
		line(d, true, "mountpoint", "\"%s\" is a folder", mountpoint);
}

int doctor_run(const struct config *cfg, const char *mountpoint, FILE *out)
{
	struct doctor d = { .cfg = cfg, .out = out };
	bool *app_ok;
	int r;

	line(&d, true, "config", "%zu app(s) on \"%s\"", cfg->n_apps, cfg->platform);
	check_state_dir(&d);
	check_secret(&d, "token file", cfg->token_file);
	check_secret(&d, "maskinporten key file", cfg->maskinporten_key_file);
	check_secret(&d, "subscription key file", cfg->subscription_key_file);
	check_mountpoint(&d, mountpoint);
	r = altinn_new(cfg, &d.a);
	if (r < 0) {
		line(&d, false, "platform client", "cannot be set up: %s", strerror(-r));
		return d.failures;
	}
	/* the first app's metadata first: it makes the token source work */
	if (cfg->n_apps) {
		struct alt_app *app = NULL;

		if (altinn_get_app(d.a, cfg->apps[0].org, cfg->apps[0].app, &app) == 0)
			alt_app_free(app);
	}
	check_token(&d);
	app_ok = xcalloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(*app_ok));
	for (size_t i = 0; i < cfg->n_apps; i++)
		app_ok[i] = check_app(&d, &cfg->apps[i]);
	doctor_push(&d, app_ok);
	free(app_ok);
	check_resources(&d, "broker", cfg->broker_resources, broker_scopes, broker_probe);
	check_resources(&d, "correspondence", cfg->correspondence_resources, corr_scopes,
			corr_probe);
	check_listen(&d, "metrics_listen", cfg->metrics_listen);
	altinn_free(d.a);
	fprintf(out, "%s\n", d.failures ? "some checks failed" : "all checks passed");
	return d.failures;
}
