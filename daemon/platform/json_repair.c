/* json_repair.c - one bad record must not cost the page it came in.
 *
 * jansson refuses a whole document for one invalid UTF-8 byte, one
 * control character or \u0000 in a string, one lone UTF-16 surrogate
 * escape, or one number beyond what int64 and double hold: a query page
 * of 100 instances, and with it a listing or the inbox, was lost to one
 * citizen's odd filename. When a document does not parse, jsn_load asks
 * for a repaired copy and parses that: invalid UTF-8 bytes and control
 * characters in strings become '?', \u0000 and lone surrogates become
 * \uFFFD, and out-of-range numbers become null (every reader here takes
 * null as "absent"). Only tokens are mended; a document whose structure
 * is broken still fails, as it should. Pure, and used only on the slow
 * path, after a failed parse. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json_i.h"
#include "xalloc.h"

struct out {
	char *p;
	size_t len, cap;
	unsigned fixes;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->p = xrealloc(o->p, o->cap);
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* The length of a valid UTF-8 sequence at s (at most n bytes), else 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, beyond Unicode, or a surrogate */
	return k;
}

static int hex4(const char *s, size_t n)
{
	int v = 0;

	if (n < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0'
		      : c >= 'a' && c <= 'f' ? c - 'a' + 10
		      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* An escape at s[0] == '\\'; returns the bytes it took. */
static size_t escape(struct out *o, const char *s, size_t n)
{
	int hi, lo;

	if (n < 2 || s[1] != 'u') {
		put(o, s, n < 2 ? n : 2);
		return n < 2 ? n : 2;
	}
	hi = hex4(s + 2, n - 2);
	if (hi < 0) {
		put(o, s, 2); /* not ours to mend: jansson says why */
		return 2;
	}
	if (hi >= 0xd800 && hi <= 0xdbff && n >= 12 && s[6] == '\\' && s[7] == 'u') {
		lo = hex4(s + 8, n - 8);
		if (lo >= 0xdc00 && lo <= 0xdfff) {
			put(o, s, 12); /* a proper pair */
			return 12;
		}
	}
	if (hi == 0 || (hi >= 0xd800 && hi <= 0xdfff)) {
		put(o, "\\uFFFD", 6);
		o->fixes++;
	} else {
		put(o, s, 6);
	}
	return 6;
}

/* A string's body, from after its opening quote; returns the bytes taken
 * (the closing quote included, when there is one). */
static size_t string_body(struct out *o, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k;

		if (c == '"') {
			put(o, s + i, 1);
			return i + 1;
		}
		if (c == '\\') {
			i += escape(o, s + i, n - i);
			continue;
		}
		k = c < 0x20 ? 0 : utf8_len((const unsigned char *)s + i, n - i);
		if (k == 0) {
			put(o, "?", 1);
			o->fixes++;
			k = 1;
		} else {
			put(o, s + i, k);
		}
		i += k;
	}
	return i;
}

/* s[0..n), a number token, fits in what jansson holds: int64, or a
 * finite double */
static bool number_fits(const char *s, size_t n, bool real)
{
	char buf[400];

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	if (real)
		return isfinite(strtod(buf, NULL));
	strtoll(buf, NULL, 10);
	return errno != ERANGE;
}

/* A number token; one that int64 or double cannot hold becomes null. */
static size_t number(struct out *o, const char *s, size_t n)
{
	size_t i = 0;
	bool real = false;

	while (i < n && s[i] && strchr("+-0123456789.eE", s[i])) {
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			real = true;
		i++;
	}
	if (!number_fits(s, i, real)) {
		put(o, "null", 4);
		o->fixes++;
	} else {
		put(o, s, i);
	}
	return i;
}

char *jsn_repair(const char *text, size_t len, size_t *ret_len, unsigned *ret_fixes)
{
	struct out o = { 0 };
	size_t i = 0;

	o.cap = len + 64;
	o.p = xmalloc(o.cap);
	while (i < len) {
		char c = text[i];

		if (c == '"') {
			put(&o, text + i, 1);
			i += 1 + string_body(&o, text + i + 1, len - i - 1);
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			i += number(&o, text + i, len - i);
		} else {
			put(&o, text + i, 1);
			i++;
		}
	}
	*ret_len = o.len;
	*ret_fixes = o.fixes;
	return o.p;
}
