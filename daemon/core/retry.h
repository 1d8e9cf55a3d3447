/* retry.h - when to try again: the one backoff every durable worker uses.
 *
 * The outbox's uploaders, the instance-writes worker and the inbox worker
 * each keep a queue of items with a due time and a count of failed tries;
 * the wait after a failure is computed here, the same way for all: one
 * second, doubling with each failed try up to a cap, with "equal jitter"
 * (the first half fixed, the second random) so that the end of an outage
 * does not bring every item back in the same second; a longer wait the
 * platform asked for (Retry-After) wins (docs/outbox.md). Due times that
 * are kept in a journal are wall-clock milliseconds (they must survive a
 * restart); waits within a run are measured on CLOCK_MONOTONIC. */
#ifndef ALTINNFS_RETRY_H
#define ALTINNFS_RETRY_H

#include <stdint.h>

/* The first wait, before doubling. */
#define RETRY_BASE_MS 1000

/* Milliseconds since the epoch, for due times kept in a journal. */
int64_t retry_wall_ms(void);
/* Milliseconds on CLOCK_MONOTONIC, for waits within one run. */
int64_t retry_mono_ms(void);

/* The wait after the tries-th failed try in a row (tries >= 1): between
 * half and all of min(cap_ms, RETRY_BASE_MS * 2^(tries-1)), or
 * retry_after_ms when that is longer (-1: none). */
int64_t retry_backoff_ms(unsigned tries, int64_t cap_ms, long retry_after_ms);

#endif
