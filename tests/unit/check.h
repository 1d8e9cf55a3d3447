/* check.h - the C unit tests' one assertion.
 *
 * CHECK(cond, fmt, ...) reports a failed condition with its place and a
 * message, and goes on, so one run shows every failure; main returns
 * non-zero when `failures` is. */
#ifndef ALTINNFS_TEST_CHECK_H
#define ALTINNFS_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int failures;

#define CHECK(cond, ...) check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

static inline void check(int ok, const char *file, int line, const char *expr, const char *fmt,
			 ...)
{
	va_list ap;

	if (ok)
		return;
	failures++;
	fprintf(stderr, "%s:%d: FAILED %s: ", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#endif
