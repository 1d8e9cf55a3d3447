/* doctor_i.h - what the doctor's files share (doctor.c, doctor_push.c;
 * doctor_line.c has the line and the scope test).
 *
 * One struct for the run, the line every check prints ("ok", "WARN" or
 * "FAIL": only FAIL counts against exit 0), and the checks that live in
 * their own file. */
#ifndef ALTINNFS_DOCTOR_I_H
#define ALTINNFS_DOCTOR_I_H

#include <stdbool.h>
#include <stdio.h>

struct altinn;
struct config;

struct doctor {
	const struct config *cfg;
	FILE *out;
	int failures;
	struct altinn *a;
	char scope[512]; /* the token's scopes; "" when it names none (or none was had) */
};

enum doctor_mark {
	DOCTOR_OK,
	DOCTOR_WARN, /* something to know that does not stop a mount */
	DOCTOR_FAIL,
};

void doctor_line(struct doctor *d, enum doctor_mark mark, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Whether the space-separated scopes hold want as a whole word. */
bool doctor_has_scope(const char *scopes, const char *want);

/* Push (webhook_listen, webhook_url): for each app with app_ok[i], that
 * the platform allows its events subscription, and that the platform's
 * validation request reaches webhook_listen through webhook_url. Leaves
 * behind no subscription it made. Prints nothing when push is off. */
void doctor_push(struct doctor *d, const bool *app_ok);

#endif
