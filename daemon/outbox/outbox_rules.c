/* outbox_rules.c - owner folders, temporary names and data types.
 *
 * The content type of a file comes from its extension
 * (app_content_type() in api_app.c, the platform's own table): an
 * upload whose Content-Type is not the type of its extension is refused,
 * so guessing from the bytes would be worse than useless. */
#include "outbox_rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_app.h"
#include "caps.h"
#include "xalloc.h"

#define OCTET_STREAM "application/octet-stream"

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strspn(s, "0123456789");

	return s[n] == '\0' && n >= min && n <= max;
}

bool outbox_owner_parse(const char *name, const char **ret_key, const char **ret_value)
{
	static const struct {
		const char *prefix, *key;
		size_t min, max;
	} forms[] = {
		{ "org-", "organisationNumber", 9, 9 },
		{ "person-", "personNumber", 11, 11 },
		{ "party-", "partyId", 1, 18 },
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t k = strlen(forms[i].prefix);

		if (strncmp(name, forms[i].prefix, k) == 0 &&
		    all_digits(name + k, forms[i].min, forms[i].max)) {
			*ret_key = forms[i].key;
			*ret_value = name + k;
			return true;
		}
	}
	return false;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcasecmp(s + n - k, tail) == 0;
}

bool outbox_name_fits(const char *name)
{
	return strlen(name) <= OUTBOX_NAME_MAX;
}

bool outbox_temp_name(const char *name)
{
	static const char *const tails[] = { ".tmp", ".part", ".filepart", ".crdownload", ".swp",
					     "~" };

	/* and "~$x.docx", the lock file Office writes beside what it edits */
	if (name[0] == '.' || strncmp(name, "~$", 2) == 0)
		return true;
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++)
		if (ends_with(name, tails[i]))
			return true;
	return false;
}

char *outbox_type_setting(const char *setting, const char *org, const char *app)
{
	size_t k = strlen(org) + 1 + strlen(app);
	const char *p = setting;

	while (p && *p) {
		size_t len = strcspn(p, " \t,");

		if (len > k + 1 && p[k] == ':' && strncmp(p, org, strlen(org)) == 0 &&
		    p[strlen(org)] == '/' && strncmp(p + strlen(org) + 1, app, strlen(app)) == 0)
			return xstrndup(p + k + 1, len - k - 1);
		p += len;
		p += strspn(p, " \t,");
	}
	return NULL;
}

static bool accepts(const struct alt_data_type *t, const char *content_type)
{
	char **list = t->allowed_content_types;

	if (!list || !list[0])
		return true;
	for (size_t i = 0; list[i]; i++)
		if (strcasecmp(list[i], content_type) == 0 || strcasecmp(list[i], OCTET_STREAM) == 0)
			return true;
	return false;
}

static bool fits(const struct alt_data_type *t, uint64_t size)
{
	return t->max_size_mb <= 0 || size <= (uint64_t)t->max_size_mb * 1024 * 1024;
}

/* Data types the outbox may write: attachments, not the app's receipt,
 * not types only the app or other contributors write, and not types
 * that need an action beyond write (signing, payment). */
static bool writable(const struct alt_data_type *t, const char *org)
{
	return !t->has_app_logic && strcmp(t->id, "ref-data-as-pdf") != 0 &&
	       app_contributor(t, org) && !t->action_required_to_write;
}

static char *too_big(const struct alt_data_type *t, uint64_t size)
{
	return xasprintf("%llu bytes is over the %lld MB maxSize of data type \"%s\"",
			 (unsigned long long)size, (long long)t->max_size_mb, t->id);
}

int outbox_choose_type(const struct alt_app *meta, const char *forced, const char *content_type,
		       uint64_t size, const struct alt_data_type **ret, char **ret_reason)
{
	const struct alt_data_type *big = NULL, *closed = NULL;

	if (size > ALT_MAX_UPLOAD) {
		*ret_reason = xasprintf("%llu bytes is over the App API's request limit of %llu bytes "
					"(2000 MiB)", (unsigned long long)size,
					(unsigned long long)ALT_MAX_UPLOAD);
		return -EFBIG;
	}
	for (size_t i = 0; i < meta->n_types; i++) {
		const struct alt_data_type *t = &meta->types[i];

		if (forced && strcmp(t->id, forced) != 0)
			continue;
		if (!forced && !writable(t, meta->org)) {
			if (!t->has_app_logic && accepts(t, content_type) && !closed)
				closed = t; /* would take it, but is not ours to write */
			continue;
		}
		if (forced && !app_contributor(t, meta->org)) {
			*ret_reason = xasprintf("data type \"%s\" (outbox_data_type) of \"%s\" is "
						"written only by its allowedContributors, and \"org:%s\" "
						"is not one of them", forced, meta->id, meta->org);
			return -EACCES;
		}
		if (!accepts(t, content_type)) {
			if (forced)
				break;
			continue;
		}
		if (!fits(t, size)) {
			big = big ? big : t;
			continue;
		}
		*ret = t;
		return 0;
	}
	if (big) {
		*ret_reason = too_big(big, size);
		return -EFBIG;
	}
	if (forced)
		*ret_reason = xasprintf("data type \"%s\" (outbox_data_type) of \"%s\" %s %s", forced,
					meta->id, "is not there or does not take", content_type);
	else if (closed && closed->action_required_to_write)
		*ret_reason = xasprintf("no data type of \"%s\" takes %s: \"%s\" needs the action "
					"\"%s\" to write", meta->id, content_type, closed->id,
					closed->action_required_to_write);
	else if (closed && strcmp(closed->id, "ref-data-as-pdf") != 0)
		*ret_reason = xasprintf("no data type of \"%s\" takes %s: \"%s\" is written only "
					"by its allowedContributors, and \"org:%s\" is not one "
					"of them", meta->id, content_type, closed->id, meta->org);
	else
		*ret_reason = xasprintf("no data type of \"%s\" takes %s", meta->id, content_type);
	return -EINVAL;
}
