/* states.h - typed states, kept in a journal by name.
 *
 * A family's durable items move through an enum of states, drawn with its
 * transitions in the family's header (spool.h, instwrite_i.h); the
 * journal stores each state by name, so the file reads well in sqlite3
 * and a state added later renumbers nothing. The family keeps one table
 * of names indexed by its enum; these two calls read it. */
#ifndef ALTINNFS_STATES_H
#define ALTINNFS_STATES_H

#include <stdbool.h>

/* names[st], or "unknown" for a state outside the table */
const char *state_name(const char *const *names, int n, int st);
/* The state called name: true and *ret set, or false (*ret untouched). */
bool state_parse(const char *const *names, int n, const char *name, int *ret);

#endif
