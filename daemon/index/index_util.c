/* index_util.c - the small tools the index's files share: times in ns,
 * ISO-8601 for the query, the row count, a damaged catalog noticed, and
 * Brent's cycle finding over `next` links. At the bottom of daemon/index/:
 * it calls nothing of the folder's other files. */
#include "index_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

int64_t idx_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000ll + ts->tv_nsec;
}

struct timespec idx_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ll, .tv_nsec = ns % 1000000000ll };

	return ts;
}

void idx_iso(int64_t ns, char *buf, size_t size)
{
	time_t s = (time_t)(ns / 1000000000ll);
	long ticks = (long)((ns % 1000000000ll) / 100);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ticks);
}

int64_t idx_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t idx_count(struct index *idx)
{
	uint64_t n;

	pthread_rwlock_rdlock(&idx->cat_lock);
	n = idx->cat ? catalog_count(idx->cat) : 0;
	pthread_rwlock_unlock(&idx->cat_lock);
	return n;
}

int idx_catalog_failed(struct index *idx, int r)
{
	if (r != -EBADMSG)
		return r;
	pthread_mutex_lock(&idx->lock);
	idx->damaged = true;
	idx->state = IDX_WALKING;
	pthread_cond_signal(&idx->wake);
	pthread_mutex_unlock(&idx->lock);
	return -EAGAIN;
}

/* Brent's cycle finding over `next` links (as api.c's): a loop of any
 * length is seen within twice its length plus the pages before it. */
bool idx_loop_seen(struct idx_loop *lc, const char *next)
{
	if (lc->saved && strcmp(lc->saved, next) == 0)
		return true;
	if (++lc->steps >= lc->power) {
		free(lc->saved);
		lc->saved = xstrdup(next);
		lc->power *= 2;
		lc->steps = 0;
	}
	return false;
}

void idx_loop_reset(struct idx_loop *lc)
{
	free(lc->saved);
	*lc = (struct idx_loop){ .power = 1 };
}
