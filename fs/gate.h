/* gate.h - a bounded share of the FUSE workers for the platform.
 *
 * Operations that may wait on the platform (listings, instance documents,
 * data reads, ctl commands) pass a gate of ALT_PLATFORM_OPS slots; at
 * most ALT_PLATFORM_WAITERS more wait for a slot, and only up to
 * `timeout`. What cannot pass fails with EAGAIN, so the rest of the
 * ALT_FUSE_THREADS workers are always free for the local files
 * (status.json, README.txt, the local areas). */
#ifndef ALTINNFS_GATE_H
#define ALTINNFS_GATE_H

#include <stdint.h>

struct gate;

struct gate_stats {
	unsigned busy;      /* operations holding a slot now */
	unsigned waiting;   /* operations waiting for one now */
	uint64_t refused;   /* operations that got EAGAIN, ever */
};

struct gate *gate_new(unsigned slots, unsigned waiters, int wait_s);
void gate_free(struct gate *g);
/* Takes a slot, waiting up to wait_s seconds if all are taken and fewer
 * than `waiters` wait already. 0, or -EAGAIN without a slot. */
int gate_enter(struct gate *g);
void gate_leave(struct gate *g);
void gate_stats(struct gate *g, struct gate_stats *ret);

#endif
