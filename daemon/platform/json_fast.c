/* json_fast.c - a query page's instances as their raw text, without jansson.
 *
 * The index's walk stores each instance of 10^4 to 10^5 pages. Parsing a
 * page with jansson (and writing each document out again) cost more CPU
 * than the platform spent making the page, so the walk was slower than a
 * client that only pages. This scanner makes one pass over the page: it
 * checks the whole text against JSON's grammar as jansson would take it
 * (strict UTF-8, no raw control characters, integers that fit, depth),
 * finds where each instance object starts and ends, and reads the few
 * members the index keys on (id, instanceOwner.partyId, created,
 * lastChanged, process.ended, status.isHardDeleted). The object's bytes
 * are handed on as the platform sent them: json_parse_instance takes them
 * when the instance is looked at.
 *
 * Whatever the scanner is not sure of is left to jansson: a page that is
 * not valid JSON, or whose top level it does not follow, is parsed whole
 * (the caller falls back to json_parse_page, which also mends); an
 * instance with a \u escape, a duplicated key it reads, an id it would
 * reject, a number that might not fit, great depth or size is parsed
 * alone by json_parse_instance, which keeps or skips it exactly as a page
 * parse would. So a document handed on always parses into the instance
 * whose facts came with it. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "xalloc.h"

/* instances larger than this, or deeper, go to jansson: it checks the
 * re-serialised size (ALT_MAX_INSTANCE_DOC), and 64 KiB of text cannot
 * grow past it however it is indented */
#define FAST_MAX_DOC (64u << 10)
#define FAST_MAX_DEPTH 60
#define PAGE_MAX_DEPTH 2000 /* jansson refuses past 2048 */

struct fscan {
	const char *p, *end;
	int depth, max_depth;
	bool unsure; /* valid as far as seen, but left to jansson */
};

struct span {
	const char *s;
	size_t n;
	bool escaped, seen, dup;
};

static void ws(struct fscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

static int hexval(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence of more than one byte at s->p, as RFC 3629 allows
 * (no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8(struct fscan *s)
{
	const unsigned char *u = (const unsigned char *)s->p;
	size_t left = (size_t)(s->end - s->p);
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4;
	else
		return -1;
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (left < n || u[1] < lo || u[1] > hi)
		return -1;
	for (size_t i = 2; i < n; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return -1;
	s->p += n;
	return 0;
}

/* A string at s->p (its quote): its bytes between the quotes in *ret. */
static int string(struct fscan *s, struct span *ret)
{
	const char *start;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	start = ++s->p;
	ret->escaped = false;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			ret->s = start;
			ret->n = (size_t)(s->p - start);
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			if (utf8(s) < 0)
				return -1;
			continue;
		}
		if (c == '\\') {
			ret->escaped = true;
			if (++s->p >= s->end)
				return -1;
			if (*s->p == 'u') {
				/* surrogates and \u0000 are jansson's to judge */
				if (s->end - s->p < 5 || !hexval(s->p[1]) || !hexval(s->p[2]) ||
				    !hexval(s->p[3]) || !hexval(s->p[4]))
					return -1;
				s->unsure = true;
				s->p += 4;
			} else if (!strchr("\"\\/bfnrt", *s->p) || !*s->p) {
				return -1;
			}
		}
		s->p++;
	}
	return -1;
}

static bool digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number: JSON's grammar; one jansson might find out of range is
 * left to it (more than 18 digits, an exponent, a long fraction). */
static int number(struct fscan *s)
{
	const char *start = s->p;
	bool real = false;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (!digit(s->p, s->end))
		return -1;
	if (*s->p == '0')
		s->p++;
	else
		while (digit(s->p, s->end))
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		real = true;
		if (!digit(++s->p, s->end))
			return -1;
		while (digit(s->p, s->end))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->unsure = true;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digit(s->p, s->end))
			return -1;
		while (digit(s->p, s->end))
			s->p++;
	}
	if (s->p - start > (real ? 24 : 18))
		s->unsure = true;
	return 0;
}

static int word(struct fscan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* Members of an object at s->p ('{'): on_member (may be NULL) is called
 * with each key, at its value, and must consume the value. */
typedef int (*member_fn)(struct fscan *s, const struct span *key, void *ctx);
static int value(struct fscan *s);

static int object(struct fscan *s, member_fn on_member, void *ctx)
{
	struct span key;
	int r;

	if (++s->depth > PAGE_MAX_DEPTH)
		return -1;
	if (s->depth > s->max_depth)
		s->max_depth = s->depth;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		ws(s);
		if (string(s, &key) < 0)
			return -1;
		ws(s);
		if (s->p >= s->end || *s->p++ != ':')
			return -1;
		ws(s);
		r = on_member ? on_member(s, &key, ctx) : value(s);
		if (r < 0)
			return r;
		ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == '}') {
			s->p++;
			s->depth--;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
	}
}

/* An array at s->p ('['): on_item (may be NULL) consumes each item. */
typedef int (*item_fn)(struct fscan *s, void *ctx);

static int array(struct fscan *s, item_fn on_item, void *ctx)
{
	int r;

	if (++s->depth > PAGE_MAX_DEPTH)
		return -1;
	if (s->depth > s->max_depth)
		s->max_depth = s->depth;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		ws(s);
		r = on_item ? on_item(s, ctx) : value(s);
		if (r < 0)
			return r;
		ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == ']') {
			s->p++;
			s->depth--;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
	}
}

static int value(struct fscan *s)
{
	struct span str;

	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		return object(s, NULL, NULL);
	case '[':
		return array(s, NULL, NULL);
	case '"':
		return string(s, &str);
	case 't':
		return word(s, "true");
	case 'f':
		return word(s, "false");
	case 'n':
		return word(s, "null");
	default:
		return number(s);
	}
}

static bool key_is(const struct span *key, const char *name)
{
	size_t n = strlen(name);

	return key->n == n && memcmp(key->s, name, n) == 0;
}

/* A string member's value into *out (first time), or note it twice. */
static int take_string(struct fscan *s, struct span *out)
{
	struct span v;

	if (out->seen)
		out->dup = true;
	out->seen = true;
	if (s->p < s->end && *s->p == '"') {
		if (string(s, &v) < 0)
			return -1;
		out->s = v.s;
		out->n = v.n;
		out->escaped = v.escaped;
		return 0;
	}
	out->s = NULL; /* another kind: jansson's getters read it as absent */
	return value(s);
}

/* The members of one instance the index keys on. */
struct inst_scan {
	struct span id, owner_party, created, changed, ended;
	bool owner_seen, process_seen, status_seen, deleted_seen, deleted;
	bool owner_odd; /* instanceOwner.partyId not a string */
};

static int owner_member(struct fscan *s, const struct span *key, void *ctx)
{
	struct inst_scan *is = ctx;

	if (key->escaped)
		s->unsure = true;
	if (!key_is(key, "partyId"))
		return value(s);
	if (s->p < s->end && *s->p != '"')
		is->owner_odd = true;
	return take_string(s, &is->owner_party);
}

static int process_member(struct fscan *s, const struct span *key, void *ctx)
{
	struct inst_scan *is = ctx;

	if (key->escaped)
		s->unsure = true;
	return key_is(key, "ended") ? take_string(s, &is->ended) : value(s);
}

static int status_member(struct fscan *s, const struct span *key, void *ctx)
{
	struct inst_scan *is = ctx;

	if (key->escaped)
		s->unsure = true;
	if (!key_is(key, "isHardDeleted"))
		return value(s);
	if (is->deleted_seen)
		s->unsure = true;
	is->deleted_seen = true;
	is->deleted = s->p < s->end && *s->p == 't';
	return value(s);
}

/* An object member the index reads: seen twice is jansson's to settle. */
static int sub_object(struct fscan *s, bool *seen, member_fn fn, void *ctx)
{
	if (*seen)
		s->unsure = true;
	*seen = true;
	if (s->p < s->end && *s->p == '{')
		return object(s, fn, ctx);
	return value(s); /* not an object: its members read as absent */
}

static int inst_member(struct fscan *s, const struct span *key, void *ctx)
{
	struct inst_scan *is = ctx;

	if (key->escaped)
		s->unsure = true;
	if (key_is(key, "id"))
		return take_string(s, &is->id);
	if (key_is(key, "created"))
		return take_string(s, &is->created);
	if (key_is(key, "lastChanged"))
		return take_string(s, &is->changed);
	if (key_is(key, "instanceOwner"))
		return sub_object(s, &is->owner_seen, owner_member, is);
	if (key_is(key, "process"))
		return sub_object(s, &is->process_seen, process_member, is);
	if (key_is(key, "status"))
		return sub_object(s, &is->status_seen, status_member, is);
	return value(s);
}

/* A span's text NUL-ended in buf, or false when it does not fit. */
static bool span_str(const struct span *sp, char *buf, size_t size)
{
	if (!sp->s || sp->n >= size)
		return false;
	memcpy(buf, sp->s, sp->n);
	buf[sp->n] = '\0';
	return true;
}

static bool span_bad(const struct span *sp)
{
	return sp->dup || (sp->s && sp->escaped);
}

static void span_time(const struct span *sp, struct timespec *ret)
{
	char buf[64];

	*ret = (struct timespec){ 0, 0 };
	if (span_str(sp, buf, sizeof(buf)) && json_parse_time(buf, ret) < 0)
		*ret = (struct timespec){ 0, 0 };
}

/* The facts of a scanned instance, or false when jansson must decide. */
static bool inst_facts(const struct inst_scan *is, struct json_fast_inst *fi)
{
	char id[96], *slash;

	if (span_bad(&is->id) || span_bad(&is->owner_party) || span_bad(&is->created) ||
	    span_bad(&is->changed) || is->ended.dup || is->owner_odd)
		return false;
	if (!span_str(&is->id, id, sizeof(id)) || !(slash = strchr(id, '/')))
		return false;
	*slash = '\0';
	if (!json_is_party_id(id) || !json_is_guid(slash + 1))
		return false;
	if (is->owner_party.s &&
	    (is->owner_party.n != strlen(id) || memcmp(is->owner_party.s, id, is->owner_party.n)))
		return false;
	if (is->created.s && is->created.n >= 64)
		return false;
	if (is->changed.s && is->changed.n >= 64)
		return false;
	memcpy(fi->party_id, id, strlen(id) + 1);
	for (size_t i = 0; i <= 36; i++) {
		char c = slash[1 + i];

		fi->guid[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	span_time(&is->created, &fi->created);
	span_time(&is->changed, &fi->last_changed);
	fi->is_complete = is->ended.s != NULL;
	fi->hard_deleted = is->deleted;
	return true;
}

struct page_scan {
	struct json_fast_page *out;
	size_t cap;
	bool seen_instances, seen_next, seen_count;
	struct span next;
};

static int inst_item(struct fscan *s, void *ctx)
{
	struct page_scan *ps = ctx;
	struct json_fast_inst *fi;
	struct inst_scan is = { 0 };
	bool outer_unsure = s->unsure;
	int base = s->depth, outer_max = s->max_depth, r;

	if (s->p >= s->end || *s->p != '{')
		return value(s); /* not an object: skipped, as the page parse does */
	if (ps->out->n == ALT_MAX_PAGE_SIZE)
		return -1; /* the page parse refuses the page */
	if (ps->out->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 128;
		ps->out->inst = xrealloc(ps->out->inst, ps->cap * sizeof(*ps->out->inst));
	}
	fi = &ps->out->inst[ps->out->n];
	memset(fi, 0, sizeof(*fi));
	fi->doc = s->p;
	s->unsure = false;
	s->max_depth = base;
	r = object(s, inst_member, &is);
	if (r < 0)
		return r;
	fi->doc_len = (size_t)(s->p - fi->doc);
	fi->unsure = s->unsure || s->max_depth - base > FAST_MAX_DEPTH ||
		     fi->doc_len > FAST_MAX_DOC || !inst_facts(&is, fi);
	s->unsure = outer_unsure;
	if (outer_max > s->max_depth)
		s->max_depth = outer_max;
	ps->out->n++;
	return 0;
}

static int page_member(struct fscan *s, const struct span *key, void *ctx)
{
	struct page_scan *ps = ctx;

	if (key->escaped) {
		s->unsure = true; /* it might spell one of ours */
		return value(s);
	}
	if (key_is(key, "instances")) {
		if (ps->seen_instances)
			s->unsure = true;
		ps->seen_instances = true;
		if (s->p < s->end && *s->p == '[')
			return array(s, inst_item, ps);
		if (s->p >= s->end || *s->p != 'n')
			s->unsure = true; /* neither a list nor null: the parse refuses it */
		return value(s);
	}
	if (key_is(key, "next")) {
		if (ps->seen_next)
			s->unsure = true;
		ps->seen_next = true;
		if (take_string(s, &ps->next) < 0)
			return -1;
		if (ps->next.s && ps->next.escaped)
			s->unsure = true;
		return 0;
	}
	return value(s);
}

int json_fast_page(const char *text, size_t len, struct json_fast_page *ret)
{
	struct json_fast_page page = { 0 };
	struct page_scan ps = { .out = &page };
	struct fscan s = { text, text + len, 0, 0, false };
	int r;

	ws(&s);
	r = s.p < s.end && *s.p == '{' ? object(&s, page_member, &ps) : -1;
	if (r == 0) {
		ws(&s);
		if (s.p != s.end)
			r = -1; /* text after the page */
	}
	if (r < 0 || s.unsure) {
		free(page.inst);
		return -EAGAIN;
	}
	if (ps.next.s && ps.next.n > 0)
		page.next = xstrndup(ps.next.s, ps.next.n);
	*ret = page;
	return 0;
}

void json_fast_page_clear(struct json_fast_page *page)
{
	free(page->inst);
	free(page->next);
	memset(page, 0, sizeof(*page));
}
