/* outbox_rules.c - owner folders, temporary names, content and data types.
 *
 * The extension table is a subset of app-lib's MimeTypeMap
 * (Helpers/MimeTypeMap.cs): an upload whose Content-Type is neither
 * application/octet-stream nor the type of its extension is refused
 * (DataRestrictionValidation), so guessing from the bytes would be worse
 * than useless. Extensions the map lacks (.log, .md, .msg among them)
 * are application/octet-stream there, and so here. */
#include "outbox_rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limits.h"
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

static const struct {
	const char *ext, *type;
} mime_types[] = {
	{ "7z", "application/x-7z-compressed" }, { "bmp", "image/bmp" }, { "csv", "text/csv" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "dot", "application/msword" }, { "eml", "message/rfc822" }, { "gif", "image/gif" },
	{ "gz", "application/x-gzip" }, { "htm", "text/html" }, { "html", "text/html" },
	{ "ico", "image/x-icon" }, { "jpe", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "jpg", "image/jpeg" }, { "js", "application/javascript" },
	{ "json", "application/json" }, { "m4a", "audio/m4a" },
	{ "mp3", "audio/mpeg" }, { "mp4", "video/mp4" },
	{ "odp", "application/vnd.oasis.opendocument.presentation" },
	{ "ods", "application/vnd.oasis.opendocument.spreadsheet" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "p7s", "application/pkcs7-signature" }, { "pdf", "application/pdf" },
	{ "png", "image/png" }, { "ppt", "application/vnd.ms-powerpoint" },
	{ "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
	{ "rtf", "application/rtf" }, { "svg", "image/svg+xml" }, { "tar", "application/x-tar" },
	{ "tif", "image/tiff" }, { "tiff", "image/tiff" }, { "txt", "text/plain" },
	{ "wav", "audio/wav" }, { "webp", "image/webp" }, { "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "xml", "application/xml" }, { "xsd", "text/xml" }, { "xsl", "text/xml" },
	{ "zip", "application/zip" },
};

const char *outbox_content_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');

	/* as the platform's Path.GetExtension: "a." and "a" have none */
	if (!dot || dot[1] == '\0')
		return NULL;
	for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
		if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return OCTET_STREAM;
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

bool outbox_contributor(const struct alt_data_type *t, const char *org)
{
	char **list = t->allowed_contributors;

	if (!list || !list[0])
		return true;
	/* app-lib's AllowedContributorsHelper: an "org:" entry naming the
	 * service owner, or "orgno:" its number (which the daemon does not
	 * know, so such a type counts as not ours: the stricter reading);
	 * "app:owned" matches no caller */
	for (size_t i = 0; list[i]; i++)
		if (strncasecmp(list[i], "org:", 4) == 0 && strcasecmp(list[i] + 4, org) == 0)
			return true;
	return false;
}

/* Data types the outbox may write: attachments, not the app's receipt,
 * not types only the app or other contributors write, and not types
 * that need an action beyond write (signing, payment). */
static bool writable(const struct alt_data_type *t, const char *org)
{
	return !t->has_app_logic && strcmp(t->id, "ref-data-as-pdf") != 0 &&
	       outbox_contributor(t, org) && !t->action_required_to_write;
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
		if (forced && !outbox_contributor(t, meta->org)) {
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
