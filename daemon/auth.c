/* auth.c - the bearer token, from a file that may change under us.
 *
 * The token file is written by something else (a cron job, a secrets
 * agent swapping a symlink), so it is checked with stat() at most once a
 * second and re-read when its inode, size or mtime changed; after a 401
 * it is re-read at once. What we read is cleaned the way people and tools
 * write tokens (surrounding whitespace and quotes) and refused if it holds
 * anything a header value cannot, so a stray newline never becomes an
 * injected header. A missing or empty file makes requests fail with
 * EACCES and is logged once per change, not once per request.
 *
 * The token itself stays in this module's memory and in short-lived copies
 * that auth_token_free() wipes; it is never logged. The Maskinporten grant
 * is a later source: `source` already leaves room for it. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "limits.h"
#include "log.h"
#include "xalloc.h"

enum auth_source { AUTH_NONE, AUTH_TOKEN_FILE, AUTH_MASKINPORTEN };

static const char *const source_names[] = { "none", "token_file", "maskinporten" };

struct auth {
	enum auth_source source; /* immutable */
	char *path;              /* token file; immutable */
	char *subscription_key;  /* immutable after auth_new */

	pthread_mutex_t lock;
	/* protected by lock: */
	char *token;             /* NULL when the source has none */
	uint64_t gen;            /* bumped whenever token changes */
	struct jwt_claims claims;
	struct timespec checked; /* CLOCK_MONOTONIC of the last stat() */
	struct stat st;          /* identity of the file we last read */
	bool have_st;
	char problem[200];       /* last problem logged; "" when fine */
};

static void wipe_free(char *s, size_t n)
{
	if (!s)
		return;
	explicit_bzero(s, n);
	free(s);
}

void auth_token_free(char *token)
{
	if (token)
		wipe_free(token, strlen(token));
}

/* Reads a small secret file: at most cap bytes, else -EFBIG. */
static int read_small_file(const char *path, size_t cap, char **ret, size_t *ret_len,
			   struct stat *ret_st)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			r = -EFBIG;
			break;
		}
	}
	if (r < 0) {
		wipe_free(buf, cap + 1);
		goto out_close;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	if (ret_st)
		*ret_st = st;
out_close:
	close(fd);
	return r;
}

/* Strips whitespace, then one pair of surrounding quotes (the exchange
 * endpoint's JSON-quoted form), in place. Returns false when what is left
 * is not a header-safe token (visible ASCII, no spaces). */
static bool clean_secret(char *s)
{
	size_t start = strspn(s, " \t\r\n"), len = strlen(s + start);

	while (len && strchr(" \t\r\n", s[start + len - 1]))
		len--;
	if (len >= 2 && s[start] == '"' && s[start + len - 1] == '"') {
		start++;
		len -= 2;
	}
	memmove(s, s + start, len);
	s[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Logs a problem once, until a different one (or none) replaces it. */
static void set_problem(struct auth *a, const char *msg)
{
	if (strcmp(a->problem, msg) == 0)
		return;
	snprintf(a->problem, sizeof(a->problem), "%s", msg);
	if (*msg)
		log_warn("%s", msg);
}

/* The token is still sent (the platform decides), but an admin reading
 * the log should learn why requests fail with EACCES. Locked. */
static void warn_if_expired(struct auth *a)
{
	char msg[sizeof(a->problem)], when[32];

	if (!a->claims.exp.tv_sec || time(NULL) < a->claims.exp.tv_sec)
		return;
	json_format_time(&a->claims.exp, when, sizeof(when));
	snprintf(msg, sizeof(msg), "the token in \"%s\" expired at %s; replace it", a->path,
		 when);
	set_problem(a, msg);
}

static void set_token(struct auth *a, char *token)
{
	bool same = token && a->token && strcmp(token, a->token) == 0;

	if (same) {
		auth_token_free(token);
		return;
	}
	auth_token_free(a->token);
	a->token = token;
	a->gen++;
	memset(&a->claims, 0, sizeof(a->claims));
	if (token && json_jwt_claims(token, &a->claims) < 0)
		log_debug("token is not a JWT; subject and expiry unknown");
	if (token)
		log_info("token loaded from \"%s\"%s%s%s", a->path, a->claims.subject[0] ? " for \"" : "",
			 a->claims.subject, a->claims.subject[0] ? "\"" : "");
}

/* Re-reads the token file; locked. */
static void reload_file(struct auth *a)
{
	char msg[sizeof(a->problem)];
	struct stat st;
	size_t len;
	char *buf;
	int r;

	r = read_small_file(a->path, ALT_MAX_TOKEN, &buf, &len, &st);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "cannot read token file \"%s\": %s; requests fail",
			 a->path, r == -EFBIG ? "larger than a token can be" : strerror(-r));
		set_problem(a, msg);
		a->have_st = false;
		set_token(a, NULL);
		return;
	}
	a->st = st;
	a->have_st = true;
	log_debug("token file \"%s\" has mode %04o", a->path, (unsigned)(st.st_mode & 07777));
	if (!clean_secret(buf) || !*buf) {
		snprintf(msg, sizeof(msg), "token file \"%s\" %s; requests fail", a->path,
			 *buf ? "holds characters a token cannot have" : "is empty");
		set_problem(a, msg);
		wipe_free(buf, len + 1);
		set_token(a, NULL);
		return;
	}
	set_problem(a, "");
	set_token(a, xstrdup(buf));
	wipe_free(buf, len + 1);
}

static bool same_file(const struct stat *x, const struct stat *y)
{
	return x->st_dev == y->st_dev && x->st_ino == y->st_ino && x->st_size == y->st_size &&
	       x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

/* At most once a second: has the file changed since we read it? Locked. */
static void check_file(struct auth *a)
{
	struct timespec now;
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (a->checked.tv_sec && now.tv_sec - a->checked.tv_sec < 1)
		return;
	a->checked = now;
	if (stat(a->path, &st) == 0 && a->have_st && same_file(&st, &a->st))
		return;
	reload_file(a);
}

int auth_new(const struct config *cfg, struct auth **ret)
{
	struct auth *a = xcalloc(1, sizeof(*a));
	size_t len;
	int r;

	pthread_mutex_init(&a->lock, NULL);
	if (cfg->token_file) {
		a->source = AUTH_TOKEN_FILE;
		a->path = xstrdup(cfg->token_file);
	} else if (cfg->maskinporten_client_id) {
		a->source = AUTH_MASKINPORTEN;
	}
	if (cfg->subscription_key_file) {
		r = read_small_file(cfg->subscription_key_file, ALT_MAX_TOKEN, &a->subscription_key,
				    &len, NULL);
		if (r < 0) {
			log_errno(r, "cannot read subscription key file \"%s\"",
				  cfg->subscription_key_file);
			auth_free(a);
			return r;
		}
		if (!clean_secret(a->subscription_key) || !*a->subscription_key) {
			log_error("subscription key file \"%s\" is empty or malformed",
				  cfg->subscription_key_file);
			auth_free(a);
			return -EINVAL;
		}
	}
	*ret = a;
	return 0;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_token_free(a->token);
	auth_token_free(a->subscription_key);
	free(a->path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int auth_token(struct auth *a, char **ret_token, uint64_t *ret_gen)
{
	int r = 0;

	pthread_mutex_lock(&a->lock);
	switch (a->source) {
	case AUTH_NONE:
		*ret_token = NULL;
		*ret_gen = 0;
		goto out_unlock;
	case AUTH_MASKINPORTEN:
		set_problem(a, "the maskinporten token source is not available in this version; "
			       "use token_file");
		r = -EACCES;
		goto out_unlock;
	case AUTH_TOKEN_FILE:
		check_file(a);
		break;
	}
	if (!a->token) {
		r = -EACCES;
		goto out_unlock;
	}
	warn_if_expired(a);
	*ret_token = xstrdup(a->token);
	*ret_gen = a->gen;
out_unlock:
	pthread_mutex_unlock(&a->lock);
	return r;
}

int auth_refresh(struct auth *a, uint64_t gen)
{
	int r = -EACCES;

	pthread_mutex_lock(&a->lock);
	if (a->source == AUTH_TOKEN_FILE) {
		if (a->gen == gen) {
			clock_gettime(CLOCK_MONOTONIC, &a->checked);
			reload_file(a);
		}
		if (a->gen != gen && a->token)
			r = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

char *auth_subscription_key(struct auth *a)
{
	return a->subscription_key ? xstrdup(a->subscription_key) : NULL;
}

void auth_get_info(struct auth *a, struct auth_info *ret)
{
	struct auth_info info;

	memset(&info, 0, sizeof(info));
	pthread_mutex_lock(&a->lock);
	if (a->source == AUTH_TOKEN_FILE) /* status.json shows the token before any request */
		check_file(a);
	snprintf(info.source, sizeof(info.source), "%s", source_names[a->source]);
	if (a->token) {
		snprintf(info.subject, sizeof(info.subject), "%s", a->claims.subject);
		info.expires_at = a->claims.exp;
	}
	pthread_mutex_unlock(&a->lock);
	*ret = info;
}
