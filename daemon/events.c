/* events.c - placeholder until the events issue lands: no events/ area. */
#include "events.h"

#include <stdlib.h>

#include "xalloc.h"

struct events {
	int unused;
};

int events_new(const struct events_deps *deps, struct events **ret)
{
	*ret = xcalloc(1, sizeof(struct events));
	return 0;
}

bool events_hooks(struct events *ev, struct local_hooks *ret)
{
	return false;
}

int events_start(struct events *ev)
{
	return 0;
}

void events_status(struct events *ev, const char *org, const char *app, struct alt_status_app *st)
{
}

void events_stop(struct events *ev)
{
}

void events_free(struct events *ev)
{
	free(ev);
}
