/* maskinporten.c - the grant, the token endpoint and the exchange.
 *
 * Requests go through a client of their own (http.c with no token source
 * and no subscription key), so the platform's Authorization header and
 * Ocp-Apim-Subscription-Key never travel to Maskinporten, and a failing
 * token endpoint does not make status.json call the platform unreachable.
 * The grant is signed fresh for every fetch (a new jti each time) and
 * lives 60 s, well inside Maskinporten's 120 s. The assertion, the
 * Maskinporten token and the request bodies that carry them are wiped as
 * soon as they are sent; none of them is ever logged, and the reasons
 * given for a failure are built from status codes and the servers' error
 * codes only.
 *
 * The key file is stat'ed before every fetch and read again when it
 * changed, so replacing a wrong key, or fixing its mode, recovers without
 * a restart; a key that turns unreadable or open to others stops the
 * fetches instead of leaving the old key in use. */
#include "maskinporten.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "altinn.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "secretfile.h"
#include "xalloc.h"

/* Seconds from iat to exp of our grants (Maskinporten allows 120). */
#define MP_GRANT_LIFETIME 60
/* A PEM RSA key of 8192 bits is ~6.5 KiB; anything much larger is not one. */
#define MP_MAX_KEY_FILE (64u << 10)
#define MP_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define MP_EXCHANGE_PATH "/authentication/api/v1/exchange/maskinporten"

struct mp {
	const struct config *cfg;
	struct http *http;    /* our own client: no platform token, no subscription key */
	char *token_url;      /* maskinporten_token_url, else the audience + "token" */
	char *exchange_url;
	/* Used by the one fetch at a time (auth.c makes sure): */
	struct jwt_key *key;
	struct stat key_st;   /* the key file as we read it */
};

/* Reads and parses the key file; 0 or -errno with the reason in problem. */
static int load_key(struct mp *mp, char *problem, size_t size)
{
	const char *path = mp->cfg->maskinporten_key_file;
	struct jwt_key *key;
	char why[128];
	struct stat st;
	size_t len;
	char *pem;
	int r;

	r = secretfile_read(path, MP_MAX_KEY_FILE, &pem, &len, &st);
	if (r < 0) {
		secretfile_describe("maskinporten key file", path, r, problem, size);
		return r;
	}
	r = jwt_key_from_pem(pem, len, &key, why, sizeof(why));
	secretfile_wipe(pem, len + 1);
	if (r < 0) {
		snprintf(problem, size, "maskinporten key file \"%s\" %s", path, why);
		return r;
	}
	jwt_key_free(mp->key);
	mp->key = key;
	mp->key_st = st;
	return 0;
}

int mp_new(const struct config *cfg, struct mp **ret)
{
	struct mp *mp = xcalloc(1, sizeof(*mp));
	char problem[512];
	int r;

	mp->cfg = cfg;
	if (cfg->maskinporten_token_url)
		mp->token_url = xstrdup(cfg->maskinporten_token_url);
	else
		mp->token_url = xasprintf("%stoken", cfg->maskinporten_audience);
	/* test=true: Digdir's own clients are made the test org ttd
	 * (altinn-authentication AuthenticationController
	 * ExchangeExternalSystemToken, OrgIsDigDirAndTestIsTrue) */
	mp->exchange_url = xasprintf("%s%s%s", cfg->platform, MP_EXCHANGE_PATH,
				     cfg->maskinporten_exchange_test ? "?test=true" : "");
	r = load_key(mp, problem, sizeof(problem));
	if (r < 0) {
		log_error("%s", problem);
		goto out_free;
	}
	r = http_new(cfg, NULL, &mp->http);
	if (r < 0)
		goto out_free;
	*ret = mp;
	return 0;
out_free:
	mp_free(mp);
	return r;
}

void mp_free(struct mp *mp)
{
	if (!mp)
		return;
	http_free(mp->http);
	jwt_key_free(mp->key);
	free(mp->token_url);
	free(mp->exchange_url);
	free(mp);
}

void mp_stop(struct mp *mp)
{
	http_stop(mp->http);
}

/* The key file changed since we read it (or its mode did): read it again. */
static int refresh_key(struct mp *mp, char *problem, size_t size)
{
	struct stat st;

	if (stat(mp->cfg->maskinporten_key_file, &st) == 0 && secretfile_same(&st, &mp->key_st))
		return 0;
	if (load_key(mp, problem, size) < 0)
		return -EACCES;
	log_info("maskinporten key file \"%s\" read again", mp->cfg->maskinporten_key_file);
	return 0;
}

static void result_wipe(struct http_result *res)
{
	if (res->body)
		explicit_bzero(res->body, res->body_len);
	http_result_clear(res);
}

/* What to check for an OAuth error code from the token endpoint. */
static const char *grant_hint(const char *error)
{
	if (strncmp(error, "invalid_grant", 13) == 0)
		return "check the key file, maskinporten_kid, maskinporten_audience and the clock";
	if (strncmp(error, "invalid_client", 14) == 0)
		return "check maskinporten_client_id and that the client is active";
	if (strncmp(error, "invalid_scope", 13) == 0)
		return "check that the client has been given maskinporten_scope";
	return "check the maskinporten_* settings";
}

enum step { STEP_GRANT, STEP_EXCHANGE };

/* One line on a failed request of a step, from what the server said:
 * status codes and error codes, never a body that might echo a secret. */
static void describe(struct mp *mp, enum step step, const struct http_result *res, int r,
		     char *problem, size_t size)
{
	const char *what = step == STEP_GRANT ? "the maskinporten token endpoint"
					      : "the platform's token exchange";
	const char *url = step == STEP_GRANT ? mp->token_url : mp->exchange_url;
	struct alt_health h;
	char reason[256];

	if (r == -ECANCELED) {
		snprintf(problem, size, "%s: stopped", what);
		return;
	}
	if (!res->status) {
		http_health(mp->http, &h);
		snprintf(problem, size, "cannot reach %s \"%s\": %s", what, url,
			 h.last_error[0] ? h.last_error : strerror(-r));
		return;
	}
	json_oauth_error(res->body, res->body_len, reason, sizeof(reason));
	if (step == STEP_GRANT && res->status >= 400 && res->status < 500)
		snprintf(problem, size, "maskinporten refused the grant of client \"%s\" (%ld%s%s): %s",
			 mp->cfg->maskinporten_client_id, res->status, reason[0] ? " " : "",
			 reason, grant_hint(reason));
	else if (step == STEP_EXCHANGE && (res->status == 401 || res->status == 403))
		snprintf(problem, size,
			 "the platform refused to exchange the maskinporten token (%ld%s%s): check "
			 "that it trusts this maskinporten (tt02 takes test.maskinporten.no) and "
			 "maskinporten_scope",
			 res->status, reason[0] ? " " : "", reason);
	else
		snprintf(problem, size, "%s \"%s\" answered %ld%s%s", what, url, res->status,
			 reason[0] ? " " : "", reason);
}

/* The grant: a Maskinporten access token in *ret. */
static int get_mp_token(struct mp *mp, char **ret, int64_t *ret_expires_in, char *problem,
			size_t size)
{
	const struct config *cfg = mp->cfg;
	struct jwt_grant grant = {
		.kid = cfg->maskinporten_kid,
		.client_id = cfg->maskinporten_client_id,
		.audience = cfg->maskinporten_audience,
		.scope = cfg->maskinporten_scope,
		.iat = time(NULL),
		.lifetime = MP_GRANT_LIFETIME,
	};
	struct http_result res = { 0 };
	char *assertion, *escaped, *grant_type, *body;
	int r;

	r = jwt_grant_sign(mp->key, &grant, &assertion);
	if (r < 0) {
		snprintf(problem, size, "cannot sign the maskinporten grant with \"%s\"",
			 cfg->maskinporten_key_file);
		return r;
	}
	escaped = http_escape(assertion);
	secretfile_free(assertion);
	grant_type = http_escape(MP_GRANT_TYPE);
	body = xasprintf("grant_type=%s&assertion=%s", grant_type, escaped);
	free(grant_type);
	secretfile_free(escaped);
	struct http_request req = {
		.url = mp->token_url,
		.method = "POST",
		.content_type = "application/x-www-form-urlencoded",
		.body = body,
		.body_len = strlen(body),
		.bearer = "",
		.result = &res,
	};
	r = http_request(mp->http, &req);
	secretfile_free(body);
	if (r < 0) {
		describe(mp, STEP_GRANT, &res, r, problem, size);
		result_wipe(&res);
		return r;
	}
	r = json_parse_mp_token(res.body ? res.body : "", res.body_len, ret, ret_expires_in);
	result_wipe(&res);
	if (r < 0)
		snprintf(problem, size, "the maskinporten token endpoint \"%s\" answered without a "
			 "bearer access_token", mp->token_url);
	return r;
}

/* The exchange: the Altinn token for a Maskinporten token. */
static int exchange(struct mp *mp, const char *mp_token, const char *subscription_key,
		    char **ret, char *problem, size_t size)
{
	char *line = subscription_key ? xasprintf("Ocp-Apim-Subscription-Key: %s", subscription_key)
				      : NULL;
	const char *headers[] = { line, NULL };
	struct http_result res = { 0 };
	struct http_request req = {
		.url = mp->exchange_url,
		.accept = "application/json",
		.bearer = mp_token,
		.headers = headers,
		.result = &res,
	};
	char *token;
	int r;

	r = http_request(mp->http, &req);
	secretfile_free(line);
	if (r < 0) {
		describe(mp, STEP_EXCHANGE, &res, r, problem, size);
		result_wipe(&res);
		return r;
	}
	r = json_parse_string_answer(res.body ? res.body : "", res.body_len, &token);
	result_wipe(&res);
	if (r == 0 && !secretfile_clean(token)) {
		secretfile_free(token);
		r = -EIO;
	}
	if (r < 0) {
		snprintf(problem, size, "the platform's token exchange \"%s\" answered with "
			 "something that is not a token", mp->exchange_url);
		return r;
	}
	*ret = token;
	return 0;
}

int mp_fetch(struct mp *mp, const char *subscription_key, char **ret_token,
	     int64_t *ret_expires_in, char *problem, size_t size)
{
	int64_t expires_in = 0;
	char *mp_token;
	int r;

	r = refresh_key(mp, problem, size);
	if (r < 0)
		return r;
	r = get_mp_token(mp, &mp_token, &expires_in, problem, size);
	if (r < 0)
		return r;
	r = exchange(mp, mp_token, subscription_key, ret_token, problem, size);
	secretfile_free(mp_token);
	if (r < 0)
		return r;
	*ret_expires_in = expires_in;
	return 0;
}
