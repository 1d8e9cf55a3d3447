/* outbox.c - placeholder until the outbox issue lands: no outbox/ area. */
#include "outbox.h"

#include <stdlib.h>

#include "xalloc.h"

struct outbox {
	int unused;
};

int outbox_new(const struct outbox_deps *deps, struct outbox **ret)
{
	*ret = xcalloc(1, sizeof(struct outbox));
	return 0;
}

bool outbox_hooks(struct outbox *ob, enum local_area area, struct local_hooks *ret)
{
	return false;
}

int outbox_start(struct outbox *ob)
{
	return 0;
}

void outbox_status(struct outbox *ob, struct alt_status_outbox *st)
{
}

void outbox_stop(struct outbox *ob)
{
}

void outbox_free(struct outbox *ob)
{
	free(ob);
}
