/* corrtext.c - Correspondence's text rules, checked before any request
 * (see api_corr.h). The platform's TextValidation renders a text with
 * Markdig and compares: a plain-text field (messageTitle, 1002;
 * messageSummary, 1004; messageSender, 1039) may hold no HTML tag and no
 * Markdown that changes the text (a heading, a block quote, emphasis or
 * strong, strikethrough, a link or an image, a thematic break, a setext
 * underline); lists are allowed (its list parser is off); backticks and
 * backslashes are taken out first. The Markdown body (1003) may hold no
 * HTML outside code. This is the same approximation the local platform
 * makes (scripts/localtest/corrcheck.py), so a text one refuses the
 * other does too; the message goes to failed/ with the field named. */
#include "api_corr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* \w as Python sees it: letters, digits, _ and (UTF-8) anything past ASCII */
static bool is_word(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x80 || u == '_' || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
	       (u >= 'A' && u <= 'Z');
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* an HTML tag or comment at s[i] ('<') */
static bool tag_at(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;

	if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0)
		return true;
	if (j < n && s[j] == '/')
		j++;
	if (j >= n || !is_alpha(s[j]))
		return false;
	while (j < n && (is_alpha(s[j]) || (s[j] >= '0' && s[j] <= '9') || s[j] == '-'))
		j++;
	if (j < n && s[j] == '>')
		return true;
	if (j + 1 < n && s[j] == '/' && s[j + 1] == '>')
		return true;
	if (j < n && is_space(s[j]))
		for (j++; j < n && s[j] != '<'; j++)
			if (s[j] == '>')
				return true;
	return false;
}

static bool has_tag(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '<' && tag_at(s, n, i))
			return true;
	return false;
}

/* a pair of delim (2 chars) around non-blank text on one line, from i */
static bool pair_at(const char *s, size_t n, size_t i, const char *delim)
{
	if (n - i < 5 || memcmp(s + i, delim, 2) != 0 || is_space(s[i + 2]))
		return false;
	for (size_t j = i + 3; j + 1 < n && s[j] != '\n'; j++)
		if (memcmp(s + j, delim, 2) == 0 && !is_space(s[j - 1]))
			return true;
	return false;
}

/* *x* or _x_ from i: not inside a word, no blank inside its ends */
static bool emphasis_at(const char *s, size_t n, size_t i)
{
	char d = s[i];
	size_t j;

	if (i > 0 && (is_word(s[i - 1]) || s[i - 1] == d))
		return false;
	if (i + 1 >= n || is_space(s[i + 1]) || s[i + 1] == d)
		return false;
	for (j = i + 1; j < n && s[j] != d && s[j] != '\n'; j++)
		;
	if (j >= n || s[j] != d || is_space(s[j - 1]))
		return false;
	if (j + 1 < n && (s[j + 1] == d || (d == '_' && is_word(s[j + 1]))))
		return false;
	return true;
}

/* [text](target) from i, on one line */
static bool link_at(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && s[j] != ']' && s[j] != '\n')
		j++;
	if (j + 1 >= n || s[j] != ']' || s[j + 1] != '(')
		return false;
	for (j += 2; j < n && s[j] != '\n'; j++)
		if (s[j] == ')')
			return true;
	return false;
}

/* the line s[a..b): a heading, a quote, a break, or a setext underline
 * (prev_text: the line before holds text) */
static const char *block_fault(const char *s, size_t a, size_t b, bool prev_text)
{
	size_t i = a, k;
	char c;
	int count = 0;

	while (i < b && i - a < 3 && s[i] == ' ')
		i++;
	if (i < b && s[i] == '#') {
		for (k = i; k < b && s[k] == '#' && k - i < 7; k++)
			;
		if (k - i <= 6 && (k == b || s[k] == ' ' || s[k] == '\t'))
			return "a Markdown heading (#)";
	}
	if (i < b && s[i] == '>')
		return "a Markdown block quote (>)";
	c = i < b ? s[i] : 0;
	if (c == '-' || c == '*' || c == '_') {
		for (k = i; k < b && (s[k] == c || s[k] == ' ' || s[k] == '\t' || s[k] == '\r'); k++)
			count += s[k] == c;
		if (k == b && count >= 3)
			return "a Markdown thematic break";
	}
	if (prev_text && i < b && s[i] == '=') {
		for (k = i; k < b && s[k] == '='; k++)
			;
		while (k < b && is_space(s[k]))
			k++;
		if (k == b)
			return "a Markdown heading (=== under a line)";
	}
	return NULL;
}

static const char *plain_fault(const char *s, size_t n)
{
	bool prev_text = false;
	size_t a = 0;

	if (has_tag(s, n))
		return "an HTML tag";
	while (a <= n) {
		const char *nl = memchr(s + a, '\n', n - a);
		size_t b = nl ? (size_t)(nl - s) : n;
		const char *why = block_fault(s, a, b, prev_text);

		if (why)
			return why;
		prev_text = false;
		for (size_t k = a; k < b; k++)
			prev_text |= !is_space(s[k]);
		a = b + 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (pair_at(s, n, i, "**") || pair_at(s, n, i, "__"))
			return "Markdown strong emphasis (** or __)";
		if (pair_at(s, n, i, "~~"))
			return "Markdown strikethrough (~~)";
		if ((s[i] == '*' || s[i] == '_') && emphasis_at(s, n, i))
			return "Markdown emphasis (* or _)";
		if (s[i] == '[' && link_at(s, n, i))
			return "a Markdown link or image";
	}
	return NULL;
}

/* s without code: fenced, double and single backtick spans */
static char *without_code(const char *s, size_t n, size_t *ret_n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0, i = 0;

	while (i < n) {
		size_t ticks = 0, j;

		if (s[i] != '`') {
			out[o++] = s[i++];
			continue;
		}
		while (i + ticks < n && s[i + ticks] == '`' && ticks < 3)
			ticks++;
		for (j = i + ticks; j + ticks <= n; j++)
			if (memcmp(s + j, "```", ticks) == 0)
				break;
		if (j + ticks > n) { /* no end: a plain backtick */
			out[o++] = s[i++];
			continue;
		}
		i = j + ticks;
	}
	out[o] = '\0';
	*ret_n = o;
	return out;
}

const char *corr_text_fault(const char *s, size_t n, bool markdown)
{
	const char *why;
	size_t m;
	char *t;

	if (!s)
		return NULL;
	if (markdown) {
		t = without_code(s, n, &m);
		why = has_tag(t, m) ? "HTML outside code" : NULL;
		free(t);
		return why;
	}
	t = xmalloc(n + 1);
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '`' && s[i] != '\\')
			t[m++] = s[i];
	t[m] = '\0';
	why = plain_fault(t, m);
	free(t);
	return why;
}
