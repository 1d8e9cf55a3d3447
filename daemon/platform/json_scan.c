/* json_scan.c - one top-level member of a JSON object, read without parsing it.
 *
 * A walk of the instance query can ask for the next page while it parses
 * this one (api.c's altinn_page_peek) only if it knows the `next` link
 * before the parse: Storage writes `count`, `self` and `next` before the
 * instances, so a lexical skip over the object's members finds them in a
 * few hundred bytes. Nothing here allocates but the answer; anything the
 * scanner does not follow (a string escape beyond the basic ones and
 * ASCII \u, a malformed text) says "not found", and the caller does
 * without: the full parse remains the truth. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string at s->p (its quote); out (may be NULL) gets it decoded, NUL-ended,
 * at most size - 1 bytes. -EINVAL for what we do not follow. */
static int string(struct scan *s, char *out, size_t size, size_t *ret_len)
{
	size_t n = 0;

	if (s->p >= s->end || *s->p != '"')
		return -EINVAL;
	for (s->p++; s->p < s->end; s->p++) {
		char c = *s->p;

		if (c == '"') {
			s->p++;
			if (out)
				out[n] = '\0';
			if (ret_len)
				*ret_len = n;
			return 0;
		}
		if (c == '\\') {
			if (++s->p >= s->end)
				return -EINVAL;
			switch (*s->p) {
			case '"': case '\\': case '/':
				c = *s->p;
				break;
			case 'u': {
				int v = 0;

				if (s->end - s->p < 5)
					return -EINVAL;
				for (int i = 1; i <= 4; i++) {
					int h = hex(s->p[i]);

					if (h < 0)
						return -EINVAL;
					v = v * 16 + h;
				}
				if (out && (v < 0x20 || v > 0x7e))
					return -EINVAL;
				c = (char)v;
				s->p += 4;
				break;
			}
			default:
				if (out)
					return -EINVAL;
				c = '?'; /* skipped, not kept */
			}
		}
		if (out) {
			if (n + 1 >= size)
				return -EINVAL;
			out[n] = c;
		}
		n++;
	}
	return -EINVAL;
}

/* Skips one value of any kind, up to the ',' or '}' after it. */
static int skip_value(struct scan *s)
{
	int depth = 0;

	skip_ws(s);
	while (s->p < s->end) {
		char c = *s->p;

		if (c == '"') {
			if (string(s, NULL, 0, NULL) < 0)
				return -EINVAL;
			if (depth == 0)
				return 0;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return 0;
			s->p++;
			if (--depth == 0)
				return 0;
			continue;
		} else if (c == ',' && depth == 0) {
			return 0;
		}
		s->p++;
	}
	return -EINVAL;
}

int json_scan_member(const char *text, size_t len, const char *key, char **ret_str,
		     long long *ret_num)
{
	struct scan s = { text, text + len };
	char name[64];

	skip_ws(&s);
	if (s.p >= s.end || *s.p++ != '{')
		return -ENOENT;
	for (;;) {
		skip_ws(&s);
		if (s.p < s.end && *s.p == '}')
			return -ENOENT;
		if (string(&s, name, sizeof(name), NULL) < 0) {
			/* a long name is not ours: skip it */
			if (s.p >= s.end || string(&s, NULL, 0, NULL) < 0)
				return -ENOENT;
			name[0] = '\0';
		}
		skip_ws(&s);
		if (s.p >= s.end || *s.p++ != ':')
			return -ENOENT;
		skip_ws(&s);
		if (strcmp(name, key) == 0) {
			if (ret_str && s.p < s.end && *s.p == '"') {
				struct scan at = s;
				size_t n;
				char *out;

				if (string(&at, NULL, 0, &n) < 0)
					return -ENOENT;
				out = xmalloc(n + 1);
				if (string(&s, out, n + 1, NULL) < 0) {
					free(out);
					return -ENOENT;
				}
				*ret_str = out;
				return 0;
			}
			if (ret_num && s.p < s.end && (*s.p == '-' || (*s.p >= '0' && *s.p <= '9'))) {
				*ret_num = strtoll(s.p, NULL, 10);
				return 0;
			}
			return -ENOENT; /* null, or not the kind asked for */
		}
		if (skip_value(&s) < 0)
			return -ENOENT;
		skip_ws(&s);
		if (s.p < s.end && *s.p == ',')
			s.p++;
		else
			return -ENOENT;
	}
}
