/* doctor_line.c - the line every check of altinnfs --check prints, and
 * the scope test the checks share (doctor_i.h).
 *
 * A line is "ok", "WARN" or "FAIL", the check's name, and what it found
 * or what to do; only FAIL counts against exit 0. Each line is flushed at
 * once, so an operator watching a slow check sees how far it got. */
#include "doctor_i.h"

#include <stdarg.h>
#include <string.h>

static const char *const marks[] = { [DOCTOR_OK] = "ok", [DOCTOR_WARN] = "WARN",
				      [DOCTOR_FAIL] = "FAIL" };

void doctor_line(struct doctor *d, enum doctor_mark mark, const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(d->out, "%-4s  %s: ", marks[mark], what);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	fflush(d->out);
	if (mark == DOCTOR_FAIL)
		d->failures++;
}

bool doctor_has_scope(const char *scopes, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = scopes; (p = strstr(p, want)); p += n)
		if ((p == scopes || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}
