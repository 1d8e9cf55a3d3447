/* ctl.c - each instance's console: commands in, the last report out.
 *
 * A write is one command line; it is parsed here (one line, a known verb,
 * the right number of words), performed by one App API call through the
 * platform client, and answered with its errno. The report of the last
 * command of each of the REPORTS most recent instances is kept in memory,
 * for reading ctl: ctl is a console, not a journal, so nothing of it
 * survives a restart. */
#include "ctl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "altinn.h"
#include "json.h"
#include "log.h"
#include "xalloc.h"

#define REPORTS 256
#define MAX_COMMAND 4096

static const char no_command_yet[] =
	"# no command yet. Write one line:\n"
	"#   next [action]        move the process on (PUT process/next)\n"
	"#   complete             confirm the instance (POST complete)\n"
	"#   substatus <label> [description]\n";

struct report {
	char *key; /* "org/app/party/guid" */
	char *text;
};

struct ctl {
	struct altinn *a;
	pthread_mutex_t lock;
	struct report reports[REPORTS]; /* protected by lock */
	size_t next;                    /* protected by lock: the slot to reuse */
};

static void report_put(struct ctl *c, const char *key, char *text)
{
	struct report *slot = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < REPORTS && !slot; i++)
		if (c->reports[i].key && strcmp(c->reports[i].key, key) == 0)
			slot = &c->reports[i];
	if (!slot) {
		slot = &c->reports[c->next++ % REPORTS];
		free(slot->key);
		slot->key = xstrdup(key);
	}
	free(slot->text);
	slot->text = text;
	pthread_mutex_unlock(&c->lock);
}

static char *ctl_report(void *ctx, const char *org, const char *app, const char *party,
			const char *guid)
{
	struct ctl *c = ctx;
	char *key = xasprintf("%s/%s/%s/%s", org, app, party, guid);
	char *text = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < REPORTS && !text; i++)
		if (c->reports[i].key && strcmp(c->reports[i].key, key) == 0)
			text = xstrdup(c->reports[i].text);
	pthread_mutex_unlock(&c->lock);
	free(key);
	return text ? text : xstrdup(no_command_yet);
}

/* "next", "next reject", "complete", "substatus label some words" into
 * act (pointing into line); 0 or -EINVAL */
static int parse(char *line, struct alt_action *act)
{
	char *save = NULL, *verb = strtok_r(line, " \t", &save);
	char *arg = verb ? strtok_r(NULL, " \t", &save) : NULL;
	char *rest = arg ? save + strspn(save, " \t") : NULL;

	if (!verb)
		return -EINVAL;
	act->arg = arg;
	act->description = rest && *rest ? rest : NULL;
	if (strcmp(verb, "next") == 0) {
		act->verb = ALT_ACTION_NEXT;
		return act->description ? -EINVAL : 0; /* one action, one word */
	}
	if (strcmp(verb, "complete") == 0) {
		act->verb = ALT_ACTION_COMPLETE;
		return arg ? -EINVAL : 0;
	}
	if (strcmp(verb, "substatus") == 0) {
		act->verb = ALT_ACTION_SUBSTATUS;
		return arg ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* The one line of a write: malloc'd without its line end, or NULL when
 * the write is not exactly one line (a NUL, a second line, too long). */
static char *one_line(const char *text, size_t len)
{
	size_t n = strcspn(text, "\n") < len ? strcspn(text, "\n") : len;
	char *line;

	if (len > MAX_COMMAND || memchr(text, '\0', len) ||
	    (n + 1 < len && strspn(text + n, "\r\n") != len - n))
		return NULL;
	line = xstrndup(text, n);
	if (n && line[n - 1] == '\r')
		line[n - 1] = '\0';
	return line;
}

static int ctl_command(void *ctx, const char *org, const char *app, const char *party,
		       const char *guid, const char *text, size_t len)
{
	struct ctl *c = ctx;
	struct alt_action act = { .org = org, .app = app, .party = party, .guid = guid };
	struct alt_action_reply rep = { 0 };
	char *line = one_line(text, len), *command, *key;
	char when[40];
	struct timespec now;
	int r;

	if (!line)
		return -EINVAL;
	command = xstrdup(line);
	key = xasprintf("%s/%s/%s/%s", org, app, party, guid);
	r = parse(line, &act);
	if (r == 0)
		r = altinn_instance_action(c->a, &act, &rep);
	/* the ctl contract: a network failure or stall is EIO like a 5xx */
	if (r == -ETIMEDOUT || r == -ECANCELED)
		r = -EIO;
	if (r == -EINVAL && rep.status == 0)
		snprintf(rep.message, sizeof(rep.message),
			 "not a command: want next [action], complete, "
			 "or substatus <label> [description]");
	clock_gettime(CLOCK_REALTIME, &now);
	json_format_time(&now, when, sizeof(when));
	report_put(c, key,
		   xasprintf("command: %s\ntime: %s\nstatus: %ld\nresult: %s\nmessage: %s\n", command,
			     when, rep.status, r == 0 ? "ok" : strerror(-r),
			     r == 0 ? rep.what : rep.message));
	log_info("ctl \"%s\": %s: %s", key, command, r == 0 ? "ok" : strerror(-r));
	free(command);
	free(key);
	free(line);
	return r;
}

static void family_free(void *ctx)
{
	struct ctl *c = ctx;

	if (!c)
		return;
	for (size_t i = 0; i < REPORTS; i++) {
		free(c->reports[i].key);
		free(c->reports[i].text);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct fs_readme_part readme[] = {
	{ "apps/<org>/<app>/instances/<partyId>/<instanceGuid>/ctl",
	  "write one command: next [action], complete, or substatus <label>\n"
	  "[description]; read it for the last result\n",
	  "echo next > apps/{app}/instances/<partyId>/<instanceGuid>/ctl" },
	{ NULL, NULL, NULL },
};

int ctl_family(const struct family_deps *deps, struct fs_family *ret)
{
	struct ctl *c = xcalloc(1, sizeof(*c));

	c->a = deps->a;
	pthread_mutex_init(&c->lock, NULL);
	*ret = (struct fs_family){ .name = "ctl", .ctx = c,
				   .ctl = { c, ctl_command, ctl_report }, .readme = readme,
				   .free = family_free };
	return 0;
}
