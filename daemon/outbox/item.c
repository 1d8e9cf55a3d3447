/* item.c - one outbox item: its names, its journal row and its state.
 *
 * Shared by the module (outbox.c), the uploaders, the delivery steps and
 * the outcomes, none of which need each other for it. A state or error
 * changes under ob->lock so the hooks, which read under it, see whole
 * values; saving to the journal happens outside it (see outbox_i.h). */
#include "item.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

int64_t outbox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *outbox_item_owner(const struct ob_item *it)
{
	return xstrndup(it->s.rel, strcspn(it->s.rel, "/"));
}

const char *outbox_item_name(const struct ob_item *it)
{
	const char *slash = strchr(it->s.rel, '/');

	return slash ? slash + 1 : it->s.rel;
}

int outbox_save(struct outbox *ob, struct ob_item *it, bool elements)
{
	int r = spool_save(ob->spool, &it->s, elements);

	if (r < 0)
		log_errno(r, "cannot record \"%s\" in the outbox journal", it->s.rel);
	return r;
}

int outbox_set_state(struct outbox *ob, struct ob_item *it, enum spool_state st, bool elements)
{
	pthread_mutex_lock(&ob->lock);
	it->s.state = st;
	pthread_mutex_unlock(&ob->lock);
	return outbox_save(ob, it, elements);
}

void outbox_set_error(struct outbox *ob, struct ob_item *it, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	pthread_mutex_lock(&ob->lock);
	free(it->s.last_error);
	it->s.last_error = msg;
	pthread_mutex_unlock(&ob->lock);
}

void outbox_item_free(struct ob_item *it)
{
	if (!it)
		return;
	spool_elements_clear(&it->s);
	free(it->s.org);
	free(it->s.app);
	free(it->s.rel);
	free(it->s.instance_id);
	free(it->s.task);
	free(it->s.last_error);
	free(it->s.outcome_name);
	free(it->s.outcome_doc);
	free(it);
}
