/* names.c - safe, stable file names for data elements (see names.h).
 *
 * Everything here is pure string work so it can be unit tested without a
 * mount: tests/unit/test_names.c. */
#include "names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

static const struct {
	const char *type;
	const char *ext;
} type_exts[] = {
	{ "application/pdf", "pdf" },   { "application/xml", "xml" },
	{ "text/xml", "xml" },          { "application/json", "json" },
	{ "text/plain", "txt" },        { "text/csv", "csv" },
	{ "text/html", "html" },        { "image/png", "png" },
	{ "image/jpeg", "jpg" },        { "image/gif", "gif" },
	{ "image/tiff", "tif" },        { "image/svg+xml", "svg" },
	{ "application/zip", "zip" },   { "application/octet-stream", "bin" },
	{ "application/msword", "doc" },
	{ "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx" },
	{ "application/vnd.ms-excel", "xls" },
	{ "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx" },
	{ "application/vnd.oasis.opendocument.text", "odt" },
};

const char *names_ext_for_type(const char *content_type)
{
	size_t len;

	if (!content_type)
		return "bin";
	len = strcspn(content_type, "; \t");
	for (size_t i = 0; i < sizeof(type_exts) / sizeof(type_exts[0]); i++)
		if (strlen(type_exts[i].type) == len &&
		    strncasecmp(type_exts[i].type, content_type, len) == 0)
			return type_exts[i].ext;
	return "bin";
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and out-of-range code points */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Where the extension starts (the last '.'), or len when there is none.
 * A leading dot (".profile") is not an extension; neither is a "tail"
 * longer than 16 bytes, which is more likely part of the name. */
static size_t ext_start(const char *s, size_t len)
{
	const char *dot = NULL;

	for (size_t i = len; i > 1; i--)
		if (s[i - 1] == '.') {
			dot = s + i - 1;
			break;
		}
	if (!dot || len - (size_t)(dot - s) > 17)
		return len;
	return (size_t)(dot - s);
}

/* Largest cut <= want that does not split a UTF-8 sequence of s. */
static size_t utf8_floor(const char *s, size_t want)
{
	while (want > 0 && ((unsigned char)s[want] & 0xc0) == 0x80)
		want--;
	return want;
}

/* stem + middle + ext, with the stem cut so the whole fits max bytes */
static char *join_fitted(const char *s, size_t len, const char *middle, size_t max)
{
	size_t e = ext_start(s, len);
	size_t ext_len = len - e;
	size_t mid_len = strlen(middle);
	size_t stem = e;
	char *out;

	if (mid_len + ext_len >= max) {
		/* pathological extension: drop it rather than the name */
		ext_len = 0;
		e = len;
		stem = len;
	}
	if (stem + mid_len + ext_len > max)
		stem = utf8_floor(s, max - mid_len - ext_len);
	out = xmalloc(stem + mid_len + ext_len + 1);
	memcpy(out, s, stem);
	memcpy(out + stem, middle, mid_len);
	memcpy(out + stem + mid_len, s + e, ext_len);
	out[stem + mid_len + ext_len] = '\0';
	return out;
}

char *names_sanitize(const char *name, size_t max)
{
	size_t len, o = 0;
	char *clean, *out;

	if (!name || !*name)
		return xstrdup("");
	len = strlen(name);
	clean = xmalloc(len + 1);
	for (size_t i = 0; i < len;) {
		const unsigned char *p = (const unsigned char *)name + i;
		size_t n = utf8_seq_len(p, len - i);

		if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '/') {
			clean[o++] = '_';
			i++;
			continue;
		}
		memcpy(clean + o, p, n);
		o += n;
		i += n;
	}
	clean[o] = '\0';
	if (strcmp(clean, ".") == 0 || strcmp(clean, "..") == 0)
		memset(clean, '_', o);
	if (o <= max)
		return clean;
	out = join_fitted(clean, o, "", max);
	free(clean);
	return out;
}

char *names_with_suffix(const char *name, const char *tag, size_t max)
{
	char *middle = xasprintf("-%s", tag);
	char *out = join_fitted(name, strlen(name), middle, max);

	free(middle);
	return out;
}

bool names_is_safe_component(const char *s)
{
	return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       strlen(s) <= 255;
}

static int cmp_names(const void *a, const void *b)
{
	const struct names_entry *x = *(struct names_entry *const *)a;
	const struct names_entry *y = *(struct names_entry *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->data_guid, y->data_guid);
}

/* sorted by name (then guid): a fresh array the caller frees */
static struct names_entry **sorted_by_name(struct names_entry *entries, size_t n)
{
	struct names_entry **sorted = xmalloc((n ? n : 1) * sizeof(*sorted));

	for (size_t i = 0; i < n; i++)
		sorted[i] = &entries[i];
	if (n > 1)
		qsort(sorted, n, sizeof(*sorted), cmp_names);
	return sorted;
}

/* Gives every member of each run of equal names the suffix made by tag(). */
static bool disambiguate(struct names_entry *entries, size_t n, bool full_guid)
{
	struct names_entry **sorted = sorted_by_name(entries, n);
	bool changed = false;

	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && strcmp(sorted[i]->name, sorted[j]->name) == 0)
			j++;
		if (j - i > 1) {
			for (size_t k = i; k < j; k++) {
				char tag[64];
				char *named;

				snprintf(tag, sizeof(tag), "%.*s", full_guid ? 36 : 8,
					 sorted[k]->data_guid);
				named = names_with_suffix(sorted[k]->name, tag, 255);
				free(sorted[k]->name);
				sorted[k]->name = named;
			}
			changed = true;
		}
		i = j;
	}
	free(sorted);
	return changed;
}

static void assign_base(struct names_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *name = names_sanitize(entries[i].filename, 255);

		if (!*name) {
			free(name);
			name = xasprintf("%s.%s", entries[i].data_guid,
					 names_ext_for_type(entries[i].content_type));
		}
		free(entries[i].name);
		entries[i].name = name;
	}
}

static bool has_duplicates(struct names_entry *entries, size_t n)
{
	struct names_entry **sorted = sorted_by_name(entries, n);
	bool dup = false;

	for (size_t i = 1; i < n && !dup; i++)
		dup = strcmp(sorted[i - 1]->name, sorted[i]->name) == 0;
	free(sorted);
	return dup;
}

/* Every entry gets "-<its whole guid>": names that end in different
 * guids differ, whatever the filenames were. */
static void suffix_all(struct names_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *named = names_with_suffix(entries[i].name, entries[i].data_guid, 255);

		free(entries[i].name);
		entries[i].name = named;
	}
}

void names_assign(struct names_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entries[i].name = NULL;
	assign_base(entries, n);
	if (n < 2 || !disambiguate(entries, n, false) || !has_duplicates(entries, n))
		return;
	/* The 8-digit suffix nearly always separates them; a hostile or
	 * unlucky platform can defeat it, so start again with whole guids. */
	assign_base(entries, n);
	disambiguate(entries, n, true);
	if (!has_duplicates(entries, n))
		return;
	/* A filename made to equal another element's suffixed name defeats
	 * that too: then every name of the folder ends in its own guid.
	 * Names that still clash (equal guids) are left to the directory
	 * view, which shows only the first. */
	assign_base(entries, n);
	suffix_all(entries, n);
}
