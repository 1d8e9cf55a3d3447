/* retry.c - backoff with jitter, and the two clocks (see retry.h). */
#include "retry.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

int64_t retry_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t retry_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t retry_backoff_ms(unsigned tries, int64_t cap_ms, long retry_after_ms)
{
	static _Thread_local unsigned int seed;
	int64_t d = RETRY_BASE_MS;

	if (!seed)
		seed = (unsigned int)retry_mono_ms() ^ (unsigned int)(uintptr_t)&seed;
	for (unsigned i = 1; i < tries && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	d = d / 2 + (int64_t)(rand_r(&seed) % (unsigned int)(d / 2 + 1));
	return retry_after_ms > d ? retry_after_ms : d;
}
