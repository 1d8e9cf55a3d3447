/* ctl.c - the service owner's actions on one instance: the ctl file.
 *
 * A write of one command line performs one App API call and answers with
 * its result as an errno; the report of the last command per instance is
 * what reading ctl shows. Commands:
 *   next [action]                  PUT .../process/next
 *   complete                       POST .../complete
 *   substatus <label> [description] PUT .../substatus
 * Reports are kept in memory for the most recent instances only: ctl is
 * a console, not a journal. */
#include "altinn.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "altinn_i.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "xalloc.h"

#define REPORTS 256
#define MAX_COMMAND 4096

struct report {
	char *key; /* "org/app/party/guid" */
	char *text;
};

static pthread_mutex_t reports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct report reports[REPORTS]; /* protected by reports_lock */
static size_t reports_next;            /* protected by reports_lock */

static void report_put(const char *key, char *text)
{
	struct report *slot = NULL;

	pthread_mutex_lock(&reports_lock);
	for (size_t i = 0; i < REPORTS && !slot; i++)
		if (reports[i].key && strcmp(reports[i].key, key) == 0)
			slot = &reports[i];
	if (!slot) {
		slot = &reports[reports_next++ % REPORTS];
		free(slot->key);
		slot->key = xstrdup(key);
	}
	free(slot->text);
	slot->text = text;
	pthread_mutex_unlock(&reports_lock);
}

char *altinn_instance_report(struct altinn *a, const char *org, const char *app,
			     const char *party, const char *guid)
{
	char *key = xasprintf("%s/%s/%s/%s", org, app, party, guid);
	char *text = NULL;

	pthread_mutex_lock(&reports_lock);
	for (size_t i = 0; i < REPORTS && !text; i++)
		if (reports[i].key && strcmp(reports[i].key, key) == 0)
			text = xstrdup(reports[i].text);
	pthread_mutex_unlock(&reports_lock);
	free(key);
	if (!text)
		text = xstrdup("# no command yet. Write one line:\n"
			       "#   next [action]        move the process on (PUT process/next)\n"
			       "#   complete             confirm the instance (POST complete)\n"
			       "#   substatus <label> [description]\n");
	return text;
}

static char *instance_url(struct altinn *a, const char *org, const char *app, const char *party,
			  const char *guid, const char *tail)
{
	char *base = config_app_base(a->cfg, org);
	char *url = xasprintf("%s/%s/%s/instances/%s/%s/%s", base, org, app, party, guid, tail);

	free(base);
	return url;
}

/* One App API call; 0 or -errno, with the answer in *res. */
static int call(struct altinn *a, const char *method, char *url, const char *json_body,
		bool once, struct http_result *res)
{
	struct http_request req = {
		.url = url,
		.method = method,
		.content_type = json_body ? "application/json" : NULL,
		.body = json_body,
		.body_len = json_body ? strlen(json_body) : 0,
		.stall_timeout = a->cfg->write_timeout,
		.result = res,
		/* next moves the process one step per call: a retry after a lost
		 * answer could move it twice. The user sees EIO and decides. */
		.once = once,
	};
	int r = http_request(a->http, &req);

	free(url);
	return r;
}

/* "next", "next reject", "complete", "substatus label some words" */
static int perform(struct altinn *a, const char *org, const char *app, const char *party,
		   const char *guid, char *line, struct http_result *res, char *what, size_t size)
{
	char *save = NULL, *verb = strtok_r(line, " \t", &save);
	char *arg = verb ? strtok_r(NULL, " \t", &save) : NULL;
	char *rest = arg ? save + strspn(save, " \t") : NULL;
	char *body = NULL;
	int r;

	if (!verb)
		return -EINVAL;
	if (strcmp(verb, "next") == 0) {
		if (rest && *rest)
			return -EINVAL; /* one action, one word */
		body = arg ? json_action_body(arg) : NULL;
		if (arg && !body)
			return -EINVAL;
		r = call(a, "PUT", instance_url(a, org, app, party, guid, "process/next"), body, true,
			 res);
		if (r == 0)
			json_process_summary(res->body, res->body_len, what, size);
	} else if (strcmp(verb, "complete") == 0) {
		if (arg)
			return -EINVAL;
		r = call(a, "POST", instance_url(a, org, app, party, guid, "complete"), NULL, false,
			 res);
	} else if (strcmp(verb, "substatus") == 0) {
		if (!arg)
			return -EINVAL;
		body = json_substatus_body(arg, rest && *rest ? rest : NULL);
		if (!body)
			return -EINVAL;
		r = call(a, "PUT", instance_url(a, org, app, party, guid, "substatus"), body, false,
			 res);
	} else {
		return -EINVAL;
	}
	free(body);
	/* the ctl contract: a network failure or stall is EIO like a 5xx */
	return r == -ETIMEDOUT || r == -ECANCELED ? -EIO : r;
}

int altinn_instance_command(struct altinn *a, const char *org, const char *app,
			    const char *party, const char *guid, const char *text, size_t len)
{
	struct http_result res = { 0 };
	char what[512] = "", when[40], msg[512] = "";
	char *line, *key;
	size_t n;
	int r;

	if (len > MAX_COMMAND)
		return -EINVAL;
	n = strcspn(text, "\n") < len ? strcspn(text, "\n") : len;
	line = xstrndup(text, n);
	if (memchr(text, '\0', len) || (n + 1 < len && strspn(text + n, "\r\n") != len - n)) {
		free(line);
		return -EINVAL; /* one command, one line */
	}
	if (n && line[n - 1] == '\r')
		line[n - 1] = '\0';
	key = xasprintf("%s/%s/%s/%s", org, app, party, guid);
	{
		char *command = xstrdup(line);
		struct timespec now;

		r = perform(a, org, app, party, guid, line, &res, what, sizeof(what));
		clock_gettime(CLOCK_REALTIME, &now);
		json_format_time(&now, when, sizeof(when));
		if (res.status >= 300 || (r < 0 && res.status == 0))
			json_problem_text(res.body, res.body_len, msg, sizeof(msg));
		if (r == -EINVAL && res.status == 0)
			snprintf(msg, sizeof(msg), "not a command: want next [action], complete, "
						   "or substatus <label> [description]");
		report_put(key, xasprintf("command: %s\ntime: %s\nstatus: %ld\nresult: %s\nmessage: %s\n",
					  command, when, res.status, r == 0 ? "ok" : strerror(-r),
					  r == 0 ? what : msg));
		log_info("ctl \"%s\": %s: %s", key, command, r == 0 ? "ok" : strerror(-r));
		free(command);
	}
	http_result_clear(&res);
	free(line);
	free(key);
	return r;
}
