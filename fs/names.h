/* names.h - how platform names become file names.
 *
 * The platform's filenames are user input from citizens and businesses:
 * they may be missing, duplicated, contain '/', control characters or
 * invalid UTF-8, or be longer than a directory entry may be. These rules
 * (docs/tree.md) give every data element a safe, stable name. */
#ifndef ALTINNFS_NAMES_H
#define ALTINNFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* The usual extension for a content type ("application/pdf" -> "pdf");
 * "bin" when unknown. Parameters (";charset=...") are ignored. */
const char *names_ext_for_type(const char *content_type);

/* Makes name safe as one directory entry, in place-free form: '/',
 * control characters and invalid UTF-8 bytes become '_', "." and ".."
 * become "_" and "__", and a name over `max` bytes loses the end of its
 * stem (on a UTF-8 boundary) but keeps its extension. Returns a new
 * string; "" when name is NULL or empty. */
char *names_sanitize(const char *name, size_t max);

/* name with "-<tag>" before its extension, the whole cut to fit max bytes
 * ("a.pdf", "1a2b3c4d" -> "a-1a2b3c4d.pdf"). Returns a new string. */
char *names_with_suffix(const char *name, const char *tag, size_t max);

/* One data element to name. */
struct names_entry {
	const char *data_guid;
	const char *filename;     /* may be NULL */
	const char *content_type; /* may be NULL */
	char *name;               /* out: set by names_assign, caller frees */
};

/* Names every entry of one data type folder: sanitized filename, or
 * "<guid>.<ext>"; when several get the same name, each of them gets
 * "-<first 8 hex digits of its guid>" (the whole guid if that still
 * collides). Deterministic for the same input in any order. */
void names_assign(struct names_entry *entries, size_t n);

/* A name that fits in a directory as it is (non-empty, no '/', not . or ..) */
bool names_is_safe_component(const char *s);

#endif
